"""Calls go out on the event loop with a timeout each; a cancelled call closes its connection.

A tiny HTTP server on 127.0.0.1 stands in for the apiserver (the I/O boundary, not a mock of the
client): it records what arrived, answers as each test asks, or never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kubernetes import client

from agent_authority.kube import api, errors, transport

Reply = Callable[[dict[str, Any]], Awaitable[tuple[int, dict[str, Any]] | None]]


class Apiserver:
    """Reads one request per connection; ``reply`` decides the answer (None: never answer)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.received = asyncio.Event()
        self.closed_by_client = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line, *header_lines = head.strip().split("\r\n")
        headers = {k.lower(): v for k, v in (h.split(": ", 1) for h in header_lines)}
        size = int(headers.get("content-length", "0"))
        body = await reader.readexactly(size) if size else b""
        method, target, _ = line.split(" ")
        request = {"method": method, "target": target, "headers": headers, "body": body}
        self.requests.append(request)
        self.received.set()
        answer = await self.reply(request)
        if answer is None:
            if await reader.read() == b"":  # blocks until the client closes the connection
                self.closed_by_client.set()
            writer.close()
            return
        status, payload = answer
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serving(reply: Reply) -> AsyncIterator[tuple[Apiserver, api.Kube]]:
    server = Apiserver(reply)
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.api_key = {"authorization": "Bearer the-token"}
    kube = api.Kube(client.ApiClient(configuration))
    try:
        yield server, kube
    finally:
        await kube.close()
        kube.client.close()  # type: ignore[no-untyped-call]
        server.server.close()
        await server.server.wait_closed()


async def _ok(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"kind": "Secret", "metadata": {"name": "s"}, "echo": request["target"]}


async def _silent(_: dict[str, Any]) -> None:
    return None


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


