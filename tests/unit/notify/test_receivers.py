"""The receivers file: refused with the field named, secrets read from files."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from agent_authority.notify import receivers


def _one(tmp_path: pathlib.Path, **receiver: Any) -> dict[str, Any]:
    return {"receivers": [{"name": "r", **receiver}]}


def test_a_signed_json_receiver_reads_its_secret_and_a_url_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "secret").write_bytes(b"0123456789abcdef\n")
    (tmp_path / "url").write_text("https://hooks.example/x\n")
    config = receivers.parse(
        _one(
            tmp_path,
            format="json",
            urlFile=str(tmp_path / "url"),
            secretFile=str(tmp_path / "secret"),
        )
    )
    (receiver,) = config.receivers
    assert receiver.secret == b"0123456789abcdef"
    assert receiver.url == "https://hooks.example/x"
    assert len(receiver.events) == 5  # every kind by default


@pytest.mark.parametrize(
    ("receiver", "field"),
    [
        pytest.param(
            {"format": "json", "url": "https://x"}, "secretFile", id="json-needs-a-secret"
        ),
        pytest.param({"format": "pager", "url": "https://x"}, "format", id="unknown-format"),
        pytest.param({"format": "slack"}, "url", id="a-url-is-required"),
        pytest.param({"format": "slack", "url": "file:///etc/passwd"}, "scheme", id="http-only"),
        pytest.param(
            {"format": "slack", "url": "https://x", "events": ["everything"]},
            "events",
            id="unknown-event",
        ),
        pytest.param(
            {"format": "slack", "url": "https://x", "secretFile": "/nonexistent"},
            "",
            id="a-secret-file-is-only-read-for-json",
        ),
    ],
)
def test_refusals_name_the_field(receiver: dict[str, Any], field: str) -> None:
    if not field:
        receivers.parse({"receivers": [{"name": "r", **receiver}]})
        return
    with pytest.raises(receivers.ConfigError) as refused:
        receivers.parse({"receivers": [{"name": "r", **receiver}]})
    assert field in str(refused.value)


def test_two_receivers_with_one_name_are_refused() -> None:
    one = {"name": "r", "format": "slack", "url": "https://x"}
    with pytest.raises(receivers.ConfigError, match=r"receivers\[\]\.name"):
        receivers.parse({"receivers": [one, one]})


def test_a_short_hmac_secret_is_refused(tmp_path: pathlib.Path) -> None:
    (tmp_path / "s").write_bytes(b"short")
    with pytest.raises(receivers.ConfigError, match="at least 16 bytes"):
        receivers.parse(
            _one(tmp_path, format="json", url="https://x", secretFile=str(tmp_path / "s"))
        )


def test_backoff_doubles_and_is_capped() -> None:
    delivery = receivers.Delivery(initialBackoffSeconds=1, maxBackoffSeconds=5)
    assert [delivery.backoff(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]


def test_an_unreadable_file_is_a_config_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(receivers.ConfigError, match="cannot read"):
        receivers.load(str(tmp_path / "missing.yaml"))
