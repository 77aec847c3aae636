"""One agent's state in the MCP server: its base identity and the sessions it opened.

An :class:`Agent` holds the base identity's API client (the agent's kubeconfig in stdio mode,
its verified bearer token in HTTP mode), used only to open, read and end IncidentSessions and to
read each session's token Secret; and one :class:`Handle` per open session, holding the session
token's client, used for everything else. Session rules are re-read from the session's status
at most every ``REFRESH_SECONDS`` (and whenever a call fails), so a narrowed or revoked session
is seen quickly without a read before every call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from typing import Any

from kubernetes import client

from agent_authority.kube import agentapi, errors
from agent_authority.models import GROUP, VERSION, grant, session

REFRESH_SECONDS = 2.0
OPEN_TIMEOUT = 60.0
TERMINAL = {p.value for p in session.TERMINAL_PHASES}


class ToolError(Exception):
    """A refusal or failure to report to the agent as a tool error (never a traceback)."""


class Rejected(ToolError):
    """The apiserver refused a session credential (401/403): the session may have ended."""


def refusal_of(e: errors.KubeError) -> str:
    """The operator's or apiserver's reason, without the webhook boilerplate around it."""
    message = str(e)
    marker = "denied the request: "
    if marker in message:
        message = message.split(marker, 1)[1]
    return message


@dataclasses.dataclass
class Handle:
    """An open session: its name, its token's client, and its rules as last read."""

    name: str
    namespace: str
    body: dict[str, Any]
    client: client.ApiClient
    read_at: float

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.body.get("status") or {}
        return status

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Pending")

    _parsed: tuple[str, list[grant.PolicyRule]] | None = None

    @property
    def rules(self) -> list[grant.PolicyRule]:
        """``status.effectiveRules``, parsed once per resourceVersion of the session read."""
        version = str((self.body.get("metadata") or {}).get("resourceVersion", ""))
        if self._parsed is None or self._parsed[0] != version or not version:
            raw = self.status.get("effectiveRules", [])
            self._parsed = (version, [grant.PolicyRule.model_validate(r) for r in raw])
        return self._parsed[1]


