"""The dashboard as a Starlette application: the routes, and the guard every request passes.

Routes: `/` the fleet overview (filters: ?verdict=, ?clause=, ?grade=), `/site?url=` one site,
`/scan/{seq}` a stored scan's HTML report (rendered on request by auditor.reports.html),
`/metrics` the Prometheus exposition (auditor.metrics), `/dashboard.css`. GET only; the handlers
are plain functions, run in Starlette's thread pool (the store is synchronous).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auditor import __version__, metrics
from auditor.checks.clauses import CLAUSES
from auditor.dashboard import pages
from auditor.dashboard.queries import History, matches
from auditor.dashboard.security import COOKIE, HEADERS, Access, report_csp
from auditor.errors import AuditorError
from auditor.grading_rules import ALL_LETTERS
from auditor.model import AuditReport, ReportMeta
from auditor.reports import view
from auditor.reports.html import render_html
from auditor.targets import TargetError, parse_url

VERDICTS = {view.FAILING: "Breaking the policy", view.NOT_AUDITED: "Not audited", view.COMPLIANT: "Compliant"}


class Guard:
    """ASGI middleware: access control first (401 with a challenge; a valid ?token= is swapped for
    a cookie and dropped from the URL), then the security headers on every response (a route that
    sets its own CSP, the report, keeps it)."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        request = Request(scope)
        query_token = request.query_params.get("token")
        allowed = self.access.allows(
            request.headers.get("authorization"), request.cookies.get(COOKIE), query_token
        )
        if not allowed:
            refusal = PlainTextResponse(
                "authentication required\n", 401, headers={"WWW-Authenticate": self.access.challenge()}
            )
            await refusal(scope, receive, secured)
            return
        if query_token is not None and self.access.cookie is not None:
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            redirect = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), 303)
            redirect.set_cookie(
                COOKIE,
                self.access.cookie,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            await redirect(scope, receive, secured)
            return
        await self.app(scope, receive, secured)


def create_app(history: History, access: Access) -> Starlette:
    """The dashboard over `history`, guarded by `access`."""

    def overview(request: Request) -> Response:
        try:
            verdict = _choice(request, "verdict", VERDICTS)
            clause = _choice(request, "clause", CLAUSES)
            letter = _choice(request, "grade", [*ALL_LETTERS, "none"])
        except UnknownFilter as exc:  # a typo must not look like "every site matches"
            return _page("problem.html.j2", 400, title="400", message=str(exc))
        data = history.overview()
        rows = [r for r in data.rows if matches(r, verdict, clause, letter)]
        return _page(
            "overview.html.j2",
            title="Fleet overview",
            data=data,
            rows=rows,
            verdicts=VERDICTS,
            verdict=verdict,
            clause=clause,
            letter=letter,
            log=history.verification(),
            store=history.store.name,
        )

    def site(request: Request) -> Response:
        url = request.query_params.get("url", "")
        try:
            url = parse_url(url).url
        except TargetError:
            raise HTTPException(404, "no such site") from None
        page = history.site(url)
        if page is None:
            raise HTTPException(404, "no such site")
        return _page("site.html.j2", title=page.row.name, page=page, log=history.verification())

    def scan_report(request: Request) -> Response:
        seq: int = request.path_params["seq"]
        result = history.scan(seq)
        if result is None:
            raise HTTPException(404, "no such scan")
        report = AuditReport(
            generated_at=result.started_at,
            tool_version=result.auditor_version or __version__,
            targets=[result],
            meta=ReportMeta(evidence_log=history.store.name),
        )
        document = render_html(report)
        return HTMLResponse(document, headers={"Content-Security-Policy": report_csp(document)})

    def prometheus(request: Request) -> Response:
        body = metrics.exposition(history.store, verification=history.verification())
        return Response(body, media_type=metrics.CONTENT_TYPE)

    stylesheet = pages.STYLESHEET.read_bytes()

    def css(request: Request) -> Response:
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    async def problem(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status, message = exc.status_code, exc.detail
        else:  # AuditorError: the history cannot be read (locked, unreachable, damaged)
            status, message = 503, str(exc)
        return _page("problem.html.j2", status, title=f"{status}", message=message)

    return Starlette(
        routes=[
            Route("/", overview),
            Route("/site", site),
            Route("/scan/{seq:int}", scan_report),
            Route("/metrics", prometheus),
            Route("/dashboard.css", css),
        ],
        middleware=[Middleware(Guard, access=access)],
        exception_handlers={HTTPException: problem, AuditorError: problem},
    )


class UnknownFilter(ValueError):
    """A filter value the overview does not know (shown as a 400 page naming the allowed ones)."""


def _choice(request: Request, name: str, allowed: Collection[str]) -> str | None:
    """A filter's value: one of `allowed`, or None (empty or absent: no filter)."""
    value = request.query_params.get(name)
    if not value:
        return None
    if value not in allowed:
        raise UnknownFilter(f"unknown {name} {value!r}: one of {', '.join(allowed)}")
    return value


def _page(template: str, status: int = 200, **context: object) -> HTMLResponse:
    now = datetime.now(UTC)
    return HTMLResponse(pages.render(template, now=now, **context), status)
