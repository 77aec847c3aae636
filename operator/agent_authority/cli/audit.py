"""``agent-authority audit verify``: check an audit log offline and name the first tampered record.

``audit show LOG --session UID|NAME`` prints one session's records (its lifecycle and, in gateway
mode, every call it made), oldest first.

Needs the log and the public key only (never the signing key, never a cluster). The checks are
:func:`agent_authority.audit.verify.verify`'s: hash, key id, signature, sequence and chain of every
record (following signed key hand-overs from the key the log began with), and, with an anchor
(a ``seq`` and ``hash`` kept somewhere the log's writer cannot rewrite, such as the head printed
by the previous verification), that the log reaches the anchor and agrees with it. Without an
anchor, records cut off the end cannot be noticed.

Exit 0 when the log verifies, 1 when it does not, 2 when the log or key cannot be read or the
anchor is malformed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from typing import Any

from agent_authority.audit import errors, signing, verify
from agent_authority.cli import help_text, render
from agent_authority.models import audit as audit_models

_HASH = re.compile(r"[0-9a-f]{64}")


_EXAMPLE = """
agent-authority audit verify trail.jsonl --public-key trail.jsonl.key.pub
agent-authority audit verify trail.jsonl --public-key trail.jsonl.key.pub -o json
"""


def add_parser(sub: Any) -> None:
    """Register ``audit verify`` on the top-level subparsers."""
    group = sub.add_parser(
        "audit",
        help="verify audit logs offline",
        **help_text.examples(_EXAMPLE),
    )
    commands = group.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "verify",
        help="verify an audit log's hash chain and signatures; name the first tampered record",
        **help_text.examples(
            _EXAMPLE,
            "Exit 0 when the log verifies, 1 when it does not, 2 when the log or key "
            "cannot be read.",
        ),
    )
    check.add_argument("log", metavar="LOG", help="JSON-lines audit log, or - for stdin")
    check.add_argument(
        "--public-key",
        required=True,
        metavar="PEM",
        help="Ed25519 public key (PEM) the log began with (<log>.root.pub); hand-overs followed",
    )
    check.add_argument(
        "--anchor-seq", type=int, metavar="N", help="seq of a head recorded earlier (with hash)"
    )
    check.add_argument(
        "--anchor-hash", metavar="H", help="hash of that record (64 hex digits, with seq)"
    )
    render.add_output_argument(check, [render.Format.TEXT, render.Format.JSON])
    check.set_defaults(func=run_verify)
    show = commands.add_parser(
        "show",
        help="print audit records, optionally only those of one session",
        **help_text.examples(
            """
            agent-authority audit show trail.jsonl --session checkout-latency
            agent-authority audit show trail.jsonl --event GatewayRequest -o json
            """,
            "Prints records as they are (verify them with 'audit verify').",
        ),
    )
    show.add_argument("log", metavar="LOG", help="JSON-lines audit log")
    show.add_argument(
        "--session",
        metavar="UID|NAME",
        help="only this session's records: by uid (correlation id) or by IncidentSession name",
    )
    show.add_argument("--event", help="only records of this event (e.g. GatewayRequest)")
    render.add_output_argument(show, [render.Format.TEXT, render.Format.JSON])
    show.set_defaults(func=run_show)


def _anchor(args: argparse.Namespace) -> audit_models.Checkpoint | None:
    """The anchor from the arguments; ``ValueError`` says what is wrong with them."""
    if args.anchor_seq is None and args.anchor_hash is None:
        return None
    if args.anchor_seq is None or args.anchor_hash is None:
        raise ValueError(
            "--anchor-seq and --anchor-hash go together: an anchor is one record's seq and hash "
            "(allowed: both, as printed by an earlier verification, or neither)"
        )
    if args.anchor_seq < 0:
        raise ValueError(f"--anchor-seq {args.anchor_seq} is refused (allowed: 0 or more)")
    digest = args.anchor_hash.lower()
    if not _HASH.fullmatch(digest):
        raise ValueError(
            f"--anchor-hash {args.anchor_hash!r} is refused (allowed: 64 hex digits, a SHA-256)"
        )
    return audit_models.Checkpoint(seq=args.anchor_seq, hash=digest)


def run_verify(args: argparse.Namespace) -> int:
    """``audit verify LOG --public-key PEM``: 0 verified, 1 tampered, 2 unreadable input."""
    try:
        anchor = _anchor(args)
    except ValueError as e:
        return render.usage_error(str(e))
    key_path = pathlib.Path(args.public_key)
    try:
        if args.log == "-":
            public_key = signing.load_public_key(key_path)
            result = verify.verify(sys.stdin.buffer, public_key, anchor=anchor)
        else:
            result = verify.verify_file(pathlib.Path(args.log), key_path, anchor=anchor)
    except errors.AuditError as e:
        return render.usage_error(str(e))
    label = "<stdin>" if args.log == "-" else args.log
    if render.Format(args.output) is render.Format.JSON:
        print(render.to_json(_json(label, result)))
    else:
        print(_text(result, anchored=anchor is not None))
    return render.EXIT_OK if result.ok else render.EXIT_FINDINGS


def _text(result: verify.VerifyResult, *, anchored: bool) -> str:
    records = render.plural(result.records_checked, "record")
    head = result.head
    if not result.ok:
        line = f" (line {result.line})" if result.line else ""
        before = (
            f"{records} before it verified; last good seq {head.seq} hash {head.hash}"
            if head is not None
            else "no record before it verified"
        )
        return (
            f"TAMPERED at seq {result.first_bad_seq}{line}: {result.reason} — {result.detail}\n"
            f"  {before}"
        )
    lines = [
        "OK: empty log, 0 records"
        if head is None
        else f"OK: {records}, head seq {head.seq} hash {head.hash}"
    ]
    if len(result.key_ids) > 1:
        lines.append(f"  signing keys, in hand-over order: {' -> '.join(result.key_ids)}")
    if head is not None:
        lines.append(f"  next anchor: --anchor-seq {head.seq} --anchor-hash {head.hash}")
    if not anchored:
        lines.append(
            "  no anchor given: records cut off the end of the log cannot be noticed "
            "(keep the head above somewhere the writer cannot rewrite, and pass it next time)"
        )
    return "\n".join(lines)


def _json(label: str, result: verify.VerifyResult) -> dict[str, object]:
    head = result.head
    return {
        "log": label,
        "ok": result.ok,
        "recordsChecked": result.records_checked,
        "head": {"seq": head.seq, "hash": head.hash} if head is not None else None,
        "firstBadSeq": result.first_bad_seq,
        "line": result.line,
        "reason": str(result.reason) if result.reason is not None else None,
        "detail": result.detail,
        "keyIds": list(result.key_ids),
    }


def session_matches(record: dict[str, Any], session: str) -> bool:
    """Whether ``record`` is about the session given by uid or by name.

    Session records carry the session uid as their correlation id; gateway calls carry
    ``<session uid>/<request id>``; both name the IncidentSession as their object.
    """
    correlation = str(record.get("correlationId") or "")
    if correlation == session or correlation.startswith(f"{session}/"):
        return True
    obj = record.get("object") or {}
    return obj.get("kind") == "IncidentSession" and session in (obj.get("name"), obj.get("uid"))


def run_show(args: argparse.Namespace) -> int:
    """``audit show LOG [--session S] [--event E]``: the matching records, oldest first."""
    try:
        lines = pathlib.Path(args.log).read_text().splitlines()
    except OSError as e:
        return render.usage_error(f"cannot read {args.log}: {e}")
    as_json = render.Format(args.output) is render.Format.JSON
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            return render.usage_error(f"{args.log} line {number} is not JSON")
        if args.session and not session_matches(record, args.session):
            continue
        if args.event and record.get("event") != args.event:
            continue
        if as_json:
            print(line)
            continue
        obj = record.get("object") or {}
        where = "/".join(p for p in (obj.get("namespace"), obj.get("name")) if p)
        print(
            f"{record.get('seq')}\t{record.get('time')}\t{record.get('event')}\t{where}\t"
            f"{record.get('reason')}\t{record.get('message')}"
        )
    return render.EXIT_OK
