"""The metrics server's paths: /metrics, /healthz and /readyz as the runtime sets them, 404 else."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from agent_authority import metrics


@pytest.fixture
def server() -> Iterator[str]:
    http = metrics.serve(0, "127.0.0.1")
    live, ready = metrics.HEALTH.live, metrics.HEALTH.ready
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}"
    finally:
        metrics.HEALTH.live, metrics.HEALTH.ready = live, ready
        http.shutdown()
        http.server_close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http://127.0.0.1
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _raises() -> bool:
    raise RuntimeError("broken check")


@pytest.mark.parametrize(
    ("path", "live", "ready", "expected"),
    [
        pytest.param("/healthz", lambda: True, lambda: False, 200, id="alive-before-ready"),
        pytest.param("/healthz", lambda: False, lambda: True, 503, id="stalled-loop-is-not-alive"),
        pytest.param("/readyz", lambda: True, lambda: False, 503, id="not-ready-until-serving"),
        pytest.param("/readyz", lambda: True, lambda: True, 200, id="ready-when-serving"),
        pytest.param("/readyz", lambda: True, _raises, 503, id="a-failing-check-means-not-ready"),
        pytest.param("/metrics", lambda: False, lambda: False, 200, id="metrics-always-served"),
        pytest.param("/", lambda: True, lambda: True, 404, id="root-is-not-found"),
        pytest.param("/anything", lambda: True, lambda: True, 404, id="other-paths-not-found"),
    ],
)
def test_paths(server: str, path: str, live: object, ready: object, expected: int) -> None:
    metrics.HEALTH.live = live  # type: ignore[assignment]
    metrics.HEALTH.ready = ready  # type: ignore[assignment]
    assert _status(server + path) == expected


def test_metrics_body_is_prometheus_text(server: str) -> None:
    with urllib.request.urlopen(server + "/metrics", timeout=5) as response:  # noqa: S310
        body = response.read().decode()
    assert "agent_authority_tokens_minted_total" in body
