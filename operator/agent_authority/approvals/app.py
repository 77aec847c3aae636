"""The approval page's routes: sign in/out, the list, a request's page, approve/deny.

Every read and write after sign-in is made with the person's own token (``kube.people``); the
server's own client is used for one thing, the TokenReview of a pasted token. A decision goes to
the apiserver as the person even when the page would not have offered it (a forged form): the
approval webhook is the authority and its refusal is shown as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent_authority.approvals import logins, pages
from agent_authority.kube import api, errors, people
from agent_authority.models import GROUP, base, request
from agent_authority.policy import approval_view, approvals

MAX_TOKEN = 16384
UNAUTHORIZED = 401
MAX_REASON = 1024
RECENT_EVENTS = 20
DECIDED_SHOWN = 50
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True)
class Context:
    kube: api.Kube
    """The server's own client: TokenReviews only."""
    logins: logins.Logins
    operator_username: str
    secure_cookies: bool


CONTEXT = web.AppKey("context", Context)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _ctx(req: web.Request) -> Context:
    return req.app[CONTEXT]


def _login(req: web.Request) -> logins.Login | None:
    return _ctx(req).logins.find(req.cookies.get(logins.COOKIE))


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


async def style(_req: web.Request) -> web.StreamResponse:
    return web.Response(text=pages.STYLE, content_type="text/css")


