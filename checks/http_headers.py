"""11.5-hsts: Strict-Transport-Security on HTTPS responses, with the policy's max-age floors."""

from __future__ import annotations

from auditor.hsts import parse_hsts
from auditor.model import Finding, HttpResponse, Status
from checks.base import CheckContext, finding, fix

HSTS_FIX = fix(
    'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
    'Header always set Strict-Transport-Security "max-age=63072000; includeSubDomains"',
    "Send HSTS on every HTTPS response with a max-age of at least one year:",
)
def _first_ok(responses: list[HttpResponse]) -> HttpResponse | None:
    return next((r for r in responses if r.error is None), None)


def check_hsts(ctx: CheckContext) -> list[Finding]:
    page = _first_ok(ctx.evidence.http.https)
    if page is None:
        errors = "; ".join(f"{r.url}: {r.error}" for r in ctx.evidence.http.https)
        return [finding("11.5-hsts", Status.ERROR, "No HTTPS page could be fetched", errors)]
    values = page.header("strict-transport-security")
    plain = ctx.evidence.http.plain_http
    over_http = plain is not None and plain.error is None and bool(plain.header("strict-transport-security"))
    if not values:
        detail = ("HSTS is sent over plain HTTP only, where browsers ignore it." if over_http
                  else "No Strict-Transport-Security header on the HTTPS response.")
        return [finding("11.5-hsts", Status.FAIL, "HSTS missing", detail, [f"GET {page.url} -> {page.status}"],
                        HSTS_FIX)]
    value = values[0]
    max_age, subdomains, preload = parse_hsts(value)
    facts = [f"{page.url}: Strict-Transport-Security: {value}",
             f"includeSubDomains: {'yes' if subdomains else 'no'}", f"preload: {'yes' if preload else 'no'}"]
    if len(values) > 1:
        facts.append(f"{len(values)} HSTS headers sent; browsers use the first")
    p = ctx.policy
    if max_age is None:
        return [finding("11.5-hsts", Status.FAIL, "HSTS header has no valid max-age",
                        "Browsers ignore an HSTS header without max-age.", facts, HSTS_FIX)]
    if max_age < p.hsts_fail_below:
        return [finding("11.5-hsts", Status.FAIL, f"HSTS max-age {max_age} is too short",
                        f"The policy requires at least {p.hsts_fail_below} s (fails below), {p.hsts_min_age} s "
                        f"recommended.", facts, HSTS_FIX)]
    if max_age < p.hsts_min_age:
        return [finding("11.5-hsts", Status.WARN, f"HSTS max-age {max_age} is below {p.hsts_min_age}",
                        "Accepted, but shorter than the recommended one year.", facts, HSTS_FIX)]
    extras = ", ".join(x for x, on in (("includeSubDomains", subdomains), ("preload", preload)) if on)
    return [finding("11.5-hsts", Status.PASS, f"HSTS max-age={max_age}" + (f" with {extras}" if extras else ""),
                    "HSTS is sent on HTTPS with a long enough max-age.", facts)]


CHECKS = [("11.5-hsts", check_hsts)]
