"""Independent black-box verdicts: real servers on loopback, audited through the real CLI, each
expectation taken from the specification (../shared/policy/clauses.md, ../shared/grading/ssllabs-rating.md,
both with their "Precisions") or, where they are silent, from the RFC / W3C spec / SSL Labs guide,
quoted in a comment beside the case. Written from the specification, not from the code: a strict xfail
marks a verdict the auditor gets wrong, with its source.

Servers are grouped so that each group is one `auditor audit` run (module-scoped fixtures): one nginx
master with one HTTPS server block per HTTP case (the auditor judges a target at `/`: a URL's path is not
used), one nginx per TLS variant, tlslite-ng for weak DH and 3DES orders, OpenSSL 1.0.1e for DH sizes
and SSL 2.0, and a local OCSP responder. The whole file runs in about a minute.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

import pytest

from tests.conftest import clause_statuses, run_cli
from tests.harness.legacy import LegacyOpenSSLServer, legacy_openssl_available
from tests.harness.ocsp import OCSPResponder, delegated_responder, ocsp_response
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, free_port, wait_for_port
from tests.harness.tlslite_server import TlsliteServer

HSTS_2Y = "max-age=63072000; includeSubDomains"
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
LEGACY_ABSENT = "../shared/legacy-openssl is absent (a clone outside its usual place)"
NOT_FAIL = {"pass", "warn", "info"}


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Target:
    url: str
    ca_bundle: Path | None  # None: judged against the public trust stores only
    http_port: int = 9  # nothing listens on 9: "no plain-HTTP listener"


REPORT_FORMATS = ("html", "csv", "sarif", "junit")


def audit(targets: Mapping[str, Target], directory: Path, scan: str = "") -> dict[str, dict]:  # type: ignore[type-arg]
    """One real `auditor audit` run over `targets`, connecting to 127.0.0.1; each target's JSON result.
    Every other report format is written beside it, and all that the run printed is kept under
    "__stdout__" (JSON and verdict lines) and "__files__" (the other reports' text)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"[scan]\nconcurrency = 8\n{scan}\n[output]\nwrite_json = false\n"]
    for name, t in targets.items():
        lines.append(
            f'[[targets]]\nname = "{name}"\nurl = "{t.url}"\nip = "127.0.0.1"\nhttp_port = {t.http_port}\n'
        )
        if t.ca_bundle is not None:
            lines.append(f'ca_bundle = "{t.ca_bundle}"\n')
    config = directory / "config.toml"
    config.write_text("".join(lines))
    formats = [arg for fmt in REPORT_FORMATS for arg in (f"--{fmt}", str(directory / f"report.{fmt}"))]
    run = run_cli("audit", "--config", str(config), "--json", "-", *formats)
    assert run.stdout.strip(), f"no JSON report (exit {run.code}): {run.stderr[-2000:]}"
    report = run.report
    (directory / "report.json").write_text(run.stdout)  # kept for whoever debugs a failure
    results = {t["target"]["name"]: t for t in report["targets"]}
    for fmt in REPORT_FORMATS:
        assert (directory / f"report.{fmt}").is_file(), (
            f"no {fmt} report (exit {run.code}): {run.stderr[-3000:]}"
        )
    results["__stdout__"] = run.stdout + run.stderr  # type: ignore[assignment]
    results["__files__"] = "".join(
        (directory / f"report.{fmt}").read_text()  # type: ignore[assignment]
        for fmt in REPORT_FORMATS
    )
    return results


def audited(results: dict, name: str) -> dict:  # type: ignore[type-arg]
    """The result of target `name`, which must have been audited (no target-level error)."""
    result = results[name]
    assert result["error"] is None, f"{name} was not audited: {result['error']}"
    return result


def status(result: dict, clause: str) -> str:  # type: ignore[type-arg]
    return clause_statuses(result)[clause]


def caps(result: dict) -> list[str]:  # type: ignore[type-arg]
    return [f"{c['grade']}: {c['reason']}" for c in result["grade"]["caps"]]


def has_cap(result: dict, letter: str, *words: str) -> bool:  # type: ignore[type-arg]
    """A cap of `letter` whose reason names every one of `words` (case-insensitive)."""
    return any(
        c["grade"] == letter and all(w.lower() in c["reason"].lower() for w in words)
        for c in result["grade"]["caps"]
    )


def findings(result: dict, clause: str) -> str:  # type: ignore[type-arg]
    """Every finding of `clause`, as text, for assertion messages and wording checks."""
    return "\n".join(
        f"{f['status']}: {f['title']} | {f['detail']} | {f['evidence']}"
        for f in result["findings"]
        if f["clause"] == clause
    )


def ngx(value: str) -> str:
    """An nginx double-quoted string (the values here hold no `$`)."""
    assert "$" not in value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ConnectionRelay:
    """A TCP relay on 127.0.0.1 in front of `upstream_port` that records how many connections the
    client holds open at once (`peak`): what `connections_per_server` promises to bound. A connection
    lasts from its accept until either side closes it; an overlap shorter than GRACE seconds is the
    relay's own thread scheduling noticing a close late, not two connections in use."""

    GRACE = 0.05

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.spans: list[list[float]] = []  # [accepted, ended] per connection (ended: inf while open)
        self._lock = threading.Lock()

    @property
    def peak(self) -> int:
        with self._lock:
            spans = [(start, end - self.GRACE) for start, end in self.spans]
        return max(
            (sum(1 for s, e in spans if s <= start < max(e, s + 1e-9)) for start, _ in spans), default=0
        )

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True, name=f"relay:{self.port}").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            span = [time.monotonic(), math.inf]
            with self._lock:
                self.spans.append(span)
            threading.Thread(target=self._serve, args=(client, span), daemon=True).start()

    def _serve(self, client: socket.socket, span: list[float]) -> None:
        def end() -> None:
            with self._lock:
                span[1] = min(span[1], time.monotonic())

        try:
            with client, socket.create_connection(("127.0.0.1", self.upstream_port)) as server:
                back = threading.Thread(target=lambda: (self._pump(server, client), end()), daemon=True)
                back.start()
                self._pump(client, server)
                end()
                back.join()
        except OSError:
            pass
        finally:
            end()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


# ---------------------------------------------------------------- HTTP: one nginx, one server block per case

# (name, Strict-Transport-Security field values in order, expected 11.5-hsts, why)
HSTS_CASES = [
    (
        "quoted",
        ['max-age="31536000"'],
        "pass",
        "RFC 6797 6.1.1: max-age-value = delta-seconds, and 6.1: directive-value = token | quoted-string",
    ),
    (
        "uppercase",
        ["MAX-AGE=31536000; INCLUDESUBDOMAINS"],
        "pass",
        "RFC 6797 6.1 (3): directive names are case-insensitive",
    ),
    (
        "whitespace",
        ["max-age = 31536000 ;  includeSubDomains"],
        "pass",
        "RFC 6797 6.1: the ABNF uses RFC 2616's implied *LWS between words and separators",
    ),
    (
        "leading-semicolon",
        [";max-age=31536000"],
        "pass",
        'RFC 6797 6.1: [ directive ] *( ";" [ directive ] ): the first directive may be empty',
    ),
    (
        "trailing-semicolon",
        ["max-age=31536000;"],
        "pass",
        'RFC 6797 6.1: [ directive ] *( ";" [ directive ] ): empty directives are allowed',
    ),
    (
        "empty-directives",
        ["max-age=31536000;;includeSubDomains"],
        "pass",
        'RFC 6797 6.1: [ directive ] *( ";" [ directive ] )',
    ),
    (
        "unknown-directive",
        ['max-age=31536000; preload; report-uri="https://r.test/"'],
        "pass",
        "RFC 6797 6.1 (2): UAs MUST ignore directives they do not recognise (it conforms to the syntax)",
    ),
    (
        "max-age-zero",
        ["max-age=0"],
        "fail",
        "RFC 6797 6.1.1: max-age zero signals the UA to cease regarding the host as a Known HSTS Host",
    ),
    (
        "duplicate",
        ["max-age=31536000; max-age=0"],
        "fail",
        "RFC 6797 6.1 (1): all directives MUST appear only once; clauses.md Precisions: invalid = missing",
    ),
    (
        "duplicate-other-case",
        ["max-age=31536000; includeSubDomains; INCLUDESUBDOMAINS"],
        "fail",
        "RFC 6797 6.1 (1)+(3): names are case-insensitive, so this directive appears twice: invalid",
    ),
    (
        "unclosed-quote",
        ['max-age="31536000'],
        "fail",
        "RFC 6797 6.1: a quoted-string must close; clauses.md Precisions: a broken quote makes it invalid",
    ),
    ("no-max-age", ["includeSubDomains"], "fail", "RFC 6797 6.1.1: the max-age directive is REQUIRED"),
    ("max-age-unit", ["max-age=31536000s"], "fail", "RFC 6797 6.1.1: delta-seconds = 1*DIGIT"),
    ("max-age-negative", ["max-age=-1"], "fail", "RFC 6797 6.1.1: delta-seconds = 1*DIGIT"),
    (
        "two-fields-short-first",
        ["max-age=300", "max-age=63072000"],
        "fail",
        "RFC 6797 8.1: with more than one STS header field the UA MUST process only the first (300 s)",
    ),
    (
        "two-fields-long-first",
        ["max-age=63072000", "max-age=0"],
        "pass",
        "RFC 6797 8.1: only the first STS header field is processed",
    ),
    (
        "comma-separated",
        ["max-age=31536000, includeSubDomains"],
        "fail",
        "RFC 6797 6.1: directives are separated by ';'; '31536000,' is no delta-seconds: invalid",
    ),
    (
        "invalid-token",
        ["max-age=31536000; include@SubDomains"],
        "fail",
        "RFC 6797 6.1: directive-name = token, and '@' is a separator (RFC 2616 2.2): unknown syntax",
    ),
    (
        "huge-max-age",
        ["max-age=99999999999999999999"],
        "pass",
        "RFC 6797 6.1.1: delta-seconds = 1*DIGIT, no upper bound (UAs clamp it)",
    ),
    ("leading-zeros", ["max-age=031536000"], "pass", "RFC 6797 6.1.1: delta-seconds = 1*DIGIT"),
    (
        "on-a-404",
        ["max-age=31536000"],
        "pass",
        "RFC 6797 8.1: the UA processes STS on any response over secure transport, whatever the status",
    ),
    (
        "boundary-180-days",
        ["max-age=15552000"],
        "fail",
        "clauses.md 11.5-hsts: fail below 15768000 (15552000 is below)",
    ),
]
# Grade per ssllabs-rating.md "A+, A, A-": A+ needs HSTS max-age >= 15552000; an invalid, missing or
# shorter HSTS is a warning (A-). The server is otherwise modern (TLS 1.2+1.3, server order, ECDHE).
HSTS_GRADES = {
    "quoted": "A+",
    "uppercase": "A+",
    "whitespace": "A+",
    "trailing-semicolon": "A+",
    "max-age-zero": "A-",
    "duplicate": "A-",
    "duplicate-other-case": "A-",
    "unclosed-quote": "A-",
    "no-max-age": "A-",
    "two-fields-short-first": "A-",
    "two-fields-long-first": "A+",
    "boundary-180-days": "A+",
}