def _name_for(incident_id: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", incident_id.lower()).strip("-")[:30].strip("-") or "incident"
    return f"mcp-{stem}-{uuid.uuid4().hex[:5]}"


class Agent:
    """The sessions of one base identity (one per stdio process; one per verified user in HTTP)."""

    def __init__(self, base: client.ApiClient, namespace: str, username: str | None = None):
        self.base = base
        self.namespace = namespace
        self.username = username
        self.sessions: dict[str, Handle] = {}
        self.current: str | None = None
        self._lock = asyncio.Lock()

    # -- which session ---------------------------------------------------------------------

    def handle(self, name: str | None) -> Handle:
        wanted = name or self.current
        if wanted is None:
            raise ToolError("no session is open: call open_session first")
        found = self.sessions.get(wanted)
        if found is None:
            raise ToolError(
                f"session '{wanted}' was not opened through this server by this identity "
                f"(open: {', '.join(sorted(self.sessions)) or 'none'})"
            )
        return found

    async def refreshed(self, name: str | None, *, force: bool = False) -> Handle:
        """The session, its status re-read when older than ``REFRESH_SECONDS`` (or forced)."""
        handle = self.handle(name)
        if force or time.monotonic() - handle.read_at > REFRESH_SECONDS:
            try:
                handle.body = await agentapi.get_session(self.base, handle.namespace, handle.name)
            except errors.NotFound as e:
                self._forget(handle.name)
                raise ToolError(f"session '{handle.name}' no longer exists") from e
            handle.read_at = time.monotonic()
        return handle

    async def active(self, name: str | None, *, force: bool = False) -> Handle:
        """An Active session, or a tool error saying how it ended."""
        handle = await self.refreshed(name, force=force)
        if handle.phase != session.SessionPhase.ACTIVE.value:
            handle = await self.refreshed(name, force=True)
        if handle.phase != session.SessionPhase.ACTIVE.value:
            revocation = handle.status.get("revocation") or {}
            why = revocation.get("reason", handle.phase)
            detail = f": {revocation['message']}" if revocation.get("message") else ""
            raise ToolError(f"session '{handle.name}' is {handle.phase} ({why}{detail})")
        return handle

    def rules(self) -> list[grant.PolicyRule] | None:
        """Rules of the current session when it is Active (None: no Active session)."""
        if self.current is None or self.current not in self.sessions:
            return None
        handle = self.sessions[self.current]
        return handle.rules if handle.phase == session.SessionPhase.ACTIVE.value else None

    def _forget(self, name: str) -> None:
        self.sessions.pop(name, None)
        if self.current == name:
            self.current = next(iter(reversed(self.sessions)), None)

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(
        self,
        *,
        grant_name: str,
        incident: dict[str, Any],
        purpose: str,
        scopes: list[dict[str, Any]] | None,
        ttl_seconds: int | None,
        parent: str | None = None,
        name: str | None = None,
    ) -> Handle:
        """Create the IncidentSession as the base identity, wait until Active, get its token."""
        spec: dict[str, Any] = {
            "grantRef": {"name": grant_name},
            "incident": incident,
            "purpose": purpose,
        }
        if scopes is not None:
            spec["scopes"] = scopes
        if ttl_seconds is not None:
            spec["ttlSeconds"] = ttl_seconds
        if parent is not None:
            spec["parentSession"] = parent
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "IncidentSession",
            "metadata": {"name": name or _name_for(str(incident.get("id", "")))},
            "spec": spec,
        }
        try:
            created = await agentapi.create_session(self.base, self.namespace, body)
        except errors.KubeError as e:
            raise ToolError(f"the session was refused: {refusal_of(e)}") from e
        session_name = created["metadata"]["name"]
        found = await self._wait_open(session_name)
        token = await self._token(found)
        handle = Handle(
            name=session_name,
            namespace=self.namespace,
            body=found,
            client=agentapi.with_token(self.base, token),
            read_at=time.monotonic(),
        )
        async with self._lock:
            self.sessions[session_name] = handle
            if parent is None:
                self.current = session_name
        return handle

    async def _wait_open(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            found = await agentapi.get_session(self.base, self.namespace, name)
            status = found.get("status") or {}
            phase = status.get("phase")
            if phase == session.SessionPhase.ACTIVE.value and status.get("secretName"):
                return found
            if phase in TERMINAL:
                revocation = status.get("revocation") or {}
                raise ToolError(
                    f"the session was refused: {revocation.get('reason', phase)}: "
                    f"{revocation.get('message', '')}".rstrip(": ")
                )
            if time.monotonic() > deadline:
                raise ToolError(
                    f"session '{name}' did not become Active within {OPEN_TIMEOUT:.0f} s "
                    f"(phase: {phase or 'none yet'}); is the operator running?"
                )
            await asyncio.sleep(0.1)

    async def _token(self, body: dict[str, Any]) -> str:
        secret = body["status"]["secretName"]
        deadline = time.monotonic() + 10
        while True:
            try:
                return await agentapi.session_token(self.base, self.namespace, secret)
            except errors.NotFound:
                if time.monotonic() > deadline:
                    raise ToolError(f"the session's token Secret {secret} holds no token") from None
                await asyncio.sleep(0.1)
            except errors.KubeError as e:
                raise ToolError(f"the session's token could not be read: {refusal_of(e)}") from e

    async def end(self, name: str | None) -> Handle:
        handle = self.handle(name)
        try:
            await agentapi.end_session(self.base, handle.namespace, handle.name)
        except errors.KubeError as e:
            raise ToolError(f"the session could not be ended: {refusal_of(e)}") from e
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            handle = await self.refreshed(handle.name, force=True)
            if handle.phase in TERMINAL:
                break
            await asyncio.sleep(0.1)
        async with self._lock:
            self._forget(handle.name)
        return handle
