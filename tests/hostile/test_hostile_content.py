"""Hostile page content (issue 13 items 6 and 7): a gzip bomb, HTML that is quadratic to parse,
charsets no browser uses. Each page is served by a real TLS server on loopback and fetched by the
real probe; the bomb (under a memory limit) and the heaviest pages also through the real CLI, with
the child's peak memory measured. Time bounds are generous: they prove "not quadratic" (what is
bounded here took minutes to hours before), never speed.
"""

from __future__ import annotations

import os
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from contextlib import ExitStack
from pathlib import Path

import pytest

from auditor import audit
from auditor.config import Config, Scan, Target
from auditor.model import HttpEvidence, HttpResponse, Status
from auditor.scan import http as http_probe
from auditor.scan.http import probe_http
from tests.conftest import ROOT, CliRun, clause_statuses
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer
from tests.hostile import rawservers as raw

TIMEOUT = 5  # [scan] timeout: also each page's parse budget
HSTS = ("Strict-Transport-Security", "max-age=63072000")
EARLY_URL = "http://cdn.test/early.png"
EARLY = f'<img src="{EARLY_URL}">'  # an http:// load before the hostile part
NOT_QUADRATIC_S = 20  # what is bounded here took 150 s (120 KB of `<a `) to hours before
MiB = 1 << 20


@pytest.fixture(scope="module")
def tls(pki: TestPKI) -> ssl.SSLContext:
    issued = pki.issue("hostile-content", policy="ov")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.chain_path, issued.key_path)
    return context


def _page(
    body: bytes, content_type: str = "text/html", extra: list[tuple[str, str]] | None = None
) -> raw.Handler:
    return raw.http_page(body, [("Content-Type", content_type), HSTS, *(extra or [])])


def _probe(tls: ssl.SSLContext, handler: raw.Handler) -> tuple[HttpResponse, float]:
    """The real probe's evidence of the page at /, and how long it took."""
    with raw.RawServer(handler, tls=tls) as server:
        started = time.monotonic()
        evidence = probe_http("good.test", server.port, ip="127.0.0.1", http_port=9, timeout=TIMEOUT)
        return evidence.https[0], time.monotonic() - started


def _config(tmp_path: Path, pki: TestPKI, ports: list[int]) -> Path:
    targets = "".join(
        f'[[targets]]\nurl = "https://good.test:{port}/"\nip = "127.0.0.1"\n'
        f'ca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
        for port in ports
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"[scan]\ntimeout = {TIMEOUT}\ntarget_timeout = 120\nconcurrency = 4\nocsp = false\n"
        f"[output]\nwrite_json = false\n{targets}"
    )
    return path


