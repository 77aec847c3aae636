"""What kopf remembers of a session or a request between events: nothing it has to write.

kopf writes a diff base (an annotation holding the last handled spec) after its create handler,
so that the next event is not taken for a creation again. For the kinds in :data:`HANDLED_KINDS`
(IncidentSession, RemediationRequest) that write is work nobody needs, and it lands while the
object is busy: the next sessions are being activated, or the approver's status patch of a
request that has just started waiting is in admission (the apiserver then applies that patch,
and runs its webhooks, again). Their controllers have no update handlers, every handler is
level-triggered (it reads the object fresh and does what its phase says), and whether the
object has been handled is already in its status, which only the operator writes (admission
policies and webhooks). So :class:`DiffBase` answers kopf, for these kinds, from the object
itself (:func:`handled`):

- no ``status.phase``: never handled, no diff base: kopf's create handler runs (and, after a
  failure, retries by its progress annotations as before);
- a phase, and a handler's progress kept in the annotations (:func:`progress_kept`: it failed
  and kopf retries it, after the handler wrote a phase): not handled yet, no diff base, so kopf
  retries it as it would with a stored diff base, which it writes only once every handler is
  done;
- a phase and no progress kept: handled; its diff base is what it is now, so kopf sees no change
  (and, the first time this process sees it, runs its resume handlers, as with a stored diff
  base).

The annotations are inputs, not facts (only the operator may write ours on a session; a
request's are guarded by nothing but RBAC on the request): a forged progress record only makes
kopf run, or wait to run, the create handler again, which re-reads the object and does what its
phase says, as on every resume; removing one only loses kopf's retry. Both are so with kopf's
own annotation storage too, which reads the same records.

It writes no diff base for these kinds, nor kopf's ``<prefix>/kopf-managed`` marker (which kopf
would otherwise add with the first progress or diff-base write, in its own patch after the create
handler even when no progress is left to keep: :class:`Progress`). The marker only tells other
kopf-based operators to leave our annotations out of their diff bases; such an object carries
none of ours unless a handler is being retried. Every other kind keeps kopf's annotations as
before.
"""

from __future__ import annotations

import json
from typing import Any

import kopf

from agent_authority.models import GROUP

HANDLED_KINDS = frozenset({"IncidentSession", "RemediationRequest"})
"""Kinds whose status says they were handled: only the operator writes their ``status.phase``."""

_RECORD_FIELDS = frozenset(
    {"started", "stopped", "delayed", "purpose", "retries", "success", "failure", "message"}
)
"""The fields of kopf's progress record of a handler (``kopf.ProgressRecord``)."""


def _is_handled_kind(body: Any) -> bool:
    return (
        isinstance(body, kopf.Body)
        and body.get("kind") in HANDLED_KINDS
        and str(body.get("apiVersion", "")).startswith(f"{GROUP}/")
    )


def progress_kept(body: kopf.Body, prefix: str) -> bool:
    """Whether kopf keeps a handler's progress in the annotations under ``prefix`` (a handler
    that failed and is retried; kopf removes them once every handler is done)."""
    for key, value in (body.get("metadata", {}).get("annotations") or {}).items():
        if not key.startswith(f"{prefix}/"):
            continue
        try:
            record = json.loads(value)
        except (TypeError, ValueError):
            continue  # kopf's marker ("yes"), its touch timestamp: no progress
        if isinstance(record, dict) and _RECORD_FIELDS.intersection(record):
            return True
    return False


def handled(body: kopf.Body, prefix: str) -> bool:
    """Whether the operator has handled this object: it wrote a phase to its status, and no
    handler of it is being retried."""
    return bool((body.get("status") or {}).get("phase")) and not progress_kept(body, prefix)


class DiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base, except for :data:`HANDLED_KINDS`: read from the object,
    never written."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if _is_handled_kind(body):
            return self.build(body=body) if handled(body, self.prefix or "") else None
        return super().fetch(body=body)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if _is_handled_kind(body):
            return  # nothing to remember: the status says the object was handled
        super().store(body=body, patch=patch, essence=essence)

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: Any) -> None:
        if _is_handled_kind(body):
            return
        super()._store_marker(prefix=prefix, patch=patch, body=body)


class Progress(kopf.AnnotationsProgressStorage):
    """kopf's progress annotations, without the ``kopf-managed`` marker on
    :data:`HANDLED_KINDS`: a handler that succeeds at once leaves nothing to write (its progress
    is purged in the same patch)."""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: Any) -> None:
        if _is_handled_kind(body):
            return
        super()._store_marker(prefix=prefix, patch=patch, body=body)
