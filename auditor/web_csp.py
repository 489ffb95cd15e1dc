"""Content-Security-Policy as the web grade reads it: policies parsed into directives and source
lists (CSP3 "parse a serialized CSP": `;` between directives, ASCII whitespace between words), then
judged by the HTTP Observatory's CSP rules (src/analyzer/cspParser.js and tests/csp.js, algorithm 6).

Several policies are enforced together, so a source counts only when every policy allows it: the
first policy's sources, kept by a later policy that names the same or a narrower source.
A directive repeated inside one policy makes the policy invalid, as in the Observatory (browsers
would use the first), except report-uri and report-to, which are only noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from urllib.parse import unquote

SHORTEST_POLICY = len("img-src") - 1
META_FORBIDDEN = ("frame-ancestors", "report-uri", "sandbox")  # ignored in <meta> (HTML spec)
DUPLICATES_ALLOWED = {"report-uri", "report-to"}
BROAD = {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
UNSAFE_INLINE = {"'unsafe-inline'", "data:"}
BROAD_OR_INLINE = BROAD | UNSAFE_INLINE
PASSIVE = ("img-src", "media-src")
NONCE_HASH = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")


class InvalidPolicy(ValueError):
    pass


@dataclass
class Csp:
    directives: dict[str, set[str]] = field(default_factory=dict)
    duplicates: set[str] = field(default_factory=set)  # report-uri / report-to given twice in one policy


@dataclass
class _Source:
    text: str
    policy: int
    keep: bool


def split_policies(values: list[str]) -> list[str]:
    """Header or <meta> values -> policies: a comma separates policies (CSP3 2.2, RFC 9110 5.3)."""
    return [part.strip() for value in values for part in value.split(",")]


def _path_part_match(a: str, b: str) -> bool:
    """Does source `a` cover source `b`, path segment by segment (a trailing / covers what is below)?"""
    if not a or (a == "/" and not b):
        return True
    exact = not a.endswith("/")
    parts_a, parts_b = a.split("/"), b.split("/")
    if len(parts_a) > len(parts_b) or (exact and len(parts_a) != len(parts_b)):
        return False
    if not exact:
        parts_a.pop()
    return all(unquote(x) == unquote(y) for x, y in zip(parts_a, parts_b, strict=False))


def parse_csp(policies: list[str]) -> Csp:
    """Policies -> the sources all of them allow, per directive (InvalidPolicy when one cannot be
    parsed). A source directive without sources is 'none'."""
    cleaned = [p.replace("\r", "").replace("\n", "").strip() for p in policies]
    result = Csp()
    if not cleaned:
        return result
    if any(len(p) < SHORTEST_POLICY for p in cleaned):
        raise InvalidPolicy("a policy too short to hold a directive")
    kept: dict[str, list[_Source]] = {}
    for index, policy in enumerate(cleaned):
        seen: set[str] = set()
        for entry in policy.split(";"):
            words = entry.split()
            if not words:
                continue
            directive = words[0].lower()
            if directive in seen:
                if directive not in DUPLICATES_ALLOWED:
                    raise InvalidPolicy(f"directive {directive} repeated in policy {index + 1}")
                result.duplicates.add(directive)
            seen.add(directive)
            new = [_Source(w.strip().lower(), index, index == 0) for w in words[1:]]
            if not new and directive.endswith("-src"):
                new = [_Source("'none'", index, index == 0)]
            combined = sorted(new if index == 0 else [*kept.get(directive, []), *new], key=lambda s: s.text)
            for prev, source in pairwise(combined):
                if source.policy == prev.policy and source.text.startswith(prev.text):
                    source.keep = False  # https://a/foo beside https://a/ in one policy: redundant
                if source.policy != prev.policy and _path_part_match(prev.text, source.text):
                    source.keep = True  # allowed by the earlier policy too
            kept[directive] = [s for s in combined if s.keep]
            if index == 0 and len(cleaned) > 1:
                for source in kept[directive]:  # later policies must confirm each source
                    source.keep = False
    result.directives = {d: ({s.text for s in sources} or {"'none'"}) for d, sources in kept.items()}
    return result


def parse_or_empty(policies: list[str], meta: bool = False) -> Csp:
    try:
        parsed = parse_csp(policies)
    except InvalidPolicy:
        return Csp()
    if meta:
        for directive in META_FORBIDDEN:
            parsed.directives.pop(directive, None)
    return parsed


@dataclass
class CspVerdict:
    result: str
    reason: str
    directives: dict[str, set[str]] | None = None  # the combined policy (None: not implemented or invalid)


def _nonce_or_hash(sources: set[str]) -> bool:
    return any(s.startswith(NONCE_HASH) for s in sources)


def judge_csp(header_values: list[str], meta_values: list[str], report_only: bool) -> CspVerdict:
    """The Observatory's CSP result for an HTTPS page with these header and <meta> policies."""
    http_policies, meta_policies = split_policies(header_values), split_policies(meta_values)
    try:
        csp = parse_csp([*http_policies, *meta_policies])
    except InvalidPolicy as exc:
        return CspVerdict("csp-header-invalid", f"the policy cannot be parsed: {exc}")
    header_only, meta_only = parse_or_empty(http_policies), parse_or_empty(meta_policies, meta=True)
    if not header_only.directives and not meta_only.directives:
        if report_only:
            return CspVerdict(
                "csp-not-implemented-but-reporting-enabled",
                "only Content-Security-Policy-Report-Only: nothing is enforced",
            )
        return CspVerdict("csp-not-implemented", "no Content-Security-Policy header or <meta>")
    d = csp.directives
    # The same set objects as in `d` on purpose: the Observatory's fallbacks share them too.
    script_src = d.get("script-src") or d.get("default-src") or {"*"}
    object_src = d.get("object-src") or d.get("default-src") or {"*"}
    style_src = d.get("style-src") or d.get("default-src") or {"*"}
    for sources in (script_src, style_src):
        if _nonce_or_hash(sources):
            sources.discard("'unsafe-inline'")  # ignored by browsers beside a nonce or hash
    found: list[tuple[str, str]] = []
    if "'strict-dynamic'" in script_src:
        if _nonce_or_hash(script_src):
            for source in list(script_src):
                if source.startswith(tuple(BROAD)) or source in ("'self'", "'unsafe-inline'"):
                    script_src.discard(source)  # ignored by browsers under 'strict-dynamic'
        else:
            found.append(("csp-header-invalid", "'strict-dynamic' without a nonce or hash"))
    active = [s for name, sources in d.items() if name not in (*PASSIVE, "script-src") for s in sources]
    active += list(script_src)
    passive = [s for name in PASSIVE for s in (d.get(name) or d.get("default-src") or set())]
    if script_src & BROAD_OR_INLINE or object_src & BROAD:
        bad = sorted((script_src & BROAD_OR_INLINE) | (object_src & BROAD))
        found.append(
            (
                "csp-implemented-with-unsafe-inline",
                f"script-src or object-src allows {', '.join(bad)} (unset ones allow everything)",
            )
        )
    insecure = sorted({s for s in active if s.startswith(("http:", "ftp:"))})
    if insecure:
        found.append(("csp-implemented-with-insecure-scheme", f"allows loads over {', '.join(insecure[:3])}"))
    if "'unsafe-eval'" in script_src | style_src:
        found.append(("csp-implemented-with-unsafe-eval", "script-src or style-src allows 'unsafe-eval'"))
    insecure_passive = sorted({s for s in passive if s.startswith(("http:", "ftp:"))})
    if insecure_passive:
        found.append(
            (
                "csp-implemented-with-insecure-scheme-in-passive-content-only",
                f"img-src or media-src allows {', '.join(insecure_passive[:3])}",
            )
        )
    if style_src & BROAD_OR_INLINE:
        found.append(
            (
                "csp-implemented-with-unsafe-inline-in-style-src-only",
                f"style-src allows {', '.join(sorted(style_src & BROAD_OR_INLINE))}",
            )
        )
    if d.get("default-src") == {"'none'"}:
        found.append(
            ("csp-implemented-with-no-unsafe-default-src-none", "default-src 'none', nothing unsafe")
        )
    found.append(("csp-implemented-with-no-unsafe", "no 'unsafe-inline', 'unsafe-eval' or insecure source"))
    result, reason = found[0]  # the first problem in the Observatory's order decides
    passing = (
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    )
    if result in passing and csp.duplicates:
        result, reason = (
            "csp-implemented-but-duplicate-directives",
            f"{', '.join(sorted(csp.duplicates))} repeated in one policy",
        )
    return CspVerdict(result, reason, d)