GOOD = "; Secure; HttpOnly; SameSite=Lax"
# (name, Set-Cookie field values, expected 11.5-cookies, why)
COOKIE_CASES = [
    (
        "lowercase-attributes",
        ["a=1; secure; httponly; samesite=strict"],
        "pass",
        "RFC 6265 5.2: attribute names match case-insensitively; 6265bis 5.6.7: SameSite values too",
    ),
    (
        "attributes-with-values",
        ["a=1; Secure=no; HttpOnly=0; SameSite=Lax"],
        "pass",
        "RFC 6265 5.2.5/5.2.6: an attribute named Secure / HttpOnly is set whatever its value",
    ),
    (
        "whitespace",
        ["a=1 ;  Secure ;HttpOnly;   SameSite = Lax "],
        "pass",
        "RFC 6265 5.2: leading and trailing WSP are removed from attribute names and values",
    ),
    (
        "samesite-unknown-value",
        ["a=1; Secure; HttpOnly; SameSite=Lex"],
        "fail",
        "RFC 6265bis 5.6.7: a value other than None/Strict/Lax leaves enforcement at Default: not Lax/Strict",
    ),
    (
        "samesite-none-no-secure",
        ["a=1; HttpOnly; SameSite=None"],
        "fail",
        "clauses.md 11.5-cookies: SameSite=None only with Secure (and Secure is required anyway)",
    ),
    (
        "host-prefix-with-domain",
        ["__Host-a=1; Secure; HttpOnly; SameSite=Lax; Path=/; Domain=good.test"],
        "fail",
        "RFC 6265bis 4.1.3.2: a __Host- cookie must not have a Domain attribute",
    ),
    (
        "host-prefix-lowercase-no-path",
        ["__host-a=1; Secure; HttpOnly; SameSite=Lax"],
        "fail",
        "RFC 6265bis 5.7 + clauses.md Precisions: prefixes match case-insensitively; __Host- needs Path=/",
    ),
    (
        "host-prefix-other-path",
        ["__Host-a=1; Secure; HttpOnly; SameSite=Lax; Path=/app"],
        "fail",
        "RFC 6265bis 4.1.3.2: a __Host- cookie must have Path=/",
    ),
    (
        "empty-name-with-equals",
        ["=EMPTYNAMEVALUE2b" + GOOD],
        "pass",
        "RFC 6265bis 5.6: '=value' is an empty name and that value; the attributes hold",
    ),
    (
        "secure-is-the-value",
        ["a=Secure; HttpOnly; SameSite=Lax"],
        "fail",
        "RFC 6265 5.2: the first name=value pair is the cookie itself: 'Secure' here is a value, not an attribute",
    ),
    (
        "samesite-is-the-value",
        ["a=SameSite=Lax; Secure; HttpOnly"],
        "fail",
        "RFC 6265 5.2 step 2-3: the name is up to the first '=', the rest ('SameSite=Lax') is the value",
    ),
    (
        "secure-inside-path",
        ["a=1; HttpOnly; SameSite=Lax; Path=/Secure"],
        "fail",
        "RFC 6265 5.2.4: 'Secure' is the Path attribute's value; no Secure attribute",
    ),
    (
        "secure-as-prefix",
        ["a=1; HttpOnly; SameSite=Lax; Securely"],
        "fail",
        "RFC 6265 5.2: 'Securely' is an unknown attribute, ignored; no Secure attribute",
    ),
    (
        "host-prefix-ok",
        ["__Host-a=1; Secure; HttpOnly; SameSite=Lax; Path=/"],
        "pass",
        "RFC 6265bis 4.1.3.2: Secure, no Domain, Path=/",
    ),
    (
        "nameless",
        ["NAMELESSVALUE7f3a" + GOOD],
        "pass",
        "RFC 6265bis 5.6 step 2: no '=' means an empty name and this text as value; the attributes hold",
    ),
    (
        "deletion-max-age-zero",
        ["gone=; Max-Age=0"],
        "pass",
        "issue 11 item 11: deletion cookies are reported, not failed (RFC 6265 5.2.2: <= 0 expires at once)",
    ),
    (
        "deletion-max-age-negative",
        ["gone=x; Max-Age=-1"],
        "pass",
        "RFC 6265 5.2.2: delta-seconds <= 0 means the earliest representable time: a deletion",
    ),
    (
        "deletion-expires-past",
        ["gone=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
        "pass",
        "issue 11 item 11: an expiry in the past deletes the cookie: reported, not failed",
    ),
    (
        "deletion-expires-dashes",
        ["gone=; Expires=Thu, 01-Jan-1970 00:00:01 GMT"],
        "pass",
        "RFC 6265 5.1.1: the cookie date algorithm reads the dashed (Netscape) form: a past date, a deletion",
    ),
    (
        "deletion-expires-two-digit-year",
        ["gone=; Expires=Thu, 01-Jan-70 00:00:01 GMT"],
        "pass",
        "RFC 6265 5.1.1 step 3: a year 70-99 gets 1900 added: 1970, a deletion",
    ),
    (
        "max-age-last-wins",
        ["keep=1; Max-Age=0; Max-Age=3600"],
        "fail",
        "RFC 6265 5.3 step 3: the last Max-Age attribute counts (3600): a stored cookie without Secure",
    ),
    (
        "max-age-beats-expires",
        ["keep=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=3600"],
        "fail",
        "RFC 6265 5.3 step 3: Max-Age takes precedence over Expires: a stored cookie without Secure",
    ),
]
SECRET_VALUES = ("NAMELESSVALUE7f3a", "VALUESECRET91c", "EMPTYNAMEVALUE2b")


class MultiSiteNginx(NginxSite):
    """One nginx master serving, besides NginxSite's own site, one HTTPS server block per case on its own
    port (with its own plain-HTTP redirect listener), because the auditor judges a target at `/`
    (the URL's path is not used). `cases` maps a name to that block's extra directives; files written
    to `case_root(name)` are its pages."""

    def __init__(self, directory: Path, *, cases: Mapping[str, str], **kwargs: object) -> None:
        super().__init__(directory, **kwargs)  # type: ignore[arg-type]
        taken = {self.https_port, self.http_port}
        self.cases: dict[str, tuple[int, int, str]] = {}
        for name, block in cases.items():
            ports = []
            while len(ports) < 2:
                port = free_port()
                if port not in taken:
                    taken.add(port)
                    ports.append(port)
            self.cases[name] = (ports[0], ports[1], block)

    def case_root(self, name: str) -> Path:
        return self.directory / "cases" / name.replace("/", "_")

    def case_target(self, name: str, ca_bundle: Path | None) -> Target:
        https_port, http_port, _ = self.cases[name]
        return Target(f"https://{self.server_name}:{https_port}/", ca_bundle, http_port)

    def config_text(self) -> str:
        text = super().config_text().rstrip()
        assert text.endswith("}")
        cert = self.issued.chain_path if self.serve_chain else self.issued.cert_path
        tls13 = f"ssl_conf_command Ciphersuites {self.tls13_ciphersuites};" if self.tls13_ciphersuites else ""
        blocks = []
        for name, (https_port, http_port, block) in self.cases.items():
            root = self.case_root(name)
            root.mkdir(parents=True, exist_ok=True)
            if not (root / "index.html").exists():
                (root / "index.html").write_text(self.body)
            blocks.append(f"""
  server {{
    listen 127.0.0.1:{https_port} ssl;
    server_name {self.server_name};
    ssl_certificate {cert};
    ssl_certificate_key {self.issued.key_path};
    ssl_protocols {self.protocols};
    ssl_ciphers {self.ciphers};
    ssl_prefer_server_ciphers {"on" if self.prefer_server_ciphers else "off"};
    ssl_ecdh_curve {self.ecdh_curve};
    {tls13}
    ssl_session_tickets off;
    root {root};
    index index.html;
    {block}
  }}
  server {{
    listen 127.0.0.1:{http_port};
    server_name {self.server_name};
    return 301 https://$host:{https_port}$request_uri;
  }}""")
        return text[:-1] + "".join(blocks) + "\n}\n"

    def start(self) -> None:
        super().start()
        for https_port, http_port, _ in self.cases.values():
            wait_for_port(https_port, proc=self.proc)
            wait_for_port(http_port, proc=self.proc)


def _headers(*pairs: tuple[str, str]) -> str:
    return " ".join(f"add_header {name} {ngx(value)} always;" for name, value in pairs)


# W3C Mixed Content + clauses.md Precisions ("only what the page loads counts ... each URL resolved
# against <base href>; <a href>, rel=canonical and rel=alternate are never loaded and never count").
# (name, head, body, expected 11.1-tls-enforced, why)
MIXED_CASES = [
    ("iframe", "", '<iframe src="http://cdn.test/f.html"></iframe>', "fail", "frames are loaded"),
    ("object", "", '<object data="http://cdn.test/a.swf"></object>', "fail", "objects are loaded"),
    ("embed", "", '<embed src="http://cdn.test/a.swf">', "fail", "embeds are loaded"),
    (
        "video-poster",
        "",
        '<video poster="http://cdn.test/p.jpg"></video>',
        "fail",
        "the poster is an image load",
    ),
    ("video-source", "", '<video><source src="http://cdn.test/v.mp4"></video>', "fail", "media is loaded"),
    ("audio", "", '<audio src="http://cdn.test/a.mp3"></audio>', "fail", "media is loaded"),
    (
        "input-image",
        "",
        '<input type="image" src="http://cdn.test/b.png">',
        "fail",
        "HTML: an image button fetches its src",
    ),
    (
        "link-preload-stylesheet",
        '<link rel="preload stylesheet" as="style" href="http://cdn.test/a.css">',
        "",
        "fail",
        "rel is a token set: it holds stylesheet (and preload)",
    ),
    (
        "link-icon-uppercase",
        '<link rel="ICON" href="http://cdn.test/f.ico">',
        "",
        "fail",
        "rel tokens are ASCII case-insensitive",
    ),
    (
        "link-modulepreload",
        '<link rel="modulepreload" href="http://cdn.test/m.js">',
        "",
        "fail",
        "Precisions name modulepreload",
    ),
    (
        "link-manifest",
        '<link rel="manifest" href="http://cdn.test/m.json">',
        "",
        "fail",
        "Precisions name manifest",
    ),
    (
        "base-http",
        '<base href="http://cdn.test/">',
        '<img src="a.png">',
        "fail",
        "Precisions: each URL resolved against <base href>",
    ),
    (
        "style-url",
        "<style>body{background:url(http://cdn.test/bg.png)}</style>",
        "",
        "fail",
        "Precisions: images from CSS url() in <style>",
    ),
    (
        "style-import-string",
        '<style>@import "http://cdn.test/a.css";</style>',
        "",
        "fail",
        "CSS Cascade: @import takes a <string> or url(): the string form loads too",
    ),
    (
        "style-font-face",
        "<style>@font-face{font-family:x;src:url(http://cdn.test/f.woff2)}</style>",
        "",
        "fail",
        "Precisions: fonts from CSS url()",
    ),
    (
        "style-attribute",
        "",
        "<div style=\"background-image: url('http://cdn.test/x.png')\">x</div>",
        "fail",
        "Precisions: CSS url() in style=",
    ),
    (
        "srcset",
        "",
        '<img src="https://cdn.test/1.png" srcset="https://cdn.test/1.png 1x, http://cdn.test/2.png 2x">',
        "fail",
        "Precisions: srcset",
    ),
    ("svg-image", "", '<svg><image href="http://cdn.test/i.png"/></svg>', "fail", "Precisions: SVG image"),
    (
        "svg-image-xlink",
        "",
        '<svg xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://cdn.test/i.png"/></svg>',
        "fail",
        "SVG 1.1 image xlink:href, still loaded by every browser",
    ),
    (
        "scheme-uppercase",
        "",
        '<img src="HTTP://cdn.test/a.png">',
        "fail",
        "WHATWG URL: the scheme is ASCII case-insensitive",
    ),
    (
        "url-whitespace",
        "",
        '<img src="  http://cdn.test/a.png ">',
        "fail",
        "WHATWG URL: leading and trailing C0 control or space is stripped",
    ),
    (
        "scheme-one-slash",
        "",
        '<img src="http:/cdn.test/a.png">',
        "fail",
        "WHATWG URL: a special scheme other than the base's ignores the missing slash: http://cdn.test/a.png",
    ),
    (
        "scheme-backslashes",
        "",
        '<img src="http:\\\\cdn.test\\a.png">',
        "fail",
        "WHATWG URL: '\\' counts as '/' in special URLs: http://cdn.test/a.png",
    ),
    (
        "char-reference",
        "",
        '<img src="ht&#x74;p://cdn.test/a.png">',
        "fail",
        "HTML: character references are decoded in attribute values",
    ),
    (
        "newline-in-scheme",
        "",
        '<img src="ht&#10;tp://cdn.test/a.png">',
        "fail",
        "WHATWG URL: ASCII tab or newline is removed anywhere in the input",
    ),
    (
        "picture-source-srcset",
        "",
        '<picture><source srcset="http://cdn.test/a.webp"><img src="https://cdn.test/a.png"></picture>',
        "fail",
        "HTML: a picture's source srcset is what the image loads",
    ),
    (
        "css-escape",
        "<style>body{background:url(h\\74tp://cdn.test/x.png)}</style>",
        "",
        "fail",
        "CSS Syntax: escapes are decoded in url tokens: http://cdn.test/x.png",
    ),
    (
        "image-tag",
        "",
        '<image src="http://cdn.test/a.png">',
        "fail",
        "HTML tree construction ('in body'): a start tag 'image' is renamed 'img': it loads",
    ),
    (
        "unquoted-uppercase",
        "",
        "<IMG SRC=http://cdn.test/a.png>",
        "fail",
        "HTML: tag and attribute names are case-insensitive, unquoted attribute values are values",
    ),
    (
        "link-preconnect",
        '<link rel="preconnect" href="http://cdn.test">',
        "",
        "pass",
        "Precisions: only rel=stylesheet|icon|preload|modulepreload|manifest load a resource",
    ),
    (
        "link-next",
        '<link rel="next" href="http://good.test/page/2">',
        "",
        "pass",
        "Precisions: only rel=stylesheet|icon|preload|modulepreload|manifest load a resource",
    ),
    (
        "protocol-relative-base",
        '<base href="//cdn.test/">',
        '<img src="a.png">',
        "pass",
        "WHATWG URL: //host resolves against https://",
    ),
    (
        "protocol-relative",
        "",
        '<script src="//cdn.test/x.js"></script>',
        "pass",
        "WHATWG URL: //host/x resolves against https://, so it is https",
    ),
    ("canonical", '<link rel="canonical" href="http://good.test/">', "", "pass", "Precisions: never loaded"),
    (
        "alternate",
        '<link rel="alternate" hreflang="en" href="http://good.test/en/">',
        "",
        "pass",
        "Precisions: never loaded",
    ),
    ("anchor", "", '<a href="http://elsewhere.test/">x</a>', "pass", "Precisions: <a href> is never loaded"),
    (
        "comment",
        "",
        '<!-- <script src="http://cdn.test/x.js"></script> -->',
        "pass",
        "a comment loads nothing",
    ),
    (
        "template",
        "",
        '<template><img src="http://cdn.test/a.png"></template>',
        "pass",
        "HTML 4.12.3: template contents are inert (a separate document): nothing loads",
    ),
    (
        "textarea",
        "",
        '<textarea><img src="http://cdn.test/a.png"></textarea>',
        "pass",
        "HTML: textarea content is RCDATA text, not elements",
    ),
    (
        "script-template",
        "",
        '<script type="text/template"><img src="http://cdn.test/a.png"></script>',
        "pass",
        "HTML: script content is raw text; an unknown type is never run",
    ),
    (
        "data-src",
        "",
        '<img data-src="http://cdn.test/a.png" src="https://cdn.test/a.png">',
        "pass",
        "data-* attributes are never fetched",
    ),
    ("base-https", '<base href="https://cdn.test/">', '<img src="a.png">', "pass", "resolves to https"),
    (
        "first-base-wins",
        '<base href="https://cdn.test/"><base href="http://cdn.test/">',
        '<img src="a.png">',
        "pass",
        "HTML 4.2.3: the document base URL comes from the first base element with href",
    ),
    (
        "css-comment",
        "<style>/* url(http://cdn.test/x.png) */ body{color:red}</style>",
        "",
        "pass",
        "CSS Syntax: comments are dropped by the tokenizer",
    ),
    (
        "css-string",
        '<style>p::after{content:"url(http://cdn.test/x.png)"}</style>',
        "",
        "pass",
        "CSS Syntax: a url() inside a string is text, not a url token",
    ),
]
# (name, head, body, expected 5.4-transit, why): forms resolve their action like any URL (Precisions)
FORM_CASES = [
    (
        "form-http",
        "",
        '<form method="post" action="http://good.test/post"><input name="a"></form>',
        "fail",
        "clauses.md 5.4-transit: a form posting to http://",
    ),
    (
        "form-base",
        '<base href="http://good.test/">',
        '<form method="post" action="post"><input name="a"></form>',
        "fail",
        "Precisions: forms resolve their action against <base href>",
    ),
    (
        "form-formaction",
        "",
        '<form method="post" action="/post"><button formaction="http://good.test/x">go</button></form>',
        "fail",
        "HTML 4.10.21.3: the submitter's formaction overrides the form's action",
    ),
    (
        "form-get-http",
        "",
        '<form method="get" action="http://good.test/search"><input name="q"></form>',
        "fail",
        "clauses.md 5.4: personal data only over TLS; a GET form sends its fields in clear in the query",
    ),
    (
        "form-protocol-relative",
        "",
        '<form method="post" action="//good.test/post"><input name="a"></form>',
        "pass",
        "WHATWG URL: //host resolves to https here",
    ),
]


def _rows(cases: list) -> list[tuple]:  # type: ignore[type-arg]
    """The plain tuples of a case list that may hold pytest.param entries (the xfail ones)."""
    return [tuple(c.values) if hasattr(c, "values") else c for c in cases]


def _case_ids(cases: list) -> list[str]:  # type: ignore[type-arg]
    return [row[0] for row in _rows(cases)]


def _page(head: str, body: str) -> str:
    return f"<!doctype html><html><head><title>t</title>{head}</head><body><p>x</p>{body}</body></html>"


@pytest.fixture(scope="module")
def http_results(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("http")
    leaf = pki.issue("indep-http")
    hsts = ("Strict-Transport-Security", HSTS_2Y)
    cases = {
        f"hsts/{n}": _headers(*(("Strict-Transport-Security", v) for v in values))
        for n, values, _, _ in HSTS_CASES
    }
    cases["hsts/on-a-404"] = (
        f"location = / {{ {_headers(('Strict-Transport-Security', 'max-age=31536000'))} return 404; }}"
    )
    cases |= {
        f"cookie/{n}": _headers(hsts, *(("Set-Cookie", v) for v in values))
        for n, values, _, _ in _rows(COOKIE_CASES)
    }
    cases |= {f"mc/{n}": _headers(hsts) for n, *_ in _rows(MIXED_CASES + FORM_CASES)}
    cases |= {
        "secret": _headers(hsts, ("Set-Cookie", "sid=VALUESECRET91c" + GOOD)),
        # RFC 6797 8.1 + Precisions: the first HTTPS response (a same-host redirect) has HSTS: pass
        "redirect/hsts-on-redirect": f"location = / {{ {_headers(hsts)} return 301 /final.html; }}",
        # Precisions: only a later same-host response has it: warn, naming that response
        "redirect/hsts-on-final": f"location = / {{ return 301 /final.html; }} "
        f"location = /final.html {{ {_headers(hsts)} }}",
        # Precisions: mixed content is judged on the final page a same-host redirect leads to
        "redirect/mixed-on-final": f"{_headers(hsts)} location = / {{ {_headers(hsts)} return 301 /final.html; }}",
        # Precisions: each same-host redirect on HTTPS counts for cookies (the final page sets none)
        "redirect/cookie-on-redirect": f"{_headers(hsts)} location = / {{ {_headers(hsts, ('Set-Cookie', 'track=1'))}"
        f" return 302 /final.html; }}",
    }
    # Each server starts before the next one is made: a port free_port() hands out is only reserved
    # once bound, so two servers made before either starts can get the same one.
    with ExitStack() as stack:
        site = MultiSiteNginx(
            root / "nginx", issued=leaf, hsts=HSTS_2Y, tls13_ciphersuites=TLS13, cases=cases
        )
        for name, head, body, _, _ in _rows(MIXED_CASES + FORM_CASES):
            site.case_root(f"mc/{name}").mkdir(parents=True, exist_ok=True)
            (site.case_root(f"mc/{name}") / "index.html").write_text(_page(head, body))
        for name in (
            "redirect/hsts-on-redirect",
            "redirect/hsts-on-final",
            "redirect/cookie-on-redirect",
            "redirect/mixed-on-final",
        ):
            site.case_root(name).mkdir(parents=True, exist_ok=True)
            body = '<img src="http://cdn.test/a.png">' if name == "redirect/mixed-on-final" else ""
            (site.case_root(name) / "final.html").write_text(_page("", body))
        stack.enter_context(site)
        # Precisions: the plain-HTTP answer on port 80 counts: a cookie there travels in clear (fail), and
        # HSTS sent over HTTP only is ignored (RFC 6797 8.1: UAs ignore STS over non-secure transport).
        plain_cookie = stack.enter_context(
            NginxSite(
                root / "nginx-plain-cookie",
                issued=leaf,
                hsts=HSTS_2Y,
                tls13_ciphersuites=TLS13,
                extra_http=f"add_header Set-Cookie {ngx('plain=1' + GOOD)} always;",
            )
        )
        plain_hsts = stack.enter_context(
            NginxSite(
                root / "nginx-plain-hsts",
                issued=leaf,
                hsts=None,
                tls13_ciphersuites=TLS13,
                extra_http=f"add_header Strict-Transport-Security {ngx(HSTS_2Y)} always;",
            )
        )
        targets = {name: site.case_target(name, pki.root_path) for name in cases}
        targets["plain-cookie"] = Target(plain_cookie.url, pki.root_path, plain_cookie.http_port or 9)
        targets["plain-hsts"] = Target(plain_hsts.url, pki.root_path, plain_hsts.http_port or 9)
        yield audit(targets, root / "audit")


@pytest.mark.parametrize(("name", "values", "expected", "why"), HSTS_CASES, ids=[c[0] for c in HSTS_CASES])
def test_hsts_header_grammar(
    http_results: dict,
    name: str,
    values: list[str],
    expected: str,  # type: ignore[type-arg]
    why: str,
) -> None:
    result = audited(http_results, f"hsts/{name}")
    assert status(result, "11.5-hsts") == expected, f"{why}\n{findings(result, '11.5-hsts')}"


@pytest.mark.parametrize("name", list(HSTS_GRADES))
def test_hsts_header_grade(http_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md "A+, A, A-": A+ = A, no warnings, HSTS max-age >= 15552000; HSTS missing, invalid
    # or shorter than 180 days is a warning (A-).
    grade = audited(http_results, f"hsts/{name}")["grade"]
    assert grade["letter"] == HSTS_GRADES[name], grade
    if HSTS_GRADES[name] == "A-":
        assert any("hsts" in w.lower() for w in grade["warnings"]), grade


@pytest.mark.parametrize(("name", "values", "expected", "why"), COOKIE_CASES, ids=_case_ids(COOKIE_CASES))
def test_cookie_attributes(
    http_results: dict,
    name: str,
    values: list[str],
    expected: str,  # type: ignore[type-arg]
    why: str,
) -> None:
    result = audited(http_results, f"cookie/{name}")
    assert status(result, "11.5-cookies") == expected, f"{why}\n{findings(result, '11.5-cookies')}"


def test_cookie_values_never_reach_the_report(http_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: a cookie without "=" has an empty name and its text is its value: never
    # stored, printed or mailed; a named cookie's value is a secret too (the model redacts values).
    printed = (
        http_results["__stdout__"] + http_results["__files__"]
    )  # JSON, verdict lines, HTML, CSV, SARIF, JUnit
    assert "cookie/nameless" in http_results["__files__"]  # the other reports were read
    for secret in SECRET_VALUES:
        assert secret not in printed
    assert status(audited(http_results, "secret"), "11.5-cookies") == "pass"
    # ...while the nameless cookie is still seen and judged (it is a cookie a browser stores)
    nameless = audited(http_results, "cookie/nameless")
    assert any(c["name"] == "" for r in nameless["evidence"]["http"]["https"] for c in r["cookies"])


@pytest.mark.parametrize(("name", "expected"), [("hsts-on-redirect", "pass"), ("hsts-on-final", "warn")])
def test_hsts_on_same_host_redirects(http_results: dict, name: str, expected: str) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: "HSTS passes when the first HTTPS response carries a valid header; when only
    # a later same-host response does, warn and say which."
    result = audited(http_results, f"redirect/{name}")
    text = findings(result, "11.5-hsts")
    assert status(result, "11.5-hsts") == expected, text
    if expected == "warn":
        assert "/final.html" in text


def test_mixed_content_on_the_page_a_redirect_leads_to(http_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: "Cookies, HSTS and mixed content are judged on every response a browser would
    # see for the audited page: ... each same-host redirect on HTTPS, and the final page."
    result = audited(http_results, "redirect/mixed-on-final")
    assert status(result, "11.1-tls-enforced") == "fail", findings(result, "11.1-tls-enforced")


def test_cookie_on_a_same_host_https_redirect_is_judged(http_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: cookies are judged on each same-host redirect on HTTPS, not only the final page
    result = audited(http_results, "redirect/cookie-on-redirect")
    assert status(result, "11.5-cookies") == "fail", findings(result, "11.5-cookies")


def test_cookie_on_the_plain_http_redirect_fails_even_with_secure(http_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: "a cookie set there travels in clear and cannot be Secure: 11.5-cookies fails;
    # it is also a first-response cookie for 12.3"
    result = audited(http_results, "plain-cookie")
    assert status(result, "11.5-cookies") == "fail", findings(result, "11.5-cookies")
    assert "plain" in findings(result, "12.3-cookie-consent")
    assert status(result, "11.5-hsts") == "pass"  # the HTTPS side is fine


def test_hsts_sent_over_plain_http_only_is_missing(http_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md 11.5-hsts "how it can fail": sent over HTTP only; RFC 6797 8.1: UAs ignore STS over HTTP
    result = audited(http_results, "plain-hsts")
    assert status(result, "11.5-hsts") == "fail", findings(result, "11.5-hsts")
    assert result["grade"]["letter"] == "A-"


@pytest.mark.parametrize(("name", "head", "body", "expected", "why"), MIXED_CASES, ids=_case_ids(MIXED_CASES))
def test_mixed_content(
    http_results: dict,
    name: str,
    head: str,
    body: str,
    expected: str,  # type: ignore[type-arg]
    why: str,
) -> None:
    result = audited(http_results, f"mc/{name}")
    assert status(result, "11.1-tls-enforced") == expected, f"{why}\n{findings(result, '11.1-tls-enforced')}"


@pytest.mark.parametrize(
    ("name", "head", "body", "expected", "why"), FORM_CASES, ids=[c[0] for c in FORM_CASES]
)
def test_form_targets(
    http_results: dict,
    name: str,
    head: str,
    body: str,
    expected: str,  # type: ignore[type-arg]
    why: str,
) -> None:
    result = audited(http_results, f"mc/{name}")
    assert status(result, "5.4-transit") == expected, f"{why}\n{findings(result, '5.4-transit')}"


# ---------------------------------------------------------------- TLS on nginx (Debian's OpenSSL 3)

CHACHA_FIRST_ALLOWED = "ssl_conf_command Options PrioritizeChaCha;"
AES256_ORDER = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)


@pytest.fixture(scope="module")
def tls_results(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("tls")
    sha1_pki = TestPKI(root / "sha1-pki", intermediate_hash="sha1")
    leaf = pki.issue("indep-tls")
    modern = {"hsts": HSTS_2Y, "tls13_ciphersuites": TLS13}
    # name -> (NginxSite options, CA bundle)
    variants: dict[str, tuple[dict, Path | None]] = {  # type: ignore[type-arg]
        # clauses.md Precisions (11.3-aes256gcm-first): own order + PrioritizeChaCha still enforces its order
        "chacha-prioritized": (
            {"issued": leaf, "ciphers": AES256_ORDER, "extra_server": CHACHA_FIRST_ALLOWED, **modern},
            pki.root_path,
        ),
        "chacha-prioritized-no-chacha": (
            {
                "issued": leaf,
                "ciphers": "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
                "hsts": HSTS_2Y,
                "tls13_ciphersuites": "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
                "extra_server": CHACHA_FIRST_ALLOWED,
            },
            pki.root_path,
        ),
        # ...but AES-128 first is still "AES-128 preferred" (clauses.md 11.3-aes256gcm-first, how it can fail)
        "chacha-prioritized-aes128-first": (
            {
                "issued": leaf,
                "ciphers": "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384",
                "hsts": HSTS_2Y,
                "tls13_ciphersuites": "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
                "extra_server": CHACHA_FIRST_ALLOWED,
            },
            pki.root_path,
        ),
        # clauses.md 11.3-aes256gcm-first, how it can fail: "client order honoured"
        "client-order": (
            {"issued": leaf, "ciphers": AES256_ORDER, "prefer_server_ciphers": False, **modern},
            pki.root_path,
        ),
        # clauses.md 11.3-aes256gcm-first: 256-bit AEAD first "in each protocol" (TLS 1.3: TLS_AES_256_GCM_SHA384)
        "tls13-aes128-first": (
            {
                "issued": leaf,
                "ciphers": AES256_ORDER,
                "hsts": HSTS_2Y,
                "tls13_ciphersuites": "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
            },
            pki.root_path,
        ),
        "tls13-only": ({"issued": leaf, "protocols": "TLSv1.3", **modern}, pki.root_path),
        # ssllabs-rating.md key exchange: the weakest of the certificate key and the ephemeral keys, EC keys by
        # their RSA equivalent (P-256 about 3072: 90; P-384 about 7680: 100); RSA 4096: 100.
        "rsa4096-p384-only": (
            {"issued": pki.issue("indep-rsa4096", key="rsa4096"), "ecdh_curve": "secp384r1", **modern},
            pki.root_path,
        ),
        "rsa4096-x25519": (
            {"issued": pki.issue("indep-rsa4096b", key="rsa4096"), "ecdh_curve": "X25519", **modern},
            pki.root_path,
        ),
        "sha1-intermediate": (
            {"issued": sha1_pki.issue("indep-sha1-int"), "seclevel0": True, **modern},
            sha1_pki.root_path,
        ),
        "no-bundle": ({"issued": leaf, **modern}, None),
        "mismatch": ({"issued": pki.issue("indep-other", hosts=("other.test",)), **modern}, pki.root_path),
        "expired": ({"issued": pki.issue("indep-expired", expired=True), **modern}, pki.root_path),
        "not-yet-valid": (
            {
                "issued": pki.issue(
                    "indep-future", not_before=datetime.now(UTC) + timedelta(days=2), days_valid=90
                ),
                **modern,
            },
            pki.root_path,
        ),
        "incomplete-chain": ({"issued": leaf, "serve_chain": False, **modern}, pki.root_path),
        # clauses.md Precisions (11.2-cert-trusted): "Every certificate the server serves (RSA and ECDSA on one
        # name) is judged, not only the first." nginx gives the ECDSA one to modern clients.
        "dual-rsa-sha1": (
            {
                "issued": pki.issue("indep-dual-sha1", hash="sha1"),
                "seclevel0": True,
                "dual_issued": pki.issue("indep-dual-ec1", key="p256"),
                **modern,
            },
            pki.root_path,
        ),
        "dual-rsa-1024": (
            {
                "issued": pki.issue("indep-dual-1024", key="rsa1024"),
                "seclevel0": True,
                "dual_issued": pki.issue("indep-dual-ec2", key="p256"),
                **modern,
            },
            pki.root_path,
        ),
        "dual-rsa-self-signed": (
            {
                "issued": pki.issue("indep-dual-self", issuer="self"),
                "dual_issued": pki.issue("indep-dual-ec3", key="p256"),
                **modern,
            },
            pki.root_path,
        ),
        "dual-ecdsa-expired": (
            {
                "issued": pki.issue("indep-dual-rsa4"),
                "dual_issued": pki.issue("indep-dual-ec4", key="p256", expired=True),
                **modern,
            },
            pki.root_path,
        ),
    }
    with ExitStack() as stack:
        targets = {}
        for name, (options, bundle) in variants.items():  # each started before the next is made (see above)
            site = stack.enter_context(NginxSite(root / name, **options))
            targets[name] = Target(site.url, bundle, site.http_port or 9)
        yield audit(targets, root / "audit")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chacha-prioritized", "pass"),
        ("chacha-prioritized-no-chacha", "pass"),
        ("chacha-prioritized-aes128-first", "fail"),
        ("client-order", "fail"),
        ("tls13-aes128-first", "fail"),
    ],
)
def test_aes256gcm_first_with_chacha_prioritization(tls_results: dict, name: str, expected: str) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: "a server that enforces its own order but lets clients that prefer ChaCha20-
    # Poly1305 have it (OpenSSL's PrioritizeChaCha) still enforces its order: pass, and say so in the finding.
    # The order probe must not mistake this for client order." AES-128 first or client order: fail.
    result = audited(tls_results, name)
    text = findings(result, "11.3-aes256gcm-first")
    assert status(result, "11.3-aes256gcm-first") == expected, text
    if name == "chacha-prioritized":
        assert "chacha" in text.lower(), text
        assert result["grade"]["letter"] == "A+", caps(result)


def test_tls13_only_server(tls_results: dict) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md Precisions: "'TLS 1.2 not offered' caps at C only when neither TLS 1.2 nor TLS 1.3
    # is offered: SSL Labs gives TLS 1.3-only servers an A"; clauses.md Precisions: 11.3-protocols warns.
    # 11.4-vulnerabilities Precisions: no TLS_FALLBACK_SCSV concern with 1.2/1.3 only (here 1.3 alone).
    result = audited(tls_results, "tls13-only")
    assert result["grade"]["letter"] == "A+", (caps(result), result["grade"]["warnings"])
    assert status(result, "11.3-protocols") == "warn", findings(result, "11.3-protocols")
    assert status(result, "5.4-transit") in NOT_FAIL, findings(result, "5.4-transit")  # nothing below TLS 1.2
    assert status(result, "11.4-vulnerabilities") in NOT_FAIL, findings(result, "11.4-vulnerabilities")
    assert status(result, "11.1-pfs") == "pass"


def test_sha1_intermediate_under_a_private_ca_is_t(tls_results: dict) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md Precisions: "SHA-1 anywhere in the served chain below the root gives T (the 2017
    # change), also when the chain validates against a private CA"; clauses.md 11.2-cert-signature: SHA-1 fails.
    result = audited(tls_results, "sha1-intermediate")
    assert result["grade"]["letter"] == "T", caps(result)
    assert result["grade"]["letter_ignoring_trust"] in ("A", "A+"), result["grade"]
    assert status(result, "11.2-cert-signature") == "fail", findings(result, "11.2-cert-signature")


def test_private_ca_without_bundle_is_unknown_ca(tls_results: dict) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md caps: T = "certificate not trusted: unknown/self-signed issuer"; "the grade 'if trust
    # issues are ignored' when the letter is T or M". clauses.md 11.2-cert-trusted: untrusted fails.
    result = audited(tls_results, "no-bundle")
    assert result["grade"]["letter"] == "T", caps(result)
    assert result["grade"]["letter_ignoring_trust"] == "A+", result["grade"]
    assert status(result, "11.2-cert-trusted") == "fail"


def test_host_name_mismatch_is_m(tls_results: dict) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md caps: M = "certificate does not match the host name"; clauses.md 11.2-cert-trusted: mismatch
    result = audited(tls_results, "mismatch")
    assert result["grade"]["letter"] == "M", caps(result)
    assert result["grade"]["letter_ignoring_trust"] == "A+", result["grade"]
    assert status(result, "11.2-cert-trusted") == "fail"


@pytest.mark.parametrize("name", ["expired", "not-yet-valid"])
def test_expired_or_not_yet_valid_certificate_is_t(tls_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md caps: T = "expired or not yet valid"; clauses.md 11.2-cert-trusted: expired fails
    result = audited(tls_results, name)
    assert result["grade"]["letter"] == "T", caps(result)
    assert status(result, "11.2-cert-trusted") == "fail", findings(result, "11.2-cert-trusted")
    if name == "expired":  # clauses.md 11.2-cert-renewal: "expired (fail)"
        assert status(result, "11.2-cert-renewal") == "fail"


def test_incomplete_chain(tls_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md 11.2-cert-trusted: "full chain served", fails on "incomplete chain"; ssllabs-rating.md caps:
    # B = "incomplete chain" (a T from the failed path would also be a trust issue: either is not A)
    result = audited(tls_results, "incomplete-chain")
    assert status(result, "11.2-cert-trusted") == "fail", findings(result, "11.2-cert-trusted")
    assert has_cap(result, "B", "chain") or result["grade"]["letter"] == "T", caps(result)  # either way not A


def test_dual_certificates_sha1_rsa_leaf(tls_results: dict) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions: every certificate the server serves is judged; 11.2-cert-signature: leaf signed
    # with SHA-256 or stronger (SHA-1 fails); ssllabs-rating.md Precisions: SHA-1 in the served chain -> T.
    result = audited(tls_results, "dual-rsa-sha1")
    assert status(result, "11.2-cert-signature") == "fail", findings(result, "11.2-cert-signature")
    assert result["grade"]["letter"] == "T", caps(result)


def test_dual_certificates_weak_rsa_key(tls_results: dict) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md: key exchange = "the weakest of the certificate key and the ephemeral keys";
    # caps: B = "key ... < 2048 bits". The RSA-1024 certificate is served to RSA-only clients.
    result = audited(tls_results, "dual-rsa-1024")
    assert has_cap(result, "B", "2048"), caps(result)
    assert result["grade"]["letter"] == "B", caps(result)
    assert result["grade"]["categories"]["key_exchange"] == 80, result["grade"]  # 1024 <= bits < 2048: 80


@pytest.mark.parametrize("name", ["dual-rsa-self-signed", "dual-ecdsa-expired"])
def test_dual_certificates_one_untrusted(tls_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions (11.2-cert-trusted): "Every certificate the server serves (RSA and ECDSA on one
    # name) is judged, not only the first."
    result = audited(tls_results, name)
    assert status(result, "11.2-cert-trusted") == "fail", findings(result, "11.2-cert-trusted")


# ---------------------------------------------------------------- tlslite-ng: weak DH, 3DES, SSL 3.0

HSTS_HEADER = [("Strict-Transport-Security", HSTS_2Y)]
TLSLITE = {
    # ssllabs-rating.md caps: F = "ephemeral DH < 1024"; Precisions: "the ephemeral DH size must be known for
    # every DHE suite the server accepts, also when the scanning client refuses the group as too small";
    # clauses.md 11.4: weak DH (Logjam). Beside ECDHE (what browsers get) it still counts.
    "dhe512-beside-ecdhe": {"key_exchange": ["ecdhe_rsa", "dhe_rsa"], "dh_bits": 512},
    "dhe768-only": {"key_exchange": ["dhe_rsa"], "dh_bits": 768},
    # ssllabs-rating.md caps: B = "key or DH params < 2048 bits"; not F (1024 is not below 1024)
    "dhe1024-beside-ecdhe": {"key_exchange": ["ecdhe_rsa", "dhe_rsa"], "dh_bits": 1024},
    # ssllabs-rating.md caps: C = "3DES/64-bit block suites negotiated with TLS 1.1+ (SWEET32)"; Safari (a
    # reference browser) offers TLS_RSA_WITH_3DES_EDE_CBC_SHA, the only suite here.
    "3des-only-tls12": {"ciphers": ["3des"], "key_exchange": ["rsa"]},
    # ...with TLS 1.0 only the SWEET32 cap does not apply (negotiated with TLS 1.0), "no TLS 1.2" does
    "3des-only-tls10": {
        "ciphers": ["3des"],
        "key_exchange": ["rsa"],
        "min_version": "TLSv1",
        "max_version": "TLSv1",
    },
    # Precisions: 3DES counts as 112 bits: cipher category = (100 [AES-256] + 20 [< 128]) / 2 = 60
    "aes256-then-3des": {"ciphers": ["aes256gcm", "3des"], "key_exchange": ["ecdhe_rsa"]},
    # ssllabs-rating.md Precisions: "a non-reference client (an old Java) landing on 3DES does not cap": the
    # browsers get ChaCha20 with TLS 1.3, Java 8 (no TLS 1.3, no ChaCha20) lands on TLS_RSA_WITH_3DES_EDE_CBC_SHA
    "3des-java8-only": {
        "ciphers": ["chacha20-poly1305", "3des"],
        "key_exchange": ["ecdhe_rsa", "rsa"],
        "max_version": "TLSv1.3",
    },
    # ssllabs-rating.md caps: B = "RC4 offered" (accepted, used or not)
    "rc4-beside-aes": {
        "ciphers": ["aes256gcm", "rc4"],
        "key_exchange": ["ecdhe_rsa"],
        "macs": ["sha", "aead"],
    },
    # ssllabs-rating.md caps: C = "SSL 3.0 offered (POODLE)"; clauses.md 11.4: POODLE (SSL 3.0)
    "ssl3-cbc": {"ciphers": ["aes256gcm", "aes128"], "key_exchange": ["ecdhe_rsa"], "min_version": "SSLv3"},
}


@pytest.fixture(scope="module")
def rsa_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    """RSA CAs: what OpenSSL 1.0.1e and tlslite-ng load without surprises."""
    return TestPKI(tmp_path_factory.mktemp("rsa-pki"), ca_keys="rsa")


@pytest.fixture(scope="module")
def tlslite_results(rsa_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("tlslite")
    leaf = rsa_pki.issue("indep-tlslite")
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(TlsliteServer(leaf, response_headers=HSTS_HEADER, **options))
            for name, options in TLSLITE.items()
        }
        yield audit({name: Target(s.url, rsa_pki.root_path) for name, s in servers.items()}, root / "audit")


# ssllabs-rating.md Precisions: the DH size must be known also when the scanning client refuses the group
# (a DHE-768-only server used to be "not audited": sslyze's connectivity check gave up on it)
@pytest.mark.parametrize("name", ["dhe512-beside-ecdhe", "dhe768-only"])
def test_weak_dh_is_f_and_logjam(tlslite_results: dict, name: str) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, name)
    assert result["grade"]["letter"] == "F", caps(result)
    assert has_cap(result, "F", "1024"), caps(result)
    text = findings(result, "11.4-vulnerabilities")
    assert status(result, "11.4-vulnerabilities") == "fail" and "logjam" in text.lower(), text


def test_dh1024_is_b_not_f(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "dhe1024-beside-ecdhe")
    assert not has_cap(result, "F", "1024"), caps(result)
    assert has_cap(result, "B", "2048"), caps(result)
    assert result["grade"]["letter"] == "B", caps(result)
    assert result["grade"]["categories"]["key_exchange"] == 80, result["grade"]  # DH 1024: "< 2048 = 80"


def test_3des_negotiated_by_a_reference_browser_with_tls12_caps_at_c(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "3des-only-tls12")
    assert has_cap(result, "C", "SWEET32"), caps(result)
    assert result["grade"]["letter"] == "C", caps(result)
    assert result["grade"]["categories"]["cipher"] == 20, result["grade"]  # 112 bits: "< 128 = 20"
    assert status(result, "11.4-vulnerabilities") == "fail"


def test_3des_on_tls10_only_is_not_sweet32_capped(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "3des-only-tls10")
    assert not has_cap(result, "C", "SWEET32"), caps(result)
    assert has_cap(result, "C", "TLS 1.2"), caps(result)
    assert result["grade"]["letter"] == "C", caps(result)
    assert status(result, "11.3-protocols") == "fail"
    assert status(result, "11.4-vulnerabilities") == "fail"  # SWEET32 (64-bit block) and BEAST (TLS 1.0 CBC)


def test_3des_counts_112_bits(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "aes256-then-3des")
    assert result["grade"]["categories"]["cipher"] == 60, result["grade"]
    assert not has_cap(result, "C", "SWEET32"), caps(result)  # browsers get AES-256-GCM
    # clauses.md 11.4: "SWEET32 (64-bit block ciphers) ... any of them present": 3DES is accepted
    assert status(result, "11.4-vulnerabilities") == "fail", findings(result, "11.4-vulnerabilities")


def test_ssl3_with_cbc_is_poodle_c(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "ssl3-cbc")
    assert has_cap(result, "C", "SSL 3.0"), caps(result)
    assert result["grade"]["letter"] == "C", caps(result)
    assert status(result, "11.3-protocols") == "fail"
    text = findings(result, "11.4-vulnerabilities")
    assert status(result, "11.4-vulnerabilities") == "fail" and "poodle" in text.lower(), text


# ---------------------------------------------------------------- OpenSSL 1.0.1e: DH sizes, SSL 2.0

TLS12_ONLY = [
    "-serverpref",
    "-no_ssl3",
    "-no_tls1",
    "-no_tls1_1",
]  # SSL 2.0 only when SSLv2 suites are listed
LEGACY = {
    # DHE beside ECDHE (so every client connects), server order; -dhparam sets the DHE group.
    # ssllabs-rating.md key exchange: "< 1024 = 40, < 2048 = 80, < 4096 = 90"; caps F (< 1024), B (< 2048).
    "dh768": ([*TLS12_ONLY, "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384"], 768),
    "dh1024": ([*TLS12_ONLY, "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384"], 1024),
    "dh2048-untrusted": (
        [*TLS12_ONLY, "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384"],
        2048,
    ),
    # SSL 2.0 offering only export suites, beside a modern TLS 1.2
    "ssl2-export": (
        [*TLS12_ONLY, "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:EXP-RC4-MD5:EXP-RC2-CBC-MD5"],
        2048,
    ),
    # SSL 2.0 offering only 64-bit block suites (3DES, RC2): SSLv2-only names, beside a modern TLS 1.2
    "ssl2-64bit-block": (
        [*TLS12_ONLY, "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:DES-CBC3-MD5:RC2-CBC-MD5"],
        2048,
    ),
}


@pytest.fixture(scope="module")
def legacy_results(rsa_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    if not legacy_openssl_available():
        pytest.skip(LEGACY_ABSENT)
    root = tmp_path_factory.mktemp("legacy")
    leaf = rsa_pki.issue("indep-legacy")
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(LegacyOpenSSLServer(leaf, args, dhparam_bits=bits))
            for name, (args, bits) in LEGACY.items()
        }
        targets = {
            name: Target(s.url, None if name.endswith("-untrusted") else rsa_pki.root_path)
            for name, s in servers.items()
        }
        # one target is audited through a relay that counts the connections held open at once
        relay = stack.enter_context(ConnectionRelay(servers["dh2048-untrusted"].port))
        targets["dh2048-untrusted"] = Target(f"https://good.test:{relay.port}/", None)
        # the build serves one connection at a time
        results = audit(targets, root / "audit", scan="connections_per_server = 1")
        results["__peak_connections__"] = relay.peak  # type: ignore[assignment]
        yield results


@pytest.mark.parametrize(
    ("name", "key_exchange", "f_cap", "b_cap"),
    [("dh768", 40, True, True), ("dh1024", 80, False, True), ("dh2048-untrusted", 90, False, False)],
)
def test_legacy_dh_sizes(
    legacy_results: dict, name: str, key_exchange: int, f_cap: bool, b_cap: bool
) -> None:  # type: ignore[type-arg]
    # Every OpenSSL 1.0.1e server is F anyway (Heartbleed, CCS injection: README of ../shared/legacy-openssl),
    # so the DH rows are read from the caps and the key-exchange category (RSA-2048 certificate: 90).
    result = audited(legacy_results, name)
    grade = result["grade"]
    assert grade["categories"]["key_exchange"] == key_exchange, grade
    assert has_cap(result, "F", "1024") == f_cap, caps(result)
    assert has_cap(result, "B", "2048") == b_cap, caps(result)
    if name == "dh768":  # clauses.md 11.4: weak DH (Logjam)
        assert "logjam" in findings(result, "11.4-vulnerabilities").lower()


def test_legacy_untrusted_is_t_whatever_the_score(legacy_results: dict) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md caps: "T and M are reported as such whatever the score"; the grade ignoring trust is F
    # (Heartbleed).
    grade = audited(legacy_results, "dh2048-untrusted")["grade"]
    assert grade["letter"] == "T", grade
    assert grade["letter_ignoring_trust"] == "F", grade


def test_connections_per_server_one_is_honoured(legacy_results: dict) -> None:  # type: ignore[type-arg]
    # config.py / --help: "TLS connections open at once to one server"; with 1, the HTTP probe waits for
    # the TLS scan (OpenSSL 1.0.1e serves one connection at a time: the legacy README)
    audited(legacy_results, "dh2048-untrusted")
    assert legacy_results["__peak_connections__"] == 1


def _ssl2(result: dict) -> dict:  # type: ignore[type-arg]
    return next(p for p in result["evidence"]["tls"]["protocols"] if p["version"] == "SSL 2.0")


@pytest.mark.parametrize("name", ["ssl2-export", "ssl2-64bit-block"])
def test_ssl2_is_seen(legacy_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md caps: F = "SSL 2.0 offered"; clauses.md 11.3-protocols: SSL 2.0 rejected
    result = audited(legacy_results, name)
    assert _ssl2(result)["supported"] is True, result["evidence"]["tls"]["attempts"]
    assert has_cap(result, "F", "SSL 2.0"), caps(result)
    assert "SSL 2.0" in findings(result, "11.3-protocols"), findings(result, "11.3-protocols")


@pytest.mark.parametrize("name", ["ssl2-export", "ssl2-64bit-block"])
def test_ssl2_suites_are_classified(legacy_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # ssllabs-rating.md Precisions: "SSL 2.0 suites (SSL_CK_*) always use RSA key exchange; classify their
    # ciphers (RC4, RC2, DES, 3DES, IDEA) like the TLS ones, so 64-bit block and RC4 rows see them";
    # clauses.md 11.3-no-rsa-kex fails on any static-RSA suite, 11.1-pfs on any non-(EC)DHE suite.
    result = audited(legacy_results, name)
    ssl2 = _ssl2(result)
    assert ssl2["supported"], result["evidence"]["tls"]["attempts"]
    suites = ssl2["suites"]
    assert suites and all(s["key_exchange"] == "RSA" and not s["forward_secret"] for s in suites), suites
    assert has_cap(result, "F", "SSL 2.0"), caps(result)
    vulns = findings(result, "11.4-vulnerabilities").lower()
    if name == "ssl2-export":  # SSL_CK_RC4_128_EXPORT40_WITH_MD5, SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5
        assert all(s["export"] for s in suites), suites
        assert any(s["encryption"].startswith("RC4") for s in suites), suites
        assert "rc4" in vulns and ("export" in vulns or "freak" in vulns), vulns
    else:  # the TLS side is ECDHE-only here: these rows can come only from the SSL 2.0 suites
        assert all(s["block_bits"] == 64 for s in suites), suites  # 3DES and RC2: 64-bit blocks
        assert "sweet32" in vulns, vulns
        assert status(result, "11.3-no-rsa-kex") == "fail", findings(result, "11.3-no-rsa-kex")
        assert status(result, "11.1-pfs") == "fail", findings(result, "11.1-pfs")


# ---------------------------------------------------------------- revocation (a real OCSP responder, stapling)


@pytest.fixture(scope="module")
def ocsp_results(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("ocsp")
    modern = {"hsts": HSTS_2Y, "tls13_ciphersuites": TLS13}
    with ExitStack() as stack:
        responder = stack.enter_context(OCSPResponder(pki))
        revoked = pki.issue("indep-ocsp-revoked", ocsp_url=responder.url)
        unknown = pki.issue("indep-ocsp-unknown", ocsp_url=responder.url)
        responder.statuses[revoked.cert.serial_number] = "revoked"
        responder.statuses[unknown.cert.serial_number] = "unknown"
        unreachable = pki.issue("indep-ocsp-unreachable", ocsp_url=f"http://127.0.0.1:{free_port()}/ocsp")
        stapled = pki.issue("indep-ocsp-stapled")  # no responder named: only the staple can tell
        staple = root / "stapled-revoked.der"
        staple.write_bytes(ocsp_response(pki, stapled.cert, "revoked"))
        # RFC 6960 4.2.2.2: a delegated responder must carry id-kp-OCSPSigning; 3.2: the response must be
        # about this certificate and correctly signed. Such a "revoked" staple proves nothing: ignored.
        bad_delegate = pki.issue("indep-ocsp-bad-delegate")
        other = pki.issue("indep-ocsp-other")  # the staple is about this one; the server serves another
        forged = pki.issue("indep-ocsp-forged", ocsp_url=responder.url)
        responder.statuses[forged.cert.serial_number] = "revoked"
        staples = {
            "bad-delegate": ocsp_response(
                pki, bad_delegate.cert, "revoked", responder=delegated_responder(pki, ocsp_signing=False)
            ),
            "other-cert": ocsp_response(pki, other.cert, "revoked"),
            "forged-good": ocsp_response(pki, forged.cert, "good", tamper=True),
        }
        for name, der in staples.items():
            (root / f"{name}.der").write_bytes(der)

        def stapling(name: str) -> str:
            return f"ssl_stapling on; ssl_stapling_file {root / f'{name}.der'};"

        variants = {  # name -> (leaf, nginx extra directives)
            "stapled-revoked-bad-delegate": (bad_delegate, stapling("bad-delegate")),
            "stapled-revoked-other-cert": (pki.issue("indep-ocsp-served"), stapling("other-cert")),
            # a forged "good" staple must not hide what the named responder says (revoked)
            "stapled-forged-good-responder-revoked": (forged, stapling("forged-good")),
            "responder-revoked": (revoked, ""),
            "responder-unknown": (unknown, ""),
            "responder-unreachable": (unreachable, ""),
            "stapled-revoked": (stapled, f"ssl_stapling on; ssl_stapling_file {staple};"),
        }
        # each started before the next is made (see http_results)
        sites = {
            name: stack.enter_context(NginxSite(root / name, issued=issued, extra_server=extra, **modern))
            for name, (issued, extra) in variants.items()
        }
        targets = {name: Target(site.url, pki.root_path, site.http_port or 9) for name, site in sites.items()}
        results = audit(targets, root / "audit")
        # the setting for air-gapped runs: no request may reach the responder
        before = responder.requests
        offline = audit(
            {"offline-revoked": targets["responder-revoked"]}, root / "audit-offline", scan="ocsp = false"
        )
        results["offline-revoked"] = offline["offline-revoked"]
        results["__offline_requests__"] = responder.requests - before  # type: ignore[assignment]
        yield results


@pytest.mark.parametrize(
    "name", ["responder-revoked", "stapled-revoked", "stapled-forged-good-responder-revoked"]
)
def test_revoked_certificate_fails_and_is_t(ocsp_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # clauses.md Precisions (11.2-cert-trusted): "a certificate reported revoked (a stapled OCSP response, or
    # the OCSP responder the certificate names, when it answers within the timeout) fails, and the grade is T"
    result = audited(ocsp_results, name)
    assert status(result, "11.2-cert-trusted") == "fail", findings(result, "11.2-cert-trusted")
    assert result["grade"]["letter"] == "T", caps(result)
    assert has_cap(result, "T", "revoked"), caps(result)


@pytest.mark.parametrize("name", ["responder-unknown", "responder-unreachable"])
def test_unknown_or_unreachable_revocation_is_reported_not_failed(ocsp_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # issue 11 item 12: '"unknown/unreachable" is reported, not failed' (Precisions: only "revoked" fails)
    result = audited(ocsp_results, name)
    text = findings(result, "11.2-cert-trusted")
    assert status(result, "11.2-cert-trusted") in NOT_FAIL, text
    assert "revocation" in text.lower() and ("unknown" in text or "unreachable" in text), text
    assert result["grade"]["letter"] == "A+", caps(result)


@pytest.mark.parametrize("name", ["stapled-revoked-bad-delegate", "stapled-revoked-other-cert"])
def test_an_invalid_revoked_staple_proves_nothing(ocsp_results: dict, name: str) -> None:  # type: ignore[type-arg]
    # RFC 6960 4.2.2.2 (a delegated signer needs id-kp-OCSPSigning) and 4.2.1/3.2 (the response must name
    # this certificate): a client ignores such a response, so the certificate is not "reported revoked".
    result = audited(ocsp_results, name)
    assert result["evidence"]["tls"]["certificates"][0]["ocsp_stapled"]  # the staple was seen
    assert status(result, "11.2-cert-trusted") in NOT_FAIL, findings(result, "11.2-cert-trusted")
    assert result["grade"]["letter"] == "A+", caps(result)


def test_ocsp_off_asks_no_responder(ocsp_results: dict) -> None:  # type: ignore[type-arg]
    # config [scan] ocsp = false (issue 11 item 12: "a setting to turn it off for air-gapped runs")
    assert ocsp_results["__offline_requests__"] == 0
    result = audited(ocsp_results, "offline-revoked")
    assert status(result, "11.2-cert-trusted") != "fail" or "revoked" not in findings(
        result, "11.2-cert-trusted"
    )


@pytest.mark.parametrize(("name", "expected"), [("rsa4096-p384-only", 100), ("rsa4096-x25519", 90)])
def test_key_exchange_score_counts_the_ephemeral_key(tls_results: dict, name: str, expected: int) -> None:  # type: ignore[type-arg]
    grade = audited(tls_results, name)["grade"]
    assert grade["categories"]["key_exchange"] == expected, grade


def test_3des_reached_only_by_a_non_reference_client_does_not_cap(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "3des-java8-only")
    java8 = [sim for sim in result["evidence"]["tls"]["simulations"] if sim["client"].startswith("Java 8")]
    assert java8 and "3DES" in (java8[0]["suite"] or {}).get("name", ""), java8  # the case is what it claims
    assert not has_cap(result, "C", "SWEET32"), caps(result)
    assert result["grade"]["letter"] in ("A", "A+"), caps(result)


def test_rc4_offered_caps_at_b(tlslite_results: dict) -> None:  # type: ignore[type-arg]
    result = audited(tlslite_results, "rc4-beside-aes")
    assert has_cap(result, "B", "RC4"), caps(result)
    assert result["grade"]["letter"] == "B", caps(result)
    assert "rc4" in findings(result, "11.4-vulnerabilities").lower()
