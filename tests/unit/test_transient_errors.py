"""Transient apiserver failures retry fast; the /audit receiver trusts one client identity."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
import urllib3.exceptions
from kubernetes.client import exceptions

from agent_authority.controllers import deviations, handling
from agent_authority.kube import api, errors


@pytest.mark.parametrize(
    ("retry", "delay"),
    [
        pytest.param(0, 0.5, id="first-retry-after-half-a-second"),
        pytest.param(1, 1.0, id="then-one-second"),
        pytest.param(2, 2.0, id="then-two"),
        pytest.param(50, 2.0, id="capped-at-two-seconds-however-long-the-outage"),
        pytest.param(-1, 0.5, id="nonsense-retry-counts-start-over"),
    ],
)
def test_retry_delay(retry: int, delay: float) -> None:
    assert handling.retry_delay(retry) == delay


def _raising(error: BaseException) -> Any:
    def fn(*_: Any, **kwargs: Any) -> Any:
        assert kwargs["_request_timeout"] == api.REQUEST_TIMEOUT, "every call has a timeout"
        raise error

    return fn


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            urllib3.exceptions.MaxRetryError(None, "/api", "refused"), id="connection-refused"
        ),
        pytest.param(urllib3.exceptions.ReadTimeoutError(None, "/api", "slow"), id="read-timeout"),
        pytest.param(urllib3.exceptions.ProtocolError("reset"), id="connection-reset"),
        pytest.param(ConnectionResetError("reset"), id="os-level-reset"),
        pytest.param(exceptions.ApiException(status=429, reason="throttled"), id="429"),
        pytest.param(exceptions.ApiException(status=503, reason="unavailable"), id="503"),
        pytest.param(exceptions.ApiException(status=500, reason="etcd"), id="500"),
    ],
)
def test_transient_failures_become_fast_temporary_errors(error: BaseException) -> None:
    with pytest.raises(errors.Unavailable):
        api.sync(_raising(error))

    @handling.translating
    async def handler(**_: Any) -> None:
        api.sync(_raising(error))

    with pytest.raises(kopf.TemporaryError) as caught:
        asyncio.run(handler(retry=3))
    assert caught.value.delay == handling.TRANSIENT_MAX_DELAY


def test_a_403_is_retried_for_a_while_then_permanent() -> None:
    # A restarted apiserver answers 403 to everyone until its RBAC informers sync.
    @handling.translating
    async def handler(**_: Any) -> None:
        api.sync(_raising(exceptions.ApiException(status=403, reason="Forbidden")))

    with pytest.raises(kopf.TemporaryError) as caught:
        asyncio.run(handler(retry=0))
    assert caught.value.delay == handling.TRANSIENT_FIRST_DELAY
    with pytest.raises(kopf.PermanentError, match="ClusterRole does not allow"):
        asyncio.run(handler(retry=handling.FORBIDDEN_RETRIES))


def cert(*names: str) -> dict[str, Any]:
    return {"subject": (*((("commonName", n),) for n in names), (("organizationName", "x"),))}


ALLOWED = frozenset({"system:kube-apiserver-audit"})


@pytest.mark.parametrize(
    ("peercert", "allowed"),
    [
        pytest.param(cert("system:kube-apiserver-audit"), True, id="the-apiserver-audit-client"),
        pytest.param(cert("admin"), False, id="another-client-of-the-same-ca"),
        pytest.param(cert(), False, id="no-common-name"),
        pytest.param(
            cert("admin", "system:kube-apiserver-audit"), False, id="two-common-names-refused"
        ),
        pytest.param(None, False, id="no-certificate"),
    ],
)
def test_only_the_pinned_audit_client_may_post(peercert: Any, allowed: bool) -> None:
    assert deviations.client_allowed(peercert, ALLOWED) is allowed


def test_the_receiver_refuses_to_start_without_a_client_ca() -> None:
    receiver = deviations.Receiver(api.Kube.__new__(api.Kube))
    with pytest.raises(deviations.ReceiverError, match="--audit-client-ca"):
        asyncio.run(
            receiver.start(host="127.0.0.1", port=0, certfile="x", keyfile="y", client_ca=None)
        )


def test_the_operator_refuses_to_start_a_receiver_without_a_client_ca() -> None:
    from agent_authority import runtime

    with pytest.raises(runtime.StartupError, match="--audit-client-ca"):
        runtime.check(runtime.Options(audit_client_ca=None))
    runtime.check(runtime.Options(audit_client_ca=None, audit_port=0))  # receiver off: fine
    assert runtime.Options().audit_addr == "127.0.0.1"
    assert runtime.Options().audit_trail == runtime.DEFAULT_AUDIT_TRAIL
