"""The httpx adapter: fetch the audited pages, follow their same-host HTTPS redirects (a browser
sees those responses too), and keep what the HTTP clauses judge (status, headers, every raw
Set-Cookie line, insecure sub-resources).

The cookie jar drops attributes, so Set-Cookie lines are parsed here from the raw headers.
The audited server is untrusted: a body is read, decoded (Content-Encoding) and parsed each under
a cap, and whatever fails in one response costs that response only, never the TLS evidence.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable
from datetime import datetime

import ada_url
import httpcore
import httpx

from auditor.model import Cookie, HttpEvidence, HttpResponse
from auditor.scan.attempts import from_http
from auditor.scan.content_coding import decode_body
from auditor.scan.cookie_date import parse_cookie_date
from auditor.scan.mixed_content import PageReferences, insecure_references
from auditor.scan.web_probe import follow_route, probe_web, web_host
from auditor.targets import is_ip

USER_AGENT = "tls-posture-auditor (+policy compliance scan)"
MAX_REDIRECTS = 5  # same-host HTTPS redirects followed from each audited page
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_HEADER_BYTES = 1024 * 1024
# httpcore buffers at most 100 KiB of response head; sites with thousands of Set-Cookie lines
# exceed that. Raise the cap (still bounded) so such a page is judged rather than skipped.
httpcore._sync.http11.HTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE = MAX_HEADER_BYTES  # noqa: SLF001


def _max_age(value: str) -> int | None:
    """RFC 6265bis 5.6.2: digits, optionally after a leading "-"; anything else is ignored."""
    digits = value.removeprefix("-")
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(value)


def parse_set_cookie(line: str) -> Cookie:
    """One Set-Cookie header value -> Cookie, value redacted, attributes as a browser reads them
    (RFC 6265bis 5.6: names case-insensitive, the last valid occurrence wins).

    A name-value pair without "=" has an empty name and its whole text is the value: it is
    redacted like any value, never taken for a name."""
    pair, *attributes = line.split(";")
    name = pair.split("=", 1)[0].strip(" \t") if "=" in pair else ""
    attrs: dict[str, str | None] = {}
    max_age: int | None = None
    expires: datetime | None = None
    for part in attributes:
        key, has_value, value = part.partition("=")
        key, value = key.strip(" \t").lower(), value.strip(" \t")
        if not key:
            continue
        if key == "max-age":  # an unreadable Max-Age or Expires is ignored, not taken as the last one
            max_age = parsed if (parsed := _max_age(value)) is not None else max_age
        elif key == "expires":
            expires = parse_cookie_date(value) or expires  # RFC 6265 5.1.1, as browsers read it
        attrs[key] = value if has_value else None
    kept = [p.strip() for p in attributes if p.strip()]
    redacted = "; ".join([f"{name}=<redacted>" if name else "<redacted>", *kept])
    return Cookie(
        name=name,
        raw_attributes=redacted,
        secure="secure" in attrs,
        http_only="httponly" in attrs,
        same_site=attrs.get("samesite") if "samesite" in attrs else None,
        domain=attrs.get("domain"),
        path=attrs.get("path"),
        max_age=max_age,
        expires=expires,
    )


def _fetch(
    transport: httpx.HTTPTransport, url: str, host_header: str, sni: str | None, max_body: int, timeout: float
) -> HttpResponse:
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
            found: PageReferences | None = None
            partial: str | None = None
            content_type = response.headers.get("content-type", "")
            shown = _display_url(url, host_header)
            # Mixed content exists only on a page served over TLS; the body is read only for that.
            if "html" in content_type.lower() and url.startswith("https:"):
                try:
                    found, partial = _analyse_body(response, shown, max_body, timeout)
                except Exception as exc:  # noqa: BLE001  (a parser bug, MemoryError: the headers are still judged)
                    partial = f"the body could not be analysed ({failure(exc)})"
            received: list[tuple[str, str]] = []
            cookies = []
            for key, value in response.headers.multi_items():
                if key.lower() == "set-cookie":
                    cookie = parse_set_cookie(value)
                    cookies.append(cookie)
                    received.append((key, cookie.raw_attributes))
                else:
                    received.append((key, value))
            return HttpResponse(
                url=shown,
                status=response.status_code,
                headers=received,
                location=response.headers.get("location"),
                cookies=cookies,
                insecure_references=found.loaded if found else [],
                insecure_form_actions=found.form_actions if found else [],
                partial_analysis=partial,
            )
    except httpx.TimeoutException as exc:
        return _failed(url, host_header, "timed out", exc)
    except httpx.HTTPError as exc:
        return _failed(url, host_header, _reason(exc), exc)
    except Exception as exc:  # noqa: BLE001  (anything else costs this response only)
        return _failed(url, host_header, f"the HTTP probe failed: {failure(exc)}", exc)


def _failed(url: str, host_header: str, error: str, exc: BaseException) -> HttpResponse:
    """No response: why in words (`error`, what the reports show) and typed (`attempt`, what is judged)."""
    return HttpResponse(url=_display_url(url, host_header), error=error, attempt=from_http(exc))


def _analyse_body(
    response: httpx.Response, shown: str, max_body: int, timeout: float
) -> tuple[PageReferences, str | None]:
    """Mixed content of an HTML page, and why only part of it was judged. The body is untrusted:
    read, decoded and parsed each under a cap (scan.max_body_bytes applies to the decoded bytes)."""
    raw, partial = _read_raw(response, max_body, timeout)
    decoded = decode_body(raw, response.headers.get_list("content-encoding"), max_body)
    found = insecure_references(decoded.body, shown, timeout, response.charset_encoding)
    return found, "; ".join(n for n in (partial, decoded.note, found.note) if n) or None


def failure(exc: BaseException) -> str:
    """One line naming an unexpected exception (MemoryError has no message of its own)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failed_probe(url: str, exc: BaseException) -> HttpEvidence:
    """The HTTP evidence when the whole probe failed: the HTTP clauses are then in error, naming why."""
    why = f"the HTTP probe failed: {failure(exc)}"
    return HttpEvidence(https=[HttpResponse(url=url, error=why, attempt=from_http(exc))])


