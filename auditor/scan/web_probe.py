"""The few requests the web grade (auditor.web_grade) needs beyond the clauses' evidence, made as
Mozilla's HTTP Observatory makes them: the landing page's HTML (its <meta> policies and <script>
tags), a CORS preflight with a foreign Origin, and the whole redirect route from http://host/.

Only the audited host is contacted: a Location on another host ends the route unfetched. Every
exchange has the probe's deadline, and the body the same size cap; the markup is parsed by the
hardened parser of the mixed-content probe (auditor.scan.mixed_content).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace

import ada_url
import httpx

from auditor.model import (
    CorsAnswer,
    HttpEvidence,
    HttpResponse,
    PageFacts,
    RedirectHop,
    ScriptTag,
    WebProbe,
)
from auditor.scan.content_coding import decode_body
from auditor.scan.mixed_content import _parse

OBSERVATORY_ORIGIN = "https://http-observatory.security.mozilla.org"  # the Origin the Observatory sends
USER_AGENT = "tls-posture-auditor (+policy compliance scan)"
MAX_ROUTE = 10  # redirects followed from http://host/ (the Observatory's MAX_REDIRECTS)
MAX_SCRIPTS = 200
MAX_META = 32  # <meta> policies kept (each is at most the page's size)
MAX_SRC = 2000
REDIRECTS = {301, 302, 303, 307, 308}
HTML_TYPES = {"text/html", "application/xhtml+xml"}
DRAIN_BYTES = 64 * 1024
BUDGET_TIMEOUTS = 2.0  # all the web probe's requests together take at most this many probe timeouts


class OutOfTime(Exception):
    """The web probe's overall budget is spent: a slow server must not cost the whole audit."""


@dataclass(frozen=True)
class Host:
    """Where the audited host is reached: its name for URLs and Host, the address connected to."""

    name: str  # as in URLs: brackets around an IPv6 literal
    connect: str  # the address in the request URL (bracketed when IPv6)
    https_port: int
    http_port: int
    sni: str | None
    timeout: float
    max_body: int
    deadline: float = float("inf")  # monotonic time after which no further request starts

    def remaining(self) -> float:
        """Seconds left for the next exchange (at most the probe's timeout); OutOfTime when none."""
        left = min(self.timeout, self.deadline - time.monotonic())
        if left <= 0:
            raise OutOfTime(f"the web probe's {BUDGET_TIMEOUTS:g} x timeout budget is spent")
        return left

    def authority(self, scheme: str, port: int) -> str:
        default = 443 if scheme == "https" else 80
        return self.name if port == default else f"{self.name}:{port}"


def _joined(response: httpx.Response, name: str) -> str | None:
    """A header as a Node.js client reads it: repeated lines joined with ", "."""
    values = response.headers.get_list(name)
    return ", ".join(values) if values else None


def _send(
    transport: httpx.HTTPTransport, host: Host, method: str, url: ada_url.URL, headers: dict[str, str]
) -> httpx.Response:
    """One request to the audited host for `url` (a URL on that host); the caller closes it."""
    scheme = url.protocol.rstrip(":")
    port = int(url.port) if url.port else (443 if scheme == "https" else 80)
    extensions: dict[str, object] = {"timeout": httpx.Timeout(host.remaining()).as_dict()}
    if scheme == "https" and host.sni:
        extensions["sni_hostname"] = host.sni
    request = httpx.Request(
        method,
        f"{scheme}://{host.connect}:{port}{url.pathname}{url.search}",
        headers={
            "Host": host.authority(scheme, port),
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
            **headers,
        },
        extensions=extensions,
    )
    return transport.handle_request(request)


def _why(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]


def _read(response: httpx.Response, host: Host) -> tuple[bytes, str | None]:
    """The body, at most max_body bytes and timeout seconds, and why it is incomplete."""
    body = bytearray()
    deadline = time.monotonic() + host.remaining()
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= host.max_body:
                return bytes(body[: host.max_body]), f"the body reached the {host.max_body}-byte cap"
            if time.monotonic() > deadline:
                return bytes(body), f"the body was still arriving after {host.timeout:g} s"
    except httpx.HTTPError as exc:
        return bytes(body), f"the body transfer failed ({_why(exc)})"
    return bytes(body), None


def _drain(response: httpx.Response, host: Host) -> None:
    """Read a small unused body (an error page) so the connection is kept for the next request:
    the probe should not cost the server new connections (rate limiters count them)."""
    with contextlib.suppress(httpx.HTTPError, OutOfTime):
        _read(response, replace(host, max_body=min(host.max_body, DRAIN_BYTES)))


def page_facts(
    html: bytes, url: str, content_type: str | None, charset: str | None, budget_s: float = 10.0
) -> PageFacts:
    """The <meta> policies and <script> tags of an HTML document, as parsed by a browser."""
    root, note = _parse(html, time.monotonic() + budget_s, charset)
    facts = PageFacts(url=url, content_type=content_type, note=note)
    for element in root.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "meta":
            equiv = (element.get("http-equiv") or "").strip().lower()
            content = element.get("content")
            if element.get("http-equiv") is not None and content is not None:
                if equiv == "content-security-policy" and content and len(facts.meta_csp) < MAX_META:
                    facts.meta_csp.append(content)
            elif (element.get("name") or "").strip().lower() == "referrer" and content:
                facts.meta_referrer = [content]  # the last one counts
        elif tag == "script":
            facts.script_count += 1
            src = element.get("src")
            if src and len(facts.scripts) < MAX_SCRIPTS:
                facts.scripts.append(ScriptTag(src=src[:MAX_SRC], integrity=bool(element.get("integrity"))))
    return facts


