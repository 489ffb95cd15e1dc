"""11.1-tls-enforced: plain HTTP only redirects to HTTPS; no http:// sub-resources."""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.checks.evidence import port_closed
from auditor.model import ClauseId, Finding, Status

CLAUSE = ClauseId.TLS_ENFORCED

REDIRECT_FIX = remediation(ClauseId.TLS_ENFORCED, "redirect")
MIXED_FIX = remediation(ClauseId.TLS_ENFORCED, "mixed-content")


def check_tls_enforced(ctx: CheckContext) -> list[Finding]:
    http = ctx.evidence.http
    plain = http.plain_http
    out: list[Finding] = []
    if plain is None and http.https and all(r.error for r in http.https):
        out.append(
            finding(
                CLAUSE,
                "http-probe-failed",
                Status.ERROR,
                "The HTTP probe failed",
                "; ".join(f"{r.url}: {r.error}" for r in http.https),
            )
        )
    elif plain is None:
        out.append(finding(CLAUSE, "plain-http-not-probed", Status.NOT_TESTED, "Plain HTTP was not probed"))
    elif plain.attempt is not None:
        if port_closed(plain):
            out.append(
                finding(
                    CLAUSE,
                    "plain-http-closed",
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
                    "plain-http-unexpected",
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
                        "http-redirects-permanent",
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
                        "http-redirects-temporary",
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
                    "http-redirects-to-http",
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
                    "http-serves-content",
                    Status.FAIL,
                    "Content is served over plain HTTP",
                    f"HTTP answers {plain.status} instead of redirecting to https://.",
                    seen,
                    REDIRECT_FIX,
                )
            )
    if plain is not None and http.https and all(r.error for r in http.https):
        # the HTTPS half of the clause (no downgrade redirect, no mixed content) rests on pages
        # none of which came back (a server that stopped answering, a reset): it stays open
        out.append(
            finding(
                CLAUSE,
                "https-pages-not-fetched",
                Status.ERROR,
                "No HTTPS page could be fetched",
                "; ".join(f"{r.url}: {r.error}" for r in http.https)[:300],
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
                "https-redirects-to-http",
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
                "mixed-content",
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
                "mixed-content-partial",
                Status.WARN,
                "Mixed content judged on part of a page only",
                "No http:// sub-resource was found in what could be analysed; the rest of the page "
                "was not checked.",
                partial,
            )
        )
    return out


CHECKS = [(CLAUSE, check_tls_enforced)]
