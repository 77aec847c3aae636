"""The HTML of the approval page: small, server-rendered, readable on a phone, no JavaScript.

Every value from the cluster is escaped here (:func:`e`); nothing else in the package writes
HTML. Views receive plain dicts (object bodies as the apiserver returned them) and the decisions
already made (``policy.approval_view.Offer``), and only lay them out.
"""

from __future__ import annotations

import dataclasses
import html
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from agent_authority.policy import approval_view

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;padding:0 1rem 2rem;max-width:60rem;
line-height:1.4;color:#1b1b1b}
header{display:flex;justify-content:space-between;align-items:center;gap:1rem;flex-wrap:wrap;
border-bottom:1px solid #ccc;padding:.5rem 0;margin-bottom:1rem}
h1{font-size:1.3rem;margin:.5rem 0}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.35rem .4rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
.card{border:1px solid #ddd;border-radius:.4rem;padding:.6rem .8rem;margin:.5rem 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.5rem;margin:.3rem 0}
.diff .del{color:#a40000;background:#fde8e8}.diff .add{color:#005a00;background:#e5f7e5}
.why{background:#fff6dc;border:1px solid #e6c65c;padding:.6rem;border-radius:.4rem}
.error{background:#fde8e8;border:1px solid #d77;padding:.6rem;border-radius:.4rem}
.ok{background:#e5f7e5;border:1px solid #7b7;padding:.6rem;border-radius:.4rem}
textarea,input[type=text]{width:100%;box-sizing:border-box;font:inherit;padding:.4rem}
button{font:inherit;padding:.5rem 1.2rem;margin:.4rem .4rem 0 0;border-radius:.3rem;
border:1px solid #777;background:#f3f3f3}
button.approve{background:#1f7a1f;color:#fff;border-color:#1f7a1f}
button.deny{background:#a40000;color:#fff;border-color:#a40000}
.muted{color:#666;font-size:.9rem}code{word-break:break-all}
@media (max-width:40rem){.rows thead{display:none}
.rows tr{display:block;border:1px solid #ddd;border-radius:.4rem;margin:.5rem 0;padding:.3rem}
.rows td{display:block;border:0;padding:.15rem .4rem}
.rows td::before{content:attr(data-label) ": ";font-weight:600}}
"""


def e(value: Any) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclasses.dataclass(frozen=True)
class Row:
    """One request in the list, already reduced to what is shown."""

    namespace: str
    name: str
    action: str
    target: str
    incident: str
    severity: str
    blast: str
    age: str
    approvals: str
    phase: str
    decided_by: str


def target(action: dict[str, Any]) -> str:
    t = action["target"]
    where = f"{t['namespace']}/" if t.get("namespace") else ""
    return f"{t['kind']}/{where}{t['name']}"


def blast(radius: dict[str, Any] | None) -> str:
    if not radius:
        return "-"
    kind = "reversible" if radius.get("reversible", True) else "irreversible"
    return (
        f"{radius.get('podsAffected', 0)} pod(s), Δreplicas {radius.get('replicasDelta', 0)}, "
        f"{kind}"
    )


def _page(title: str, body: str, user: str | None = None, csrf: str = "") -> str:
    signed_in = (
        f'<form method="post" action="/logout"><span class="muted">{e(user)}</span> '
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<button type="submit">Sign out</button></form>'
        if user
        else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f'<title>{e(title)}</title><link rel=stylesheet href="/style.css"></head><body>'
        f'<header><a href="/"><strong>Agent Authority approvals</strong></a>{signed_in}</header>'
        f"<main>{body}</main></body></html>"
    )


def signin(csrf: str, error: str = "") -> str:
    problem = f'<p class="error" id="error">{e(error)}</p>' if error else ""
    return _page(
        "Sign in",
        f"<h1>Sign in</h1>{problem}"
        "<p>Paste a bearer token of your Kubernetes identity into the one field below: your "
        "OIDC id token if your cluster uses OIDC, or another token the apiserver accepts (a "
        "leading <code>Bearer</code> is ignored). It is checked with a TokenReview and then used, "
        "only for you, to read requests and record your decisions.</p>"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label for="token">Bearer token or OIDC id token</label>'
        '<textarea id="token" name="token" rows="5" required autocomplete="off"></textarea>'
        '<button type="submit">Sign in</button></form>',
    )


def _rows(rows: Sequence[Row], decided: bool) -> str:
    if not rows:
        return '<p class="muted">None.</p>'
    last = "<th>Phase</th><th>Decided by</th>" if decided else "<th>Approvals</th>"
    head = (
        "<thead><tr><th>Request</th><th>Action</th><th>Target</th><th>Incident</th>"
        f"<th>Severity</th><th>Blast radius</th><th>Age</th>{last}</tr></thead>"
    )
    lines = []
    for r in rows:
        link = f"/requests/{urllib.parse.quote(r.namespace)}/{urllib.parse.quote(r.name)}"
        tail = (
            _cells(("Phase", r.phase), ("Decided by", r.decided_by))
            if decided
            else _cells(("Approvals", r.approvals))
        )
        cells = _cells(
            ("Action", r.action),
            ("Target", r.target),
            ("Incident", r.incident),
            ("Severity", r.severity),
            ("Blast radius", r.blast),
            ("Age", r.age),
        )
        lines.append(
            f'<tr class="request" data-name="{e(r.name)}"><td data-label="Request">'
            f'<a href="{e(link)}">{e(r.namespace)}/{e(r.name)}</a></td>{cells}{tail}</tr>'
        )
    return f'<table class="rows">{head}{"".join(lines)}</table>'


def _cells(*pairs: tuple[str, Any]) -> str:
    """Table cells labelled for the one-column layout of narrow screens."""
    return "".join(f'<td data-label="{e(label)}">{e(value)}</td>' for label, value in pairs)


def listing(
    user: str, csrf: str, pending: Sequence[Row], decided: Sequence[Row], note: str = ""
) -> str:
    extra = f'<p class="why">{e(note)}</p>' if note else ""
    return _page(
        "Requests",
        f"{extra}<h1>Waiting for approval</h1><div id=pending>{_rows(pending, False)}</div>"
        f"<h2>Decided and rolled back</h2><div id=decided>{_rows(decided, True)}</div>",
        user,
        csrf,
    )


def _diff(changes: Iterable[dict[str, Any]]) -> str:
    lines = []
    for c in changes:
        lines.append(f'<span class="del">- {e(c.get("path"))}: {e(c.get("before"))}</span>')
        lines.append(f'<span class="add">+ {e(c.get("path"))}: {e(c.get("after"))}</span>')
    if not lines:
        return '<p class="muted">No dry-run diff recorded (yet).</p>'
    return '<pre class="diff" id="diff">' + "\n".join(lines) + "</pre>"


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    return (
        "<table>"
        + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs)
        + ("</table>")
    )


def _evidence(items: Sequence[dict[str, Any]]) -> str:
    if not items:
        return '<p class="muted">No evidence attached.</p>'
    cards = []
    for item in items:
        excerpt = f"<pre>{e(item.get('excerpt'))}</pre>" if item.get("excerpt") else ""
        cards.append(
            f'<div class="card evidence"><strong>{e(item.get("kind"))}</strong> from '
            f"{e(item.get('source'))} <span class=muted>observed {e(item.get('observedAt'))}"
            f"</span>{excerpt}<div class=muted>sha256 <code>{e(item.get('sha256'))}</code>"
            "</div></div>"
        )
    return "".join(cards)


def _decision_form(link: str, csrf: str, offer: approval_view.Offer) -> str:
    if not offer.decide:
        return f'<p class="why" id="why">{e(offer.why)}</p>'
    return (
        f'<form method="post" action="{e(link)}/decide" id="decide">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label for="reason">Reason (recorded with your decision)</label>'
        '<textarea id="reason" name="reason" rows="3" required maxlength="1024"></textarea>'
        '<button class="approve" type="submit" name="decision" value="approve">Approve</button>'
        '<button class="deny" type="submit" name="decision" value="deny">Deny</button></form>'
    )


def detail(
    user: str,
    csrf: str,
    item: dict[str, Any],
    session: dict[str, Any] | None,
    offer: approval_view.Offer,
    progress: str,
    events: Sequence[dict[str, Any]],
    message: str = "",
    error: str = "",
) -> str:
    meta, spec = item["metadata"], item["spec"]
    status = item.get("status") or {}
    ns, name = meta["namespace"], meta["name"]
    link = f"/requests/{urllib.parse.quote(ns)}/{urllib.parse.quote(name)}"
    flash = (f'<p class="error" id="error">{e(error)}</p>' if error else "") + (
        f'<p class="ok" id="message">{e(message)}</p>' if message else ""
    )
    incident = ((session or {}).get("spec") or {}).get("incident") or {}
    session_status = (session or {}).get("status") or {}
    facts = [
        ("Phase", f"{status.get('phase', 'Pending')} ({status.get('reason', '')})"),
        ("Action", f"{spec['action']['type']} {target(spec['action'])}"),
        ("Parameters", spec["action"].get("params") or "-"),
        ("Requester", (spec.get("requester") or {}).get("username", "?")),
        (
            "Incident",
            f"{incident.get('id', '?')} {incident.get('severity', '?')}/"
            f"{incident.get('class', '?')} {incident.get('title', '')}".rstrip(),
        ),
        ("Session", f"{spec['sessionRef']['name']} ({session_status.get('phase', '?')})"),
        ("Grant", ((session or {}).get("spec") or {}).get("grantRef", {}).get("name", "?")),
        ("Agent", ((session or {}).get("spec") or {}).get("requester", {}).get("username", "?")),
        ("Blast radius", blast(status.get("blastRadius"))),
        ("Approvals", progress),
        ("Expires", status.get("expiresAt", "-")),
    ]
    if spec.get("rollbackOf"):
        facts.append(("Rolls back", spec["rollbackOf"]["name"]))
    inverse = status.get("inverse")
    undo = (
        f"{inverse['action']['type']} {target(inverse['action'])} "
        f"{inverse['action'].get('params') or ''} {inverse.get('description', '')}"
        if inverse
        else "not reversible: no inverse was recorded"
    )
    conditions = "".join(
        "<tr>"
        + _cells(
            ("Condition", c.get("type")),
            ("Status", c.get("status")),
            ("Reason", c.get("reason")),
            ("Message", c.get("message")),
        )
        + "</tr>"
        for c in status.get("conditions", [])
    )
    given = "".join(
        f"<li>{e(a.get('decision'))} by <strong>{e((a.get('approver') or {}).get('username'))}"
        f"</strong> at {e(a.get('time'))}: {e(a.get('reason'))}</li>"
        for a in status.get("approvals", [])
    )
    activity = "".join(
        "<tr>"
        + _cells(
            ("When", ev.get("lastTimestamp") or ev.get("eventTime")),
            ("Object", (ev.get("involvedObject") or {}).get("kind")),
            ("Type", ev.get("type")),
            ("Reason", ev.get("reason")),
            ("Message", ev.get("message")),
        )
        + "</tr>"
        for ev in events
    )
    body = (
        f"{flash}<h1>{e(spec['action']['type'])} {e(target(spec['action']))}</h1>"
        f'<p class=muted>{e(ns)}/{e(name)}</p><div id="facts">{_facts(facts)}</div>'
        f'<h2>Decision</h2><div id="decision">{_decision_form(link, csrf, offer)}</div>'
        f"<h2>Hypothesis</h2><p id=hypothesis>{e(spec.get('hypothesis'))}</p>"
        f"<h2>Evidence</h2>{_evidence(spec.get('evidence') or [])}"
        f"<h2>What will change (server-side dry-run)</h2>{_diff(status.get('diff') or [])}"
        f"<h2>Policy</h2><p id=policy>{e(status.get('reason'))}</p>"
        '<table class="rows"><thead><tr><th>Condition</th><th>Status</th><th>Reason</th>'
        f"<th>Message</th></tr></thead>{conditions}</table>"
        f"<h2>Undo</h2><p id=inverse>{e(undo)}</p>"
        f"<h2>Approvals so far</h2><ul id=approvals>{given or '<li>none</li>'}</ul>"
        "<h2>Recent activity of the request and its session</h2>"
        '<table id=activity class="rows"><thead><tr><th>When</th><th>Object</th><th>Type</th>'
        f"<th>Reason</th><th>Message</th></tr></thead>{activity}</table>"
    )
    return _page(f"{spec['action']['type']} {name}", body, user, csrf)


def problem(title: str, message: str, user: str | None = None, csrf: str = "") -> str:
    return _page(
        title, f'<h1>{e(title)}</h1><p class="error" id="error">{e(message)}</p>', user, csrf
    )
