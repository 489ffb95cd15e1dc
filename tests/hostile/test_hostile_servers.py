"""Broken, slow and hostile servers never crash an audit: each target ends within its budget
with `error` or findings, and the other targets of the same run are audited normally."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer
from tests.hostile import rawservers as raw

TIMEOUT = 2
TARGET_BUDGET = 25


def _config(tmp_path: Path, pki: TestPKI, urls: list[str]) -> Path:
    targets = "\n".join(
        f'[[targets]]\nurl = "{u}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
        for u in urls
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"[scan]\ntimeout = {TIMEOUT}\ntarget_timeout = {TARGET_BUDGET}\nconcurrency = 16\n"
        f"[output]\nwrite_json = false\n{targets}"
    )
    return path


@pytest.fixture(scope="module")
def good(pki: TestPKI) -> Iterator[PythonTLSServer]:
    issued = pki.issue("hostile-good", policy="ov")
    with PythonTLSServer(
        issued, response_headers=[("Strict-Transport-Security", "max-age=63072000")]
    ) as server:
        yield server


def _tls_context(pki: TestPKI) -> ssl.SSLContext:
    issued = pki.issue("hostile-tls", policy="ov")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.chain_path, issued.key_path)
    return context


def test_transport_level_misbehaviour(pki: TestPKI, good: PythonTLSServer, tmp_path: Path) -> None:
    handlers = {
        "tarpit": raw.tarpit,
        "close": raw.close_at_once,
        "reset": raw.reset_mid_handshake,
        "http-banner": raw.banner(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        "ssh-banner": raw.banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
        "smtp-banner": raw.banner(b"220 mail.test ESMTP Postfix\r\n"),
        "random": raw.random_bytes,
    }
    with ExitStack() as stack:
        servers = {name: stack.enter_context(raw.RawServer(h)) for name, h in handlers.items()}
        urls = [f"https://good.test:{s.port}/" for s in servers.values()] + [good.url]
        run = run_cli("audit", "--config", str(_config(tmp_path, pki, urls)), "--json", "-")
    assert run.code == 3, run.stderr
    assert "Traceback" not in run.stderr
    results = run.report["targets"]
    assert len(results) == len(urls)
    *bad, ok = results
    assert ok["error"] is None and ok["compliant"] is True, ok["error"]
    for name, result in zip(handlers, bad, strict=False):
        assert result["error"], name
        assert "\n" not in result["error"], name
        assert result["duration_s"] <= TARGET_BUDGET + 2, (name, result["duration_s"])
    assert run.stderr.count("NOT AUDITED") == len(handlers)


def test_http_level_misbehaviour(pki: TestPKI, good: PythonTLSServer, tmp_path: Path) -> None:
    context = _tls_context(pki)
    handlers = {
        "hang-after-headers": raw.http_hang_after_headers,
        "trickle": raw.http_trickle,
        "huge-headers": raw.http_huge_headers,
        "many-cookies": raw.http_many_cookies,
        "redirect-other-host": raw.http_redirect(b"https://elsewhere.test/"),
        "redirect-http": raw.http_redirect(b"http://good.test/"),
        "redirect-not-url": raw.http_redirect(b"::not a url::"),
    }
    with ExitStack() as stack:
        servers = {name: stack.enter_context(raw.RawServer(h, tls=context)) for name, h in handlers.items()}
        urls = [f"https://good.test:{s.port}/" for s in servers.values()] + [good.url]
        run = run_cli("audit", "--config", str(_config(tmp_path, pki, urls)), "--json", "-")
    assert "Traceback" not in run.stderr
    results = dict(zip([*handlers, "good"], run.report["targets"], strict=False))
    for name, result in results.items():
        assert result["error"] is None, (name, result["error"])
        assert result["duration_s"] <= TARGET_BUDGET + 2, (name, result["duration_s"])
    assert results["good"]["compliant"] is True
    # TLS is judged even when HTTP misbehaves
    for name in handlers:
        assert clause_statuses(results[name])["11.3-protocols"] == "pass", name
    assert clause_statuses(results["trickle"])["11.5-hsts"] == "pass"  # headers kept, body abandoned
    assert clause_statuses(results["hang-after-headers"])["11.5-hsts"] == "fail"
    huge = results["huge-headers"]
    assert clause_statuses(huge)["11.5-hsts"] == "error"
    assert "larger than 1024 KiB" in huge["evidence"]["http"]["https"][0]["error"]
    cookies = results["many-cookies"]["evidence"]["http"]["https"][0]["cookies"]
    assert len(cookies) == 5000
    assert clause_statuses(results["many-cookies"])["11.5-cookies"] == "pass"
    # redirects are recorded, never followed
    for name in ("redirect-other-host", "redirect-http", "redirect-not-url"):
        first = results[name]["evidence"]["http"]["https"][0]
        assert first["status"] == 301 and first["location"], name