def _read_raw(response: httpx.Response, max_body: int, timeout: float) -> tuple[bytes, str | None]:
    """The body as sent (still content-coded), at most `max_body` bytes and `timeout` seconds (a
    server trickling its body must not hold the audit), and why it is incomplete."""
    body = bytearray()
    deadline = time.monotonic() + timeout
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= max_body:
                return bytes(
                    body[:max_body]
                ), f"the body reached the {max_body}-byte cap (scan.max_body_bytes)"
            if time.monotonic() > deadline:
                return bytes(body), f"the body was still arriving after {timeout:g} s"
    except httpx.HTTPError as exc:  # keep the headers and what arrived of the body
        return bytes(body), f"the body transfer failed ({_reason(exc)})"
    return bytes(body), None


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
    with contextlib.suppress(ssl.SSLError):  # an OpenSSL without SECLEVEL: its defaults
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def _next_hop(response: HttpResponse) -> tuple[ada_url.URL | None, str | None]:
    """Where a browser goes next from `response` when that stays on its HTTPS origin (the audited
    one): (URL to fetch, None); otherwise (None, why not followed), or (None, None) for no redirect."""
    if response.error is not None or response.status not in REDIRECT_STATUSES or not response.location:
        return None, None
    try:
        origin = ada_url.URL(response.url)
        target = ada_url.URL(ada_url.join_url(response.url, response.location))
    except ValueError:
        return None, f"Location {response.location[:200]!r} could not be resolved to a URL"
    if target.protocol != "https:":
        return None, f"Location {target.href[:200]} is not https://: not followed"
    if (target.hostname, target.port) != (origin.hostname, origin.port):
        return None, f"Location {target.href[:200]} is on another host: not followed"
    return target, None


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
    """GET https://host/ (+ paths), each followed through at most MAX_REDIRECTS same-host HTTPS
    redirects, and http://host/ (not followed: its answer is what is judged)."""
    connect_to = ip or host
    literal = f"[{connect_to}]" if ":" in connect_to else connect_to
    shown_host = f"[{host}]" if ":" in host else host
    https_host = shown_host if port == 443 else f"{shown_host}:{port}"
    http_host = shown_host if http_port == 80 else f"{shown_host}:{http_port}"
    sni = None if ip is None or is_ip(host) else host
    evidence = HttpEvidence()
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=1)
    with httpx.HTTPTransport(verify=_permissive_context(), limits=limits) as client:
        for path in ["/", *(paths or [])]:
            if on_phase:
                on_phase(f"GET https {path}")
            response = _fetch(client, f"https://{literal}:{port}{path}", https_host, sni, max_body, timeout)
            evidence.https.append(response)
            seen = {response.url}
            for hop in range(MAX_REDIRECTS + 1):
                target, why_not = _next_hop(response)
                if target is not None and hop == MAX_REDIRECTS:
                    why_not = f"more than {MAX_REDIRECTS} redirects: not followed further"
                elif target is not None and target.href in seen:
                    why_not = f"redirect loop back to {target.href[:200]}"
                if why_not or target is None:
                    response.redirect_not_followed = why_not
                    break
                seen.add(target.href)
                path_and_query = target.pathname + target.search
                hop_response = _fetch(
                    client, f"https://{literal}:{port}{path_and_query}", https_host, sni, max_body, timeout
                )
                hop_response.redirected_from = response.url
                evidence.https.append(hop_response)
                response = hop_response
        web = web_host(
            shown_host, literal, port, http_port, sni, timeout, max_body
        )  # the web grade's extra requests
        evidence.web = probe_web(client, evidence, web)  # on the HTTPS connection still open
        if on_phase:
            on_phase("GET http /")
        evidence.plain_http = _fetch(
            client, f"http://{literal}:{http_port}/", http_host, None, max_body, timeout
        )
        follow_route(client, evidence, web)
    return evidence