# Sets RLIMIT_AS (if asked), then becomes the auditor: the limit applies to it alone (prlimit(1) is
# not on every machine, and preexec_fn is unsafe in a threaded process).
_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); n and resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def _run_measured(config: Path, memory_limit: int = 0, timeout: float = 240) -> tuple[CliRun, int]:
    """`auditor audit --config ... --json -`, under an address-space limit if one is given; the run
    and the peak resident memory of that process in bytes (wait4's rusage of this one child).
    With a limit, glibc keeps 2 malloc arenas: each thread's arena reserves 64 MiB of address space
    it never uses, which would make the limit measure the number of threads, not the memory."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **({"MALLOC_ARENA_MAX": "2"} if memory_limit else {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LIMITED,
                str(memory_limit),
                "-m",
                "auditor",
                "audit",
                "--config",
                str(config),
                "--json",
                "-",
                "--quiet",
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return CliRun(proc.returncode, out.read(), err.read()), usage.ru_maxrss * 1024


# ---------------------------------------------------------------- item 6: gzip bomb


def _gzip_bomb(prefix: bytes, spaces_mib: int) -> bytes:
    """`Content-Encoding: gzip, gzip` of `prefix` and `spaces_mib` MiB of spaces: 2.6 KB for 1 GiB.
    Built from one flushed deflate segment repeated (valid: a full flush resets the history), so
    the test does not spend seconds compressing a gibibyte."""
    block = b" " * MiB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)
    segment = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(spaces_mib):
        crc = zlib.crc32(block, crc)
    size = (len(prefix) + spaces_mib * MiB) & 0xFFFFFFFF
    inner = (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        + start
        + segment * spaces_mib
        + end
        + struct.pack("<II", crc, size)
    )
    outer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return outer.compress(inner) + outer.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    body = _gzip_bomb(b"<!doctype html><html><body>" + EARLY.encode(), 1024)
    assert len(body) < 4096
    return body


def test_a_gzip_bomb_is_decoded_under_the_cap_and_the_target_is_judged(
    pki: TestPKI, tls: ssl.SSLContext, bomb: bytes, tmp_path: Path
) -> None:
    """Before: 6.2 GB resident without a limit; under 1 GiB the whole target was lost to MemoryError."""
    handler = _page(bomb, extra=[("Content-Encoding", "gzip, gzip")])
    with raw.RawServer(handler, tls=tls) as server:
        run, peak = _run_measured(_config(tmp_path, pki, [server.port]), memory_limit=1 << 30)
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    target = run.report["targets"][0]
    assert target["error"] is None
    assert target["grade"] is not None and target["grade"]["letter"].startswith("A")
    statuses = clause_statuses(target)
    assert statuses["11.3-protocols"] == "pass" and statuses["11.5-hsts"] == "pass"
    page = target["evidence"]["http"]["https"][0]
    # decoded (as a browser would), up to scan.max_body_bytes of DECODED bytes, and said so
    assert page["insecure_references"] == [EARLY_URL]
    assert page["partial_analysis"] == "the decoded body reached the 1000000-byte cap (scan.max_body_bytes)"
    assert statuses["11.1-tls-enforced"] == "fail"
    assert peak < 300 * MiB, f"peak resident memory {peak / MiB:.0f} MiB"


@pytest.mark.parametrize(
    ("coding", "encode", "found", "note"),
    [
        pytest.param("deflate", zlib.compress, [EARLY_URL], None, id="deflate-zlib"),
        pytest.param(
            "deflate", lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS), [EARLY_URL], None, id="deflate-raw"
        ),
        pytest.param("x-gzip", lambda b: zlib.compress(b, wbits=31), [EARLY_URL], None, id="x-gzip"),
        pytest.param(
            "gzip", lambda b: zlib.compress(b, wbits=31)[:-10], [EARLY_URL], None, id="gzip-truncated"
        ),
        pytest.param(
            "gzip", lambda b: b"not gzip at all", [], "the gzip body could not be decoded", id="gzip-corrupt"
        ),
        pytest.param(
            "br",
            lambda b: b"\x0b\x02\x80" + b,
            [],
            "the body is br-encoded although identity was asked for",
            id="br",
        ),
        pytest.param(
            "gzip, gzip, gzip, gzip", lambda b: b, [], "4 content codings (more than 3)", id="four-layers"
        ),
    ],
)
def test_content_codings_the_probe_did_not_ask_for(
    tls: ssl.SSLContext, coding: str, encode: object, found: list[str], note: str | None
) -> None:
    """The probe asks for identity; what a server sends anyway is decoded as browsers do, or said
    to be unanalysed (then 11.1-tls-enforced warns that the page was judged in part only)."""
    page = b"<!doctype html><html><body>" + EARLY.encode() + b"<p>filler</p>" * 200
    response, _ = _probe(tls, _page(encode(page), extra=[("Content-Encoding", coding)]))  # type: ignore[operator]
    assert response.error is None and response.status == 200
    assert response.insecure_references == found
    if note is None:
        assert response.partial_analysis is None
    else:
        assert note in (response.partial_analysis or "")


def test_a_failed_http_probe_keeps_the_tls_evidence_and_the_tls_clauses(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mock, because no server can make the probe raise any more (the bomb is the last one that
    could): it stands for the next unforeseen failure, here the MemoryError the bomb used to cause."""

    def fail(*args: object, **kwargs: object) -> HttpEvidence:
        raise MemoryError

    issued = pki.issue("probe-fails", policy="ov")
    with PythonTLSServer(issued, response_headers=[HSTS]) as server:
        monkeypatch.setattr(http_probe, "probe_http", fail)  # audit imports it in the probe's thread
        target = Target(url=server.url, ip="127.0.0.1", ca_bundle=pki.root_path, http_port=9)
        result = audit.audit_target(target, Config(scan=Scan(timeout=TIMEOUT, ocsp=False)))
    assert result.error is None
    assert result.grade is not None and result.evidence is not None
    assert any(p.supported for p in result.evidence.tls.protocols)
    statuses = {f.clause: f.status for f in result.findings}
    assert statuses["11.3-protocols"] is Status.PASS and statuses["11.2-cert-trusted"] is Status.PASS
    hsts = next(f for f in result.findings if f.clause == "11.5-hsts")
    assert hsts.status is Status.ERROR and "the HTTP probe failed: MemoryError" in hsts.detail
    assert statuses["11.5-cookies"] is Status.ERROR
    # what depends on the pages is an error too, never a pass: their forms and redirects are unknown
    assert statuses["5.4-transit"] is Status.ERROR and statuses["11.1-tls-enforced"] is Status.ERROR
    cookies = next(f for f in result.findings if f.clause == "11.5-cookies")
    assert "MemoryError" in cookies.detail
    # HSTS was never seen: no "HSTS missing" warning, and no A+ either
    assert result.grade.letter == "A"
    assert not any("HSTS" in w for w in result.grade.warnings)
    assert any("HSTS could not be checked" in c.reason for c in result.grade.caps)


