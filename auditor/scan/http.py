"""The httpx adapter: fetch the audited pages without following redirects and keep what the
HTTP clauses judge (status, headers, every raw Set-Cookie line, insecure sub-resources).

The cookie jar drops attributes, so Set-Cookie lines are parsed here from the raw headers.
Bodies are read only up to a cap: the audited server is untrusted.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import ssl
import time
from html.parser import HTMLParser

import httpcore
import httpx

from auditor.model import Cookie, HttpEvidence, HttpResponse
from auditor.targets import is_ip

USER_AGENT = "tls-posture-auditor (+policy compliance scan)"
MAX_HEADER_BYTES = 1024 * 1024
# httpcore buffers at most 100 KiB of response head; sites with thousands of Set-Cookie lines
# exceed that. Raise the cap (still bounded) so such a page is judged rather than skipped.
httpcore._sync.http11.HTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE = MAX_HEADER_BYTES


def parse_set_cookie(line: str) -> Cookie:
    """One Set-Cookie header value -> Cookie, value redacted, attributes as sent."""
    parts = [p.strip() for p in line.split(";")]
    first = parts[0]
    name = first.split("=", 1)[0].strip() if "=" in first else first.strip()
    attrs: dict[str, str | None] = {}
    for part in parts[1:]:
        if not part:
            continue
        key, _, value = part.partition("=")
        attrs[key.strip().lower()] = value.strip() if _ else None
    redacted = "; ".join([f"{name}=<redacted>", *parts[1:]])
    return Cookie(
        name=name,
        raw_attributes=redacted,
        secure="secure" in attrs,
        http_only="httponly" in attrs,
        same_site=attrs.get("samesite") if "samesite" in attrs else None,
        domain=attrs.get("domain"),
        path=attrs.get("path"),
    )


class _InsecureReferences(HTMLParser):
    """Collects http:// URLs that a browser would load or submit from an https page."""

    # (tag, attribute) pairs that load a sub-resource or submit data; plain <a href> does not.
    _LOADING = {"src", "data", "poster", "srcset", "action", "formaction"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.form_actions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for attr, value in attrs:
            if not value:
                continue
            loading = attr in self._LOADING or (tag == "link" and attr == "href")
            if not loading:
                continue
            candidates = [c.strip().split(" ")[0] for c in value.split(",")] if attr == "srcset" else [value.strip()]
            for url in candidates:
                if not url.lower().startswith("http://"):
                    continue
                bucket = self.form_actions if attr in {"action", "formaction"} else self.found
                if url not in bucket:
                    bucket.append(url)


def insecure_references(html: str) -> tuple[list[str], list[str]]:
    """(http:// sub-resources, http:// form targets) of an HTML page."""
    parser = _InsecureReferences()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # malformed markup: keep what was found so far
        pass
    return parser.found[:100], parser.form_actions[:100]


def _fetch(transport: httpx.HTTPTransport, url: str, host_header: str, sni: str | None, max_body: int,
           timeout: float) -> HttpResponse:
    """One GET straight through the transport: httpx's client would reject a response whose
    Location is not a URL even when not following it, and that response is evidence too.

    The body is read only for HTML, and only up to `max_body` bytes and `timeout` seconds (a server
    trickling its body must not hold the audit)."""
    extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if sni:
        extensions["sni_hostname"] = sni
    headers = {"Host": host_header, "User-Agent": USER_AGENT, "Accept-Encoding": "identity", "Accept": "*/*"}
    request = httpx.Request("GET", url, headers=headers, extensions=extensions)
    try:
        response = transport.handle_request(request)
        with contextlib.closing(response):
            body = b""
            content_type = response.headers.get("content-type", "")
            if "html" in content_type.lower():
                deadline = time.monotonic() + timeout
                try:
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) >= max_body or time.monotonic() > deadline:
                            break
                except httpx.HTTPError:
                    pass  # keep the headers and what arrived of the body
            headers = []
            cookies = []
            for key, value in response.headers.multi_items():
                if key.lower() == "set-cookie":
                    cookie = parse_set_cookie(value)
                    cookies.append(cookie)
                    headers.append((key, cookie.raw_attributes))
                else:
                    headers.append((key, value))
            charset = response.charset_encoding or "utf-8"
            try:
                text = body.decode(charset, errors="replace")
            except LookupError:
                text = body.decode("utf-8", errors="replace")
            resources, actions = insecure_references(text) if text else ([], [])
            return HttpResponse(
                url=_display_url(url, host_header),
                status=response.status_code,
                headers=headers,
                location=response.headers.get("location"),
                cookies=cookies,
                insecure_references=resources,
                insecure_form_actions=actions,
            )
    except httpx.TimeoutException:
        return HttpResponse(url=_display_url(url, host_header), error="timed out")
    except httpx.ConnectError as exc:
        return HttpResponse(url=_display_url(url, host_header), error=_reason(exc))
    except httpx.HTTPError as exc:
        return HttpResponse(url=_display_url(url, host_header), error=_reason(exc))


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    if "receive buffer too long" in text.lower():
        return f"response headers larger than {MAX_HEADER_BYTES // 1024} KiB"
    return text.splitlines()[0][:200]


def _display_url(url: str, host_header: str) -> str:
    """The URL as the user knows it (host name, not the IP connected to)."""
    scheme, rest = url.split("://", 1)
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return f"{scheme}://{host_header}{path}"


def _permissive_context() -> ssl.SSLContext:
    """Reads headers from any server the TLS scan could reach, even TLS 1.0 with weak suites:
    trust and protocol are judged elsewhere, from the TLS evidence."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    return context


def probe_http(
    host: str,
    port: int,
    *,
    ip: str | None = None,
    http_port: int = 80,
    paths: list[str] | None = None,
    timeout: float = 10.0,
    max_body: int = 1_000_000,
    on_phase: Callable[[str], None] | None = None,
) -> HttpEvidence:
    """GET https://host/ (+ paths) and http://host/, never following redirects."""
    connect_to = ip or host
    literal = f"[{connect_to}]" if ":" in connect_to else connect_to
    shown_host = f"[{host}]" if ":" in host else host
    https_host = shown_host if port == 443 else f"{shown_host}:{port}"
    http_host = shown_host if http_port == 80 else f"{shown_host}:{http_port}"
    evidence = HttpEvidence()
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=1)
    with httpx.HTTPTransport(verify=_permissive_context(), limits=limits) as client:
        for path in ["/", *(paths or [])]:
            if on_phase:
                on_phase(f"GET https {path}")
            evidence.https.append(_fetch(client, f"https://{literal}:{port}{path}", https_host,
                                         None if ip is None or is_ip(host) else host, max_body, timeout))
        if on_phase:
            on_phase("GET http /")
        evidence.plain_http = _fetch(client, f"http://{literal}:{http_port}/", http_host, None, max_body, timeout)
    return evidence

