"""The operator's memory helpers: allocator tuning, trimming, and the opt-in allocation dump."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import os
import pathlib
import signal
import ssl
import tracemalloc

import pytest

from agent_authority import certs, memory


def test_arenas_are_capped_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory._libc() is not None, "these tests run on glibc (the operator image's libc)"
    assert memory.tune() is True


def test_an_explicit_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.tune() is False


def test_trim_gives_freed_heap_back_without_failing() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(256)]  # 16 MiB from malloc, then freed
    del blocks
    assert isinstance(memory.trim(), bool)
    assert memory.rss_kib() > 0


def test_no_dump_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memory.DUMP_ENV, raising=False)

    async def main() -> pathlib.Path | None:
        return memory.install_dump(asyncio.get_running_loop())

    assert asyncio.run(main()) is None


def test_sigusr1_appends_top_allocation_sites(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "allocations.txt"
    monkeypatch.setenv(memory.DUMP_ENV, str(target))
    kept: list[bytes] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert memory.install_dump(loop) == target
        kept.extend(os.urandom(1) * 100_000 for _ in range(20))  # 2 MB from this line
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if target.exists():
                break
        loop.remove_signal_handler(signal.SIGUSR1)

    try:
        asyncio.run(main())
    finally:
        tracemalloc.stop()
    text = target.read_text()
    assert text.startswith("=== "), text[:200]
    assert "rss=" in text
    assert "tasks=" in text
    assert "test_memory.py:" in text, "the allocating line is named by file:line"
    assert "--- resident memory by mapping" in text
    assert "--- objects tracked by gc, by type" in text


def test_trimming_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)

    async def main() -> None:
        task = asyncio.create_task(memory.trimming(every=0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if len(calls) >= 3:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(calls) >= 3


def test_the_operator_tunes_its_allocator_before_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent_authority import runtime

    order: list[str] = []
    monkeypatch.setattr(memory, "tune", lambda: order.append("tune") or True)
    monkeypatch.setattr(runtime, "check", lambda options: order.append("check"))
    monkeypatch.setattr(runtime, "open_audit_trail", lambda options: order.append("trail"))
    monkeypatch.setattr(
        runtime.kopf, "configure", lambda **_: (_ for _ in ()).throw(RuntimeError("stop here"))
    )
    with pytest.raises(RuntimeError, match="stop here"):
        asyncio.run(runtime.run(runtime.Options()))
    assert order == ["tune", "check", "trail"]


def test_a_tls_connection_gets_a_small_read_buffer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    protocol = asyncio.sslproto.SSLProtocol
    monkeypatch.setattr(protocol, "max_size", 256 * 1024)  # asyncio's own default
    memory.tune()
    assert protocol.max_size == memory.TLS_READ_BUFFER
    assert memory.TLS_READ_BUFFER >= 16 * 1024 + 2048 + 5, "one TLS record of ciphertext"
    ca = certs.Authority.create(tmp_path, "test-ca")
    pair = ca.issue(
        tmp_path, "serving", common_name="127.0.0.1", ip_addresses=["127.0.0.1"], server=True
    )
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(pair.cert, pair.key)
    client_side = ssl.create_default_context(cafile=str(ca.files.cert))

    async def main() -> int:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_side)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_side)
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        size = len(writer.transport._ssl_protocol._ssl_buffer)  # type: ignore[attr-defined]
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return size

    assert asyncio.run(main()) == memory.TLS_READ_BUFFER
