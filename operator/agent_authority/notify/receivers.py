"""Which receivers get notices: a YAML (or JSON) file, validated before the operator starts.

::

    pageUrl: https://approvals.example.internal    # links in notices point here
    delivery: {attempts: 5, initialBackoffSeconds: 1, maxBackoffSeconds: 30,
               timeoutSeconds: 5, queueSize: 100}
    receivers:
      - name: oncall
        format: slack                  # slack | teams | json
        urlFile: /etc/agent-authority/slack-url   # or url: (the URL is a secret for Slack)
        events: [awaiting-approval, decided]      # default: every kind
      - name: siem
        format: json
        url: https://siem.internal/hooks/agent-authority
        secretFile: /etc/agent-authority/siem-hmac  # required for json: the HMAC key

A receiver's URL must be ``http`` or ``https``; a ``json`` receiver without a secret, an unknown
format or event, or two receivers with one name are refused with the field named.
"""

from __future__ import annotations

import pathlib
import urllib.parse
from typing import Annotated, Any

import pydantic
import yaml

from agent_authority.notify import formats, notices


class ConfigError(ValueError):
    """The receivers file is unreadable or invalid; the message names the field."""


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=pydantic.alias_generators.to_camel, populate_by_name=True, extra="forbid"
    )


class Delivery(_Model):
    attempts: Annotated[int, pydantic.Field(ge=1, le=20)] = 5
    initial_backoff_seconds: Annotated[float, pydantic.Field(gt=0, le=60)] = 1.0
    max_backoff_seconds: Annotated[float, pydantic.Field(gt=0, le=600)] = 30.0
    timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=60)] = 5.0
    queue_size: Annotated[int, pydantic.Field(ge=1, le=10000)] = 100

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts: doubling, capped."""
        return float(
            min(self.max_backoff_seconds, self.initial_backoff_seconds * 2 ** (failures - 1))
        )


class Receiver(_Model):
    name: Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")]
    format: formats.Format
    url: str | None = None
    url_file: str | None = None
    secret_file: str | None = None
    events: list[notices.Kind] = pydantic.Field(default_factory=lambda: list(notices.Kind))
    secret: bytes = pydantic.Field(default=b"", exclude=True)

    @pydantic.model_validator(mode="after")
    def _complete(self) -> Receiver:
        if bool(self.url) == bool(self.url_file):
            raise ValueError("exactly one of url and urlFile is required")
        if self.url_file:
            self.url = _read(self.url_file, "urlFile").decode().strip()
        scheme = urllib.parse.urlsplit(self.url or "").scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"url: scheme must be http or https, not {scheme!r}")
        if self.format is formats.Format.JSON:
            if not self.secret_file:
                raise ValueError("secretFile: a json receiver needs an HMAC secret to sign with")
            self.secret = _read(self.secret_file, "secretFile").strip()
            if len(self.secret) < 16:
                raise ValueError("secretFile: the HMAC secret must be at least 16 bytes")
        return self


class Config(_Model):
    page_url: str = ""
    delivery: Delivery = pydantic.Field(default_factory=Delivery)
    receivers: list[Receiver] = pydantic.Field(default_factory=list)

    @pydantic.model_validator(mode="after")
    def _unique(self) -> Config:
        names = [r.name for r in self.receivers]
        if len(names) != len(set(names)):
            raise ValueError("receivers[].name: each receiver needs its own name")
        return self


def _read(path: str, field: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{field}: cannot read {path}: {e.strerror}") from e


def parse(data: Any) -> Config:
    try:
        return Config.model_validate(data or {})
    except pydantic.ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"notification receivers: {problems}") from e


def load(path: str) -> Config:
    """Read and validate the receivers file at ``path``."""
    try:
        data = yaml.safe_load(pathlib.Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"notification receivers: cannot read {path}: {e}") from e
    return parse(data)
