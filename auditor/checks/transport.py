"""11.1-tls-enforced: plain HTTP only redirects to HTTPS; no http:// sub-resources."""

from __future__ import annotations

from auditor.model import Finding, Status
from auditor.checks.base import CheckContext, finding, fix

CLAUSE = "11.1-tls-enforced"

REDIRECT_FIX = fix(
    "server { listen 80; server_name example.com; return 301 https://$host$request_uri; }",
    "<VirtualHost *:80>\n  ServerName example.com\n  Redirect permanent / https://example.com/\n</VirtualHost>",
    "Answer every plain-HTTP request with a permanent redirect to the same URL over https://.",
)
MIXED_FIX = fix(
    'add_header Content-Security-Policy "upgrade-insecure-requests" always;',
    'Header always set Content-Security-Policy "upgrade-insecure-requests"',
    "Change the listed http:// URLs in the pages to https:// (the header below is a stop-gap).",
)


def check_tls_enforced(ctx: CheckContext) -> list[Finding]:
    http = ctx.evidence.http
    plain = http.plain_http
    out: list[Finding] = []
    if plain is None and http.https and all(r.error for r in http.https):
        out.append(
            finding(
                CLAUSE,
                Status.ERROR,
                "The HTTP probe failed",
                "; ".join(f"{r.url}: {r.error}" for r in http.https),
            )
        )
    elif plain is None:
        out.append(finding(CLAUSE, Status.NOT_TESTED, "Plain HTTP was not probed"))
    elif plain.error:
        if plain.error in {"connection refused", "timed out"}:
            out.append(
                finding(
                    CLAUSE,
                    Status.PASS,
                    "Plain HTTP is not offered",
                    f"{plain.url} does not answer ({plain.error}), so no content is served unencrypted.",
                    [f"GET {plain.url}: {plain.error}"],
                )
            )
        else:
            out.append(
                finding(
                    CLAUSE,
                    Status.WARN,
                    "Plain HTTP answered with something unexpected",
                    f"GET {plain.url} failed: {plain.error}",
                    [f"GET {plain.url}: {plain.error}"],
                    REDIRECT_FIX,
                )
            )
    else:
        seen = [
            f"GET {plain.url} -> {plain.status}" + (f" Location: {plain.location}" if plain.location else "")
        ]
        location = (plain.location or "").strip()
        if plain.status in (301, 302, 303, 307, 308) and location.lower().startswith("https://"):
            if plain.status in (301, 308):
                out.append(
                    finding(
                        CLAUSE,
                        Status.PASS,
                        "Plain HTTP redirects to HTTPS",
                        f"HTTP answers {plain.status} to {location}.",
                        seen,
                    )
                )
            else:
                out.append(
                    finding(
                        CLAUSE,
                        Status.WARN,
                        "Plain HTTP redirects to HTTPS temporarily",
                        f"HTTP answers {plain.status}; a permanent 301/308 is preferred.",
                        seen,
                        REDIRECT_FIX,
                    )
                )
        elif plain.status in (301, 302, 303, 307, 308):
            out.append(
                finding(
                    CLAUSE,
                    Status.FAIL,
                    "Plain HTTP redirects to another unencrypted URL",
                    f"HTTP answers {plain.status} to {location or '(no Location)'}, not to https://.",
                    seen,
                    REDIRECT_FIX,
                )
            )
        else:
            out.append(
                finding(
                    CLAUSE,
                    Status.FAIL,
                    "Content is served over plain HTTP",
                    f"HTTP answers {plain.status} instead of redirecting to https://.",
                    seen,
                    REDIRECT_FIX,
                )
            )
    downgrades = [
        f"GET {r.url} -> {r.status} Location: {r.location}"
        for r in http.https
        if r.status in (301, 302, 303, 307, 308) and (r.location or "").strip().lower().startswith("http://")
    ]
    if downgrades:
        out.append(
            finding(
                CLAUSE,
                Status.FAIL,
                "An HTTPS page redirects to plain HTTP",
                "The browser is sent from https:// back to an unencrypted URL.",
                downgrades[:20],
                REDIRECT_FIX,
            )
        )
    # Every HTTPS response a browser sees (redirect hops too), judged as the W3C Mixed Content spec
    # counts loads: see auditor/scan/mixed_content.py.
    mixed = [(r.url, u) for r in http.https for u in r.insecure_references]
    partial = [
        f"{r.url}: judged in part only: {r.partial_analysis}" for r in http.https if r.partial_analysis
    ]
    if mixed:
        out.append(
            finding(
                CLAUSE,
                Status.FAIL,
                "Mixed content: pages load http:// resources",
                f"{len(mixed)} sub-resource(s) are loaded without TLS.",
                [f"{page}: {url}" for page, url in mixed[:20]] + partial,
                MIXED_FIX,
            )
        )
    elif partial:
        out.append(
            finding(
                CLAUSE,
                Status.WARN,
                "Mixed content judged on part of a page only",
                "No http:// sub-resource was found in what could be analysed; the rest of the page "
                "was not checked.",
                partial,
            )
        )
    return out


CHECKS = [(CLAUSE, check_tls_enforced)]