async def healthz(_req: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def signin_form(req: web.Request, error: str = "", status: int = 200) -> web.Response:
    csrf = secrets.token_urlsafe(24)
    response = _html(pages.signin(csrf, error), status)
    response.set_cookie(
        logins.CSRF_COOKIE,
        csrf,
        max_age=600,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=_ctx(req).secure_cookies,
    )
    return response


async def signin_page(req: web.Request) -> web.StreamResponse:
    if req.query.get("expired"):
        return await signin_form(req, "your token no longer authenticates: sign in again")
    return await signin_form(req)


async def signin(req: web.Request) -> web.StreamResponse:
    ctx = _ctx(req)
    form = await req.post()
    if not logins.same(_text(form.get("csrf")), req.cookies.get(logins.CSRF_COOKIE, "")):
        return await signin_form(
            req, "csrf: the sign-in form's token is missing or wrong; nothing was done", 403
        )
    token = logins.pasted_token(_text(form.get("token")))
    if not token or len(token) > MAX_TOKEN:
        return await signin_form(req, "token: paste a bearer token (at most 16 KiB)", 400)
    try:
        user, extra = await people.authenticate(ctx.kube, token)
    except people.NotAuthenticated as e:
        return await signin_form(req, f"token: the apiserver did not accept it ({e})", 401)
    except errors.KubeError as e:
        return await signin_form(req, f"the apiserver could not check the token: {e}", 503)
    _login_made, cookie = ctx.logins.create(user, extra, people.as_person(ctx.kube, token))
    response = _redirect("/")
    response.set_cookie(
        logins.COOKIE,
        cookie,
        max_age=ctx.logins.seconds,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=ctx.secure_cookies,
    )
    response.del_cookie(logins.CSRF_COOKIE, path="/login")
    return response


async def signout(req: web.Request) -> web.StreamResponse:
    login = _login(req)
    form = await req.post()
    if login is not None:
        if not logins.same(_text(form.get("csrf")), login.csrf):
            return _html(pages.problem("Refused", "csrf: token missing or wrong"), 403)
        _ctx(req).logins.drop(login.id)
    response = _redirect("/login")
    response.del_cookie(logins.COOKIE, path="/")
    return response


def _expired(req: web.Request, login: logins.Login) -> web.Response:
    """The person's token no longer authenticates: sign them out, and say so."""
    _ctx(req).logins.drop(login.id)
    response = _redirect("/login?expired=1")
    response.del_cookie(logins.COOKIE, path="/")
    return response


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _since(body: api.Json, now: datetime.datetime) -> str:
    created = body["metadata"].get("creationTimestamp")
    return approval_view.age(datetime.datetime.fromisoformat(created), now) if created else "?"


async def _sessions(person: api.Kube, items: list[api.Json]) -> dict[tuple[str, str], api.Json]:
    wanted = list({_session_key(i) for i in items})

    async def one(ns: str, name: str) -> api.Json | None:
        try:
            return await people.get(person, people.SESSIONS, ns, name)
        except errors.KubeError:
            return None

    found = await asyncio.gather(*[one(ns, name) for ns, name in wanted])
    return {key: s for key, s in zip(wanted, found, strict=True) if s is not None}


def _session_key(item: api.Json) -> tuple[str, str]:
    return str(item["metadata"]["namespace"]), str(item["spec"]["sessionRef"]["name"])


def _approvals_of(status: api.Json) -> list[request.Approval]:
    return [request.Approval.model_validate(a) for a in status.get("approvals") or []]


def _row(
    item: api.Json, session: api.Json | None, now: datetime.datetime, operator: str
) -> pages.Row:
    spec, status = item["spec"], item.get("status") or {}
    incident = ((session or {}).get("spec") or {}).get("incident") or {}
    deciders = [
        f"{(a.get('approver') or {}).get('username', '?')} ({a.get('decision')})"
        for a in status.get("approvals") or []
    ]
    return pages.Row(
        namespace=item["metadata"]["namespace"],
        name=item["metadata"]["name"],
        action=str(spec["action"]["type"]),
        target=pages.target(spec["action"]),
        incident=str(incident.get("id", "?")),
        severity=str(incident.get("severity", "?")),
        blast=pages.blast(status.get("blastRadius")),
        age=_since(item, now),
        approvals=approval_view.progress(
            _approvals_of(status),
            status.get("requiredApprovals"),
            _ignored(item, session, operator),
        ),
        phase=str(status.get("phase", "Pending")),
        decided_by=", ".join(deciders) or f"policy ({status.get('reason', '-')})",
    )


def _ignored(item: api.Json, session: api.Json | None, operator: str) -> set[str]:
    """Usernames whose approvals never count (as the controller counts them)."""
    requester = (item["spec"].get("requester") or {}).get("username") or ""
    found = approvals.session_identities(
        item["metadata"]["namespace"],
        ((session or {}).get("spec") or {}).get("requester", {}).get("username"),
        ((session or {}).get("status") or {}).get("serviceAccountName"),
        "",
    )
    return (found | {requester, operator}) - {""}


async def index(req: web.Request) -> web.StreamResponse:
    login = _login(req)
    if login is None:
        return _redirect("/login")
    namespace = req.query.get("namespace") or None
    note = ""
    try:
        items = await people.list_requests(login.kube, namespace)
    except errors.Forbidden as e:
        items, note = [], f"you may not list remediation requests here: {e}"
    except errors.KubeError as e:
        if e.status == UNAUTHORIZED:
            return _expired(req, login)
        return _html(pages.problem("Unavailable", str(e), login.user.username, login.csrf), 503)
    sessions = await _sessions(login.kube, items)
    now = datetime.datetime.now(datetime.UTC)
    operator = _ctx(req).operator_username
    rows = [(i, _row(i, sessions.get(_session_key(i)), now, operator)) for i in items]
    by_age = sorted(rows, key=lambda r: str(r[0]["metadata"].get("creationTimestamp", "")))
    waiting = approval_view.WAITING
    pending = [r for i, r in by_age if (i.get("status") or {}).get("phase") == waiting]
    decided = [
        r
        for i, r in reversed(by_age)
        if (i.get("status") or {}).get("phase") not in approval_view.UNDECIDED
    ]
    return _html(
        pages.listing(login.user.username, login.csrf, pending, decided[:DECIDED_SHOWN], note)
    )


async def _offer(
    login: logins.Login, item: api.Json, session: api.Json | None, operator: str
) -> approval_view.Offer:
    status = item.get("status") or {}
    if session is None:
        return approval_view.Offer(
            False,
            f"cannot read session {item['spec']['sessionRef']['name']!r} of this request as "
            f"{login.user.username}, so who may decide cannot be checked",
        )
    grant_name = str(session["spec"]["grantRef"]["name"])
    try:
        may_approve = await people.may(
            login.kube, verb="approve", group=GROUP, resource="agentgrants", name=grant_name
        )
    except errors.KubeError as e:  # fail closed: no button when it cannot be checked
        return approval_view.Offer(False, f"could not check your 'approve' permission: {e}")
    requester = item["spec"].get("requester")
    return approval_view.offer(
        phase=status.get("phase"),
        person=login.user,
        may_approve=may_approve,
        grant_name=grant_name,
        requester=base.UserInfo.model_validate(requester) if requester else None,
        session_identities=approvals.session_identities(
            item["metadata"]["namespace"],
            (session["spec"].get("requester") or {}).get("username"),
            (session.get("status") or {}).get("serviceAccountName"),
            login.user.username,
        ),
        operator_username=operator,
        existing=_approvals_of(status),
    )


async def _detail(
    req: web.Request, login: logins.Login, message: str = "", error: str = "", status: int = 200
) -> web.StreamResponse:
    ctx = _ctx(req)
    ns, name = req.match_info["namespace"], req.match_info["name"]
    try:
        item = await people.get(login.kube, people.REQUESTS, ns, name)
    except errors.KubeError as e:
        if e.status == UNAUTHORIZED:
            return _expired(req, login)
        return _html(pages.problem("Refused", str(e), login.user.username, login.csrf), 403)
    if item is None:
        return _html(
            pages.problem("Not found", f"{ns}/{name}", login.user.username, login.csrf), 404
        )
    try:
        session = await people.get(
            login.kube, people.SESSIONS, ns, item["spec"]["sessionRef"]["name"]
        )
    except errors.KubeError:
        session = None
    offer = await _offer(login, item, session, ctx.operator_username)
    events: list[api.Json] = []
    for uid in [item["metadata"]["uid"], *([session["metadata"]["uid"]] if session else [])]:
        # The activity table is a convenience; the decision does not depend on it.
        with contextlib.suppress(errors.KubeError):
            events += await people.events_about(login.kube, ns, uid)
    events.sort(key=lambda ev: str(ev.get("lastTimestamp") or ev.get("eventTime") or ""))
    progress = approval_view.progress(
        _approvals_of(item.get("status") or {}),
        (item.get("status") or {}).get("requiredApprovals"),
        _ignored(item, session, ctx.operator_username),
    )
    return _html(
        pages.detail(
            login.user.username,
            login.csrf,
            item,
            session,
            offer,
            progress,
            events[-RECENT_EVENTS:],
            message,
            error,
        ),
        status,
    )


async def detail(req: web.Request) -> web.StreamResponse:
    login = _login(req)
    if login is None:
        return _redirect("/login")
    recorded = req.query.get("recorded")
    message = f"your {recorded} was recorded" if recorded in ("approval", "denial") else ""
    return await _detail(req, login, message=message)


async def decide(req: web.Request) -> web.StreamResponse:
    login = _login(req)
    if login is None:
        return _html(pages.problem("Refused", "not signed in: sign in first"), 403)
    form = await req.post()
    if not logins.same(_text(form.get("csrf")), login.csrf):
        return _html(
            pages.problem(
                "Refused",
                "csrf: the form's token is missing or wrong, so it was not sent by this page "
                "for you; nothing was recorded",
                login.user.username,
                login.csrf,
            ),
            403,
        )
    decision = _text(form.get("decision"))
    reason = _text(form.get("reason")).strip()
    if decision not in ("approve", "deny"):
        return await _detail(req, login, error="decision: must be approve or deny", status=400)
    if not reason or len(reason) > MAX_REASON:
        return await _detail(
            req, login, error="reason: required (1 to 1024 characters), it is recorded", status=400
        )
    ns, name = req.match_info["namespace"], req.match_info["name"]
    try:
        await people.append_approval(login.kube, ns, name, decision, reason)
    except errors.KubeError as e:
        return await _detail(
            req, login, error=f"{decision} refused by the apiserver: {e}", status=e.status or 403
        )
    noun = "approval" if decision == "approve" else "denial"
    quoted = f"/requests/{urllib.parse.quote(ns)}/{urllib.parse.quote(name)}"
    return _redirect(f"{quoted}?recorded={noun}")


def build(context: Context) -> web.Application:
    app = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
    app[CONTEXT] = context
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/style.css", style)
    app.router.add_get("/login", signin_page)
    app.router.add_post("/login", signin)
    app.router.add_post("/logout", signout)
    app.router.add_get("/", index)
    app.router.add_get("/requests/{namespace}/{name}", detail)
    app.router.add_post("/requests/{namespace}/{name}/decide", decide)
    return app