def _media_type(value: str | None) -> str | None:
    return value.split(";", 1)[0].strip().lower() or None if value else None


def _page(transport: httpx.HTTPTransport, host: Host, landing: HttpResponse) -> PageFacts | None:
    """The landing page fetched again with its body (the clauses' probe keeps none)."""
    content_type = _media_type(next(iter(landing.header("content-type")), None))
    if content_type is not None and content_type not in HTML_TYPES:
        return PageFacts(url=landing.url, content_type=content_type)
    try:
        url = ada_url.URL(landing.url)
        response = _send(
            transport,
            host,
            "GET",
            url,
            {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
        )
        with contextlib.closing(response):
            raw, partial = _read(response, host)
            decoded = decode_body(raw, response.headers.get_list("content-encoding"), host.max_body)
            facts = page_facts(
                decoded.body,
                landing.url,
                _media_type(response.headers.get("content-type")),
                response.charset_encoding,
                host.timeout,
            )
    except (httpx.HTTPError, ValueError, OutOfTime) as exc:
        return PageFacts(url=landing.url, content_type=content_type, error=_why(exc))
    facts.note = "; ".join(n for n in (partial, decoded.note, facts.note) if n) or None
    return facts


def _cors(transport: httpx.HTTPTransport, host: Host, landing: HttpResponse) -> CorsAnswer:
    """A CORS preflight for the landing page from a foreign origin, as the Observatory sends it."""
    answer = CorsAnswer(url=landing.url, origin=OBSERVATORY_ORIGIN)
    try:
        response = _send(
            transport,
            host,
            "OPTIONS",
            ada_url.URL(landing.url),
            {"Accept": "*/*", "Origin": OBSERVATORY_ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        with contextlib.closing(response):
            answer.status = response.status_code
            answer.allow_origin = _joined(response, "access-control-allow-origin")
            answer.allow_credentials = _joined(response, "access-control-allow-credentials")
            _drain(response, host)
    except (httpx.HTTPError, ValueError, OutOfTime) as exc:
        answer.error = _why(exc)
    return answer


def _route(
    transport: httpx.HTTPTransport, host: Host, first: HttpResponse
) -> tuple[list[RedirectHop], str | None]:
    """http://host/ and every redirect after it, up to MAX_ROUTE, fetched while on the audited host."""
    hops = [RedirectHop(url=first.url, status=first.status)]
    status, location, current = first.status, first.location, first.url
    audited = ada_url.URL(first.url).hostname
    while status in REDIRECTS and location:
        if len(hops) > MAX_ROUTE:
            return hops, f"more than {MAX_ROUTE} redirects: not followed further"
        try:
            target = ada_url.URL(ada_url.join_url(current, location))
        except ValueError:
            return hops, f"Location {location[:200]!r} is not a URL"
        if target.protocol not in ("http:", "https:"):
            return hops, f"Location {target.href[:200]} is neither http:// nor https://"
        hops.append(RedirectHop(url=target.href))
        if target.hostname != audited:
            return hops, f"{target.href[:200]} is on another host: not fetched"
        try:
            response = _send(transport, host, "GET", target, {"Accept": "text/html,*/*;q=0.8"})
            with contextlib.closing(response):
                status, location = response.status_code, response.headers.get("location")
                _drain(response, host)
        except (httpx.HTTPError, ValueError, OutOfTime) as exc:
            return hops, f"{target.href[:200]} did not answer ({_why(exc)})"
        hops[-1].status, current = status, target.href
    return hops, None


def web_host(
    name: str, connect: str, https_port: int, http_port: int, sni: str | None, timeout: float, max_body: int
) -> Host:
    """The audited host for the web probe, with its overall budget starting now."""
    return Host(
        name,
        connect,
        https_port,
        http_port,
        sni,
        timeout,
        max_body,
        deadline=time.monotonic() + BUDGET_TIMEOUTS * timeout,
    )


def probe_web(transport: httpx.HTTPTransport, evidence: HttpEvidence, host: Host) -> WebProbe:
    """The landing page's HTML and a CORS preflight, given the clauses' landing chain (call it while
    that chain's connection is open: it is reused)."""
    probe = WebProbe()
    chain = [r for r in evidence.landing() if r is not evidence.plain_http]
    landing = chain[-1] if chain else None
    try:
        if landing is not None and landing.error is None:
            probe.page = _page(transport, host, landing)
            probe.cors = _cors(transport, host, landing)
    except Exception as exc:  # noqa: BLE001  (a parser bug, MemoryError: the clauses' evidence stands)
        probe.error = f"the web probe failed: {type(exc).__name__}: {_why(exc)}"
    return probe


def follow_route(transport: httpx.HTTPTransport, evidence: HttpEvidence, host: Host) -> None:
    """The redirect route from http://host/, after the clauses' plain-HTTP answer (into evidence.web)."""
    web = evidence.web if evidence.web is not None else WebProbe()
    evidence.web = web
    if evidence.plain_http is None or evidence.plain_http.error is not None:
        return
    try:
        web.http_route, web.route_note = _route(transport, host, evidence.plain_http)
    except Exception as exc:  # noqa: BLE001
        web.error = f"the web probe failed: {type(exc).__name__}: {_why(exc)}"