@pytest.fixture
def threads_forbidden(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """A call that falls back to a worker thread fails the test."""

    async def no_thread(*_: Any, **__: Any) -> Any:
        raise AssertionError("the call went to a worker thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    return None  # type: ignore[return-value]


def test_a_call_is_sent_on_the_event_loop_with_credentials_and_json(
    threads_forbidden: None,
) -> None:
    async def test() -> None:
        async with serving(_ok) as (server, kube):
            body = await api.call(kube.core.read_namespaced_secret, "s", "shop")
            assert body["metadata"]["name"] == "s"
            assert body["echo"] == "/api/v1/namespaces/shop/secrets/s"
            [request] = server.requests
            assert request["method"] == "GET"
            assert request["headers"]["authorization"] == "Bearer the-token"

    run(test)


@pytest.mark.parametrize(
    ("patch", "content_type"),
    [
        pytest.param(
            {"metadata": {"labels": {"a": "b"}}},
            "application/strategic-merge-patch+json",
            id="an-object-patches-by-strategic-merge-as-the-client-does",
        ),
        pytest.param(
            [{"op": "add", "path": "/metadata/labels/a", "value": "b"}],
            "application/json-patch+json",
            id="a-list-of-operations-is-a-json-patch",
        ),
    ],
)
def test_bodies_are_json_with_the_clients_content_type(
    threads_forbidden: None, patch: Any, content_type: str
) -> None:
    async def test() -> None:
        async with serving(_ok) as (server, kube):
            await api.call(kube.core.patch_namespaced_secret, "s", "shop", patch)
            [request] = server.requests
            assert request["method"] == "PATCH"
            assert request["headers"]["content-type"] == content_type
            assert json.loads(request["body"]) == patch

    run(test)


def test_a_body_without_a_declared_content_type_is_sent_as_json(threads_forbidden: None) -> None:
    # The client declares no content type for some creates (a SelfSubjectReview): its REST
    # layer sends JSON, and so must the transport (the apiserver refuses octet-stream).
    async def test() -> None:
        async with serving(_ok) as (server, kube):
            review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            await api.call(kube.authn.create_self_subject_review, review)
            [request] = server.requests
            assert request["headers"]["content-type"] == "application/json"
            assert json.loads(request["body"]) == review

    run(test)


def test_a_body_is_sent_as_given_not_rebuilt_through_the_clients_model(
    threads_forbidden: None,
) -> None:
    # The generated methods validate their arguments into the client's models (a dict body
    # becomes a V1Role and back, dropping what the model does not know); calls here skip that.
    role = {
        "metadata": {"name": "r", "namespace": "shop"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        "notInTheModel": {"kept": True},
    }

    async def test() -> None:
        async with serving(_ok) as (server, kube):
            await api.call(kube.rbac.create_namespaced_role, "shop", role)
            [request] = server.requests
            assert request["target"] == "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles"
            assert json.loads(request["body"]) == role

    run(test)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(404, errors.NotFound, id="404-is-not-found"),
        pytest.param(409, errors.Conflict, id="409-is-a-conflict"),
        pytest.param(403, errors.Forbidden, id="403-is-forbidden"),
        pytest.param(422, errors.Invalid, id="422-is-invalid"),
        pytest.param(429, errors.Unavailable, id="429-is-worth-retrying"),
        pytest.param(503, errors.Unavailable, id="503-is-worth-retrying"),
    ],
)
def test_refusals_are_translated_with_the_apiservers_message(
    status: int, error: type[errors.KubeError]
) -> None:
    async def answer(_: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return status, {"kind": "Status", "message": 'secrets "s" said no'}

    async def test() -> None:
        async with serving(answer) as (_, kube):
            with pytest.raises(error, match='secrets "s" said no') as caught:
                await api.call(kube.core.read_namespaced_secret, "s", "shop")
            assert caught.value.status == status

    run(test)


def test_a_silent_apiserver_costs_the_calls_timeout_then_unavailable() -> None:
    async def test() -> None:
        async with serving(_silent) as (_, kube):
            started = time.monotonic()
            with pytest.raises(errors.Unavailable, match="could not be reached"):
                await api.call(
                    kube.core.read_namespaced_secret, "s", "shop", _request_timeout=(1, 0.5)
                )
            assert time.monotonic() - started < 20, "bounded by the call's timeout"

    run(test)


def test_a_refused_connection_is_unavailable() -> None:
    async def test() -> None:
        async with serving(_ok) as (server, kube):
            assert server.server is not None
            server.server.close()
            await server.server.wait_closed()
            with pytest.raises(errors.Unavailable, match="could not be reached"):
                await api.call(kube.core.read_namespaced_secret, "s", "shop")

    run(test)


def test_cancelling_a_call_closes_its_connection_at_once() -> None:
    # A cancelled kopf handler must not leave its request running in a thread until the read
    # timeout (30 s): the apiserver sees the connection closed as soon as the call is cancelled.
    async def test() -> None:
        async with serving(_silent) as (server, kube):
            task = asyncio.create_task(api.call(kube.core.read_namespaced_secret, "s", "shop"))
            await server.received.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(server.closed_by_client.wait(), 5)

    run(test)


def test_a_short_lived_loop_closes_its_connections_when_it_ends() -> None:
    """``asyncio.run`` without ``kube.close()`` (the CLI, a test's helper): the loop's session is
    closed as the loop shuts down, so no connection is left for the garbage collector."""
    sessions: list[Any] = []

    async def call_without_closing(server: Apiserver) -> None:
        configuration = client.Configuration()
        configuration.host = server.url
        kube = api.Kube(client.ApiClient(configuration))
        await api.call(kube.core.read_namespaced_secret, "s", "shop")
        sessions.extend(kube.client.transport._sessions.values())

    async def test() -> None:
        server = Apiserver(_ok)
        server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        try:
            await asyncio.to_thread(asyncio.run, call_without_closing(server))
        finally:
            server.server.close()
            await server.server.wait_closed()

    run(test)
    [session] = sessions
    assert session.closed


def test_idle_connections_are_kept_for_the_next_call_as_gos_client_keeps_them() -> None:
    """A burst's connections stay open for the next burst (each new one costs a TLS handshake
    on both sides): two calls share one connection, kept for :data:`transport.IDLE_SECONDS`."""
    connections: list[int] = []

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # HTTP/1.1: answer every request on this connection until it is closed
                await reader.readuntil(b"\r\n\r\n")
                data = b'{"kind": "Secret", "metadata": {"name": "s"}}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        writer.close()

    async def test() -> None:
        server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        kube = api.Kube(client.ApiClient(configuration))
        try:
            await api.call(kube.core.read_namespaced_secret, "s", "shop")
            await asyncio.sleep(0.2)
            await api.call(kube.core.read_namespaced_secret, "s", "shop")
            [session] = kube.client.transport._sessions.values()
            assert session.connector._keepalive_timeout == transport.IDLE_SECONDS >= 90
        finally:
            await kube.close()
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    run(test)
    assert len(connections) == 1
