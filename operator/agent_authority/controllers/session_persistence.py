"""What kopf remembers of a session between events: nothing it has to write.

kopf writes a diff base (an annotation holding the last handled spec) after its create handler,
so that the next event is not taken for a creation again. For an IncidentSession that write is
work nobody needs, made while the next sessions are being activated: the session controller has
no update handlers, every handler is level-triggered (it reads the session fresh and does what
its phase says), and whether a session has been handled is already in its status, which only
the operator writes (admission policy and webhook). So :class:`DiffBase` answers kopf, for a
session, from the object itself:

- no ``status.phase``: never handled, no diff base: kopf's create handler runs (and, after a
  failure, retries by its progress annotations as before);
- a phase: handled; its diff base is what it is now, so kopf sees no change (and, the first
  time this process sees it, runs its resume handlers, as with a stored diff base).

It writes no diff base for sessions, nor kopf's ``<prefix>/kopf-managed`` marker (which kopf
would otherwise add with the first progress or diff-base write, in its own patch after the create
handler even when no progress is left to keep: :class:`Progress`). The marker only tells other
kopf-based operators to leave our annotations out of their diff bases; a session carries none
of ours unless a handler is being retried. Every other kind keeps kopf's annotations as before.
"""

from __future__ import annotations

from typing import Any

import kopf

from agent_authority.models import GROUP

SESSION_KIND = "IncidentSession"


def _is_session(body: kopf.Body) -> bool:
    return body.get("kind") == SESSION_KIND and str(body.get("apiVersion", "")).startswith(
        f"{GROUP}/"
    )


def handled(body: kopf.Body) -> bool:
    """Whether the operator has handled this session (it wrote a phase to its status)."""
    return bool((body.get("status") or {}).get("phase"))


class DiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base, except for sessions: read from the session, never written."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if _is_session(body):
            return self.build(body=body) if handled(body) else None
        return super().fetch(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if _is_session(body):
            return  # nothing to remember: the status says the session was handled
        super().store(body=body, patch=patch, essence=essence)

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: Any) -> None:
        if isinstance(body, kopf.Body) and _is_session(body):
            return
        super()._store_marker(prefix=prefix, patch=patch, body=body)


class Progress(kopf.AnnotationsProgressStorage):
    """kopf's progress annotations, without the ``kopf-managed`` marker on sessions: a handler
    that succeeds at once leaves nothing to write (its progress is purged in the same patch)."""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: Any) -> None:
        if isinstance(body, kopf.Body) and _is_session(body):
            return
        super()._store_marker(prefix=prefix, patch=patch, body=body)