# ---------------------------------------------------------------- item 7: quadratic HTML, odd charsets

HOSTILE_HTML = {
    # html5lib compares each attribute with every earlier one of its tag
    "120 KB of '<a '": ("<a " * 40_960, "a tag with more than 256 attributes"),
    "1 MB of '<a '": ("<a " * 333_333, "a tag with more than 256 attributes"),
    # names, comments and values grow one `+=` per character
    "a 1 MB tag name": ("<a" + "1" * MiB, "longer than 50000 parser steps"),
    "a 1 MB attribute name": ("<p " + "1" * MiB, "longer than 50000 parser steps"),
    "a 1 MB comment of '-x'": ("<!--" + "-x" * (MiB // 2), "longer than 50000 parser steps"),
    "1 MB of NUL in an attribute": ("<p title='" + "\0" * MiB, "longer than 50000 parser steps"),
    # ~0.8 KB and ~15 µs per element in html5lib: 1 MB of `<a>` took 4 s and 250 MB
    "1 MB of '<a>'": ("<a>" * 333_333, "more than 50000 elements"),
    "1 MB of misnested table cells": ("<table>" + "x<td>" * 200_000, "more than 50000 elements"),
    "200 000 nested <div>": ("<div>" * 200_000, "elements nested deeper than 512"),
    # most tags walk the open elements (scope checks, end tags): depth x tags
    "500 nested <span>, then 1 MB of '</x>'": ("<span>" * 500 + "</x>" * 250_000, "tags x nesting depth"),
    # ~2 µs per token: a million text tokens
    "1 MB of NUL characters in text": ("<p>" + "\0" * MiB, "more than 250000 tags, comments and text runs"),
}


@pytest.mark.parametrize("name", HOSTILE_HTML)
def test_hostile_html_is_parsed_in_bounded_time_and_what_came_first_is_judged(
    tls: ssl.SSLContext, name: str
) -> None:
    html, why = HOSTILE_HTML[name]
    response, took = _probe(tls, _page((EARLY + html).encode()))
    assert took < NOT_QUADRATIC_S, f"{name}: {took:.1f} s"
    assert response.error is None, response.error
    assert response.insecure_references == [EARLY_URL], name  # sound: the part judged counts
    assert why in (response.partial_analysis or ""), (name, response.partial_analysis)
    assert "analysed up to that point only" in (response.partial_analysis or "")


def test_charset_punycode_is_ignored_as_browsers_do(tls: ssl.SSLContext) -> None:
    """Python decodes punycode in quadratic time (80 s for 1 MB); no browser knows the label, so the
    page is read as windows-1252, where its <img> loads over http://."""
    body = (EARLY + "-" + "a" * 999_000).encode()
    response, took = _probe(tls, _page(body, "text/html; charset=punycode"))
    assert took < NOT_QUADRATIC_S, f"{took:.1f} s"
    assert response.insecure_references == [EARLY_URL]


@pytest.mark.parametrize(
    ("charset", "body", "found"),
    [
        # UTF-7 is not a WHATWG label: browsers read these bytes as windows-1252 text, with no <img>
        pytest.param("utf-7", b'+ADw-img src="http://cdn.test/utf7.png"+AD4-', [], id="utf-7"),
        # the Encoding Standard maps ISO-2022-KR to "replacement": one U+FFFD, nothing loads
        pytest.param("iso-2022-kr", b'<img src="http://cdn.test/kr.png">', [], id="iso-2022-kr"),
        # real labels are honoured: UTF-16 without a BOM is little-endian; latin1 is windows-1252
        pytest.param(
            "utf-16",
            '<img src="http://cdn.test/u16.png">'.encode("utf-16-le"),
            ["http://cdn.test/u16.png"],
            id="utf-16",
        ),
        pytest.param(
            "latin1",
            '<img src="http://cdn.test/caf\xe9.png">'.encode("cp1252"),
            ["http://cdn.test/caf%C3%A9.png"],
            id="latin1",
        ),
        # a BOM wins over the Content-Type label
        pytest.param(
            "utf-7",
            b"\xef\xbb\xbf" + b'<img src="http://cdn.test/bom.png">',
            ["http://cdn.test/bom.png"],
            id="bom-over-label",
        ),
    ],
)
def test_only_whatwg_encoding_labels_are_honoured(
    tls: ssl.SSLContext, charset: str, body: bytes, found: list[str]
) -> None:
    response, _ = _probe(tls, _page(body, f"text/html; charset={charset}"))
    assert response.error is None, response.error
    assert response.insecure_references == found


def test_the_heaviest_pages_through_the_cli_stay_small(
    pki: TestPKI, tls: ssl.SSLContext, tmp_path: Path
) -> None:
    """Four targets audited at once, each serving 1 MB of what costs html5lib the most memory: before,
    1 MB of `<a>` alone took 360 MB and a million parse errors (NUL characters) 290 MB."""
    pages = [
        EARLY + "<a>" * 333_333,
        EARLY + "<p>" + "\0" * MiB,
        EARLY + "<table>" + "x<td>" * 200_000,
        EARLY + "<a " * 333_333,
    ]
    with ExitStack() as stack:
        ports = [stack.enter_context(raw.RawServer(_page(p.encode()), tls=tls)).port for p in pages]
        started = time.monotonic()
        run, peak = _run_measured(_config(tmp_path, pki, ports))
        took = time.monotonic() - started
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    targets = run.report["targets"]
    assert [t["error"] for t in targets] == [None] * len(pages)
    for target in targets:
        page = target["evidence"]["http"]["https"][0]
        assert page["insecure_references"] == [EARLY_URL], (page["partial_analysis"], page["error"])
        assert clause_statuses(target)["11.3-protocols"] == "pass"
    assert peak < 350 * MiB, f"peak resident memory {peak / MiB:.0f} MiB"
    assert took < 90, f"{took:.0f} s"
