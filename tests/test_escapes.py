"""Text from a server or a file is cleaned for the medium it goes to (issue 13 item 12).

A real hostile HTTPS server on loopback: its certificate subject and subjectAltName carry terminal
escape sequences and U+202E (right-to-left override), its cookie name and HSTS value carry both
too. It is audited through the real CLI (stored, mailed to a real SMTP server, every format
written), then re-rendered with `report`, compared with `diff` and listed with `history`.
Nowhere but the JSON may a raw control, escape or bidi character appear, and the JSON keeps the
strings exactly as received (written with \\uXXXX escapes, which read back to the same string).
"""

from __future__ import annotations

import csv
import email
import io
import json
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.policy import default
from pathlib import Path

import html5lib
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auditor.model import AuditReport, Status, TargetResult
from auditor.store import Store
from tests.conftest import CliRun, run_cli
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import PythonTLSServer, free_port

ESC, BEL, RLO, LRI = "\x1b", "\x07", "\u202e", "\u2066"
CSI_C1 = "\x9b"  # the one-byte CSI of C1: a terminal escape without ESC
CLEAR = f"{ESC}[2J"
TITLE = f"{ESC}]0;owned{BEL}"  # sets the terminal title
MARKER = "QQQ"  # three bytes in the DER, replaced by U+202E's three UTF-8 bytes
SHOWN_RLO = "<U+202E>"
COOKIE = f"sid{ESC}[31m{RLO}x"
HSTS = f"max-age=10{CLEAR}{RLO}"


def raw_hostile(text: str) -> list[str]:
    """The characters that act on a terminal or reorder text, found raw in `text` (CRLF line ends,
    LF and TAB are layout, not attacks)."""
    found = {
        f"U+{ord(ch):04X}"
        for ch in text.replace("\r\n", "\n")
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    }
    return sorted(found)


def _wire(text: str) -> str:
    """A header value whose bytes on the wire are `text` in UTF-8 (http.server encodes Latin-1)."""
    return text.encode().decode("latin-1")


def _der_split(data: bytes, pos: int) -> tuple[int, int]:
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    return pos, pos + length


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _with_bidi(pki: TestPKI, issued: Issued, directory: Path) -> Issued:
    """The leaf with every MARKER turned into U+202E, re-signed by the intermediate: cryptography
    refuses to build a dNSName with U+202E, but a hostile CA's bytes can hold one, and parsers read it."""
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    tbs = issued.cert.tbs_certificate_bytes
    assert tbs.count(MARKER.encode()) == 2, "the marker must occur in the CN and the SAN only"
    new_tbs = tbs.replace(MARKER.encode(), RLO.encode())
    content, _ = _der_split(der, 0)
    tbs_end = _der_split(der, content)[1]
    algorithm = der[tbs_end : _der_split(der, tbs_end)[1]]  # ecdsa-with-SHA256, as the intermediate signed
    assert isinstance(pki.intermediate_key, ec.EllipticCurvePrivateKey)
    signature = pki.intermediate_key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    body = new_tbs + algorithm + b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    cert = x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, chain_path = directory / "bidi.pem", directory / "bidi.chain.pem"
    cert_path.write_bytes(pem)
    chain_path.write_bytes(pem + pki.intermediate_path.read_bytes())
    return Issued(
        name="bidi", cert_path=cert_path, key_path=issued.key_path, chain_path=chain_path, cert=cert
    )


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802  # aiosmtpd hook
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=default))
        return "250 OK"


@dataclass
class Audited:
    directory: Path
    config: Path
    url: str
    run: CliRun
    second: CliRun
    mail: list[Message]


def _config(directory: Path, url: str, ca: Path, smtp_port: int) -> Path:
    path = directory / "config.toml"
    # The subject template is the user's own, but it comes from a file: a header gets no control either.
    path.write_text(f"""
[history]
database = "history.sqlite"

[output]
directory = "out"

[email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "auditor@example.test"
to = ["ops@example.test"]
subject = "[auditor] \\u001b]0;owned\\u0007\\u202e {{target}}: {{grade}}"
timeout = 5
retries = 0

[[targets]]
url = "{url}"
ip = "127.0.0.1"
ca_bundle = "{ca}"
http_port = 9
""")
    return path


@pytest.fixture(scope="module")
def audited(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    directory = tmp_path_factory.mktemp("escapes")
    # DV: the validation-level finding fails, so the subject is in the evidence every report shows
    leaf = pki.issue(
        "escapes",
        hosts=("good.test", f"{MARKER}evil{CLEAR}.test"),
        policy="dv",
        subject_cn=f"{MARKER}{TITLE}good.test",
        subject_org=f"ACME{ESC}[31m",
    )
    issued = _with_bidi(pki, leaf, directory)
    headers = [
        ("Set-Cookie", _wire(f"{COOKIE}=1; Path=/")),
        ("Strict-Transport-Security", _wire(HSTS)),
        ("Server", _wire(f"x{CLEAR}{CSI_C1}31m")),
    ]
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        with PythonTLSServer(issued, response_headers=headers) as server:
            config = _config(directory, server.url, pki.root_path, smtp_port)
            outputs = [
                f"--{name}={directory / ('a.' + ext)}"
                for name, ext in (
                    ("json", "json"),
                    ("html", "html"),
                    ("csv", "csv"),
                    ("junit", "xml"),
                    ("sarif", "sarif"),
                )
            ]
            run = run_cli("audit", "--config", str(config), "--store", "--email", *outputs)
            second = run_cli("audit", "--config", str(config), "--store", "-q")
        again = run_cli("report", str(directory / "a.json"), "--text", str(directory / "a.txt"))
        assert again.code == 0, again.stderr
        yield Audited(directory, config, server.url, run, second, inbox.messages)
    finally:
        controller.stop()


def _leaf_subject(report: dict) -> str:  # type: ignore[type-arg]
    return report["targets"][0]["evidence"]["tls"]["certificates"][0]["received_chain"][0]["subject"]


def test_the_hostile_text_reached_the_report_and_json_keeps_it_faithful(audited: Audited) -> None:
    """Without this, "no raw escape" below would be true of a report that never saw one."""
    assert audited.run.code == 1, audited.run.stderr
    raw = (audited.directory / "a.json").read_text(encoding="utf-8")
    report = json.loads(raw)
    target = report["targets"][0]
    subject = _leaf_subject(report)
    assert RLO in subject and ESC in subject and BEL in subject
    sans = target["evidence"]["tls"]["certificates"][0]["received_chain"][0]["subject_alt_names"]
    assert f"{RLO}evil{CLEAR}.test" in sans
    assert [c["name"] for c in target["evidence"]["http"]["https"][0]["cookies"]] == [COOKIE]
    assert ["strict-transport-security", HSTS] in target["evidence"]["http"]["https"][0]["headers"]
    assert ["server", f"x{CLEAR}{CSI_C1}31m"] in target["evidence"]["http"]["https"][0]["headers"]
    # faithful, yet no byte of the file acts on a terminal that shows it: JSON's own \u escapes
    assert raw_hostile(raw) == []
    assert "\\u202e" in raw.lower()


def test_terminal_and_files_written_by_the_audit(audited: Audited) -> None:
    run, d = audited.run, audited.directory
    outputs = {
        "stdout": run.stdout,
        "stderr": run.stderr,
        "second run": audited.second.stdout + audited.second.stderr,
    }
    outputs |= {
        p.name: p.read_text(encoding="utf-8")
        for p in d.iterdir()
        if p.suffix in (".html", ".txt", ".csv", ".xml", ".sarif")
    }
    assert len(outputs) == 8
    assert {name: raw_hostile(text) for name, text in outputs.items()} == {name: [] for name in outputs}
    # shown, not dropped: the reader sees that the server sent an override
    for name in ("stdout", "a.txt", "a.csv", "a.sarif"):
        assert SHOWN_RLO in outputs[name], name
    assert "&lt;U+202E&gt;" in outputs["a.xml"] and "&lt;U+202E&gt;" in outputs["a.html"]
    assert "sid?[31m<U+202E>x" in run.stdout


def test_html_shows_bidi_controls_visibly(audited: Audited) -> None:
    html = (audited.directory / "a.html").read_text(encoding="utf-8")
    assert raw_hostile(html) == []
    text = "".join(html5lib.parse(html, namespaceHTMLElements=False).itertext())
    assert f"CN={SHOWN_RLO}?]0\\;owned?good.test" in text  # the subject, as a browser shows it
    assert f"{SHOWN_RLO}evil?[2J.test" in text  # the subjectAltName
    assert f"sid?[31m{SHOWN_RLO}x" in text  # the cookie name


def test_machine_formats_are_consistent(audited: Audited) -> None:
    d = audited.directory
    rows = list(csv.DictReader(io.StringIO((d / "a.csv").read_text(encoding="utf-8"), newline="")))
    cookies = next(r for r in rows if r["clause"] == "11.5-cookies")
    assert cookies["detail"].startswith(f"sid?[31m{SHOWN_RLO}x on ")
    junit = ET.fromstring((d / "a.xml").read_bytes())
    failure = next(c for c in junit.iter("testcase") if c.get("name") == "11.5-cookies").find("failure")
    assert failure is not None and f"sid?[31m{SHOWN_RLO}x" in (failure.text or "")
    sarif = json.loads((d / "a.sarif").read_text(encoding="utf-8"))
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert any(f"sid?[31m{SHOWN_RLO}x" in m for m in messages)


def test_mail_subject_and_parts(audited: Audited) -> None:
    (message,) = audited.mail
    subject = message["Subject"]
    assert (
        raw_hostile(subject) == []
        and "\n" not in subject
        and subject.startswith(f"[auditor] ?]0;owned?{SHOWN_RLO} ")
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert raw_hostile(text) == [] and raw_hostile(html) == []
    assert SHOWN_RLO in text and "&lt;U+202E&gt;" in html
    (attachment,) = list(message.iter_attachments())
    assert RLO in _leaf_subject(json.loads(attachment.get_content()))  # the evidence, as received


def _evil_report(audited: Audited) -> Path:
    """A crafted JSON report (the file is the attacker's): every string field a renderer shows."""
    report = AuditReport.model_validate_json((audited.directory / "a.json").read_text(encoding="utf-8"))
    target = report.targets[0]
    evil = f"{CLEAR}{TITLE}{RLO}{CSI_C1}2J\r{LRI}"
    report.tool_version = evil
    report.meta.evidence_log_head = evil
    target.target.name = f"shop{evil}"
    for finding in target.findings:  # clause ids are an enum: a crafted one is refused (test below)
        finding.title += evil
        finding.detail = (finding.detail or "") + evil
        finding.evidence.append(evil)
        if finding.remediation:
            finding.remediation += evil
    assert target.grade is not None
    target.grade.letter = f"A{evil}"
    target.grade.warnings.append(evil)
    path = audited.directory / "evil.json"
    path.write_text(report.model_dump_json(), encoding="utf-8")
    return path


def test_report_of_a_crafted_json(audited: Audited) -> None:
    evil = _evil_report(audited)
    out = audited.directory / "evil-out"
    out.mkdir()
    text = run_cli("report", str(evil), "--text", "-")
    assert text.code == 0, text.stderr
    assert raw_hostile(text.stdout) == [] and f"shop?[2J?]0;owned?{SHOWN_RLO}?2J <U+2066>" in text.stdout
    files = run_cli(
        "report",
        str(evil),
        "--html",
        str(out / "r.html"),
        "--csv",
        str(out / "r.csv"),
        "--junit",
        str(out / "r.xml"),
        "--sarif",
        str(out / "r.sarif"),
    )
    assert files.code == 0, files.stderr
    written = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    assert len(written) == 4
    assert {name: raw_hostile(body) for name, body in written.items()} == {name: [] for name in written}
    assert all(SHOWN_RLO in body or "&lt;U+202E&gt;" in body for body in written.values())
    for option in ("--csv", "--junit", "--sarif", "--html"):
        piped = run_cli("report", str(evil), option, "-")
        assert piped.code == 0 and raw_hostile(piped.stdout) == [], option


def test_a_crafted_clause_id_is_refused_with_a_clean_message(audited: Audited) -> None:
    """A clause id is one of ClauseId: a report naming another is not a report, and the error that
    says so does not echo the crafted text."""
    data = json.loads((audited.directory / "a.json").read_text(encoding="utf-8"))
    data["targets"][0]["findings"][0]["clause"] = f"11.1-pfs{TITLE}{RLO}"
    path = audited.directory / "evil-clause.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    refused = run_cli("report", str(path), "--text", "-")
    assert refused.code == 2 and "not an auditor JSON report" in refused.stderr
    assert raw_hostile(refused.stdout + refused.stderr) == [] and "owned" not in refused.stderr


def _tampered(audited: Audited) -> tuple[int, int]:
    """Two scans appended to the history as someone with write access to the database could (with
    the store's own API, so the evidence chain stays intact): hostile clause ids, errors and a URL."""
    store = Store(str(audited.config.parent / "history.sqlite"))
    _, real = next(store.recent(audited.url))
    crafted = TargetResult.model_validate_json(real.model_dump_json())
    crafted.findings[0].status = Status.FAIL
    assert crafted.grade is not None
    crafted.grade.letter = f"B{TITLE}{RLO}"  # clause ids are an enum; the letter is free text
    crafted.changes = None
    other = TargetResult.model_validate_json(real.model_dump_json())
    other.target.url = f"https://good.test/{CLEAR}{RLO}/"
    other.error = f"{TITLE}{RLO}refused"
    other.findings, other.evidence, other.grade = [], None, None
    store.append([crafted, other])
    store.close()
    rows = Store(str(audited.config.parent / "history.sqlite"), create=False).history(None, 50)
    return rows[1].seq, rows[2].seq  # the crafted scan, and the real one before it


def test_history_and_diff_of_tampered_scans(audited: Audited) -> None:
    crafted, real = _tampered(audited)
    config = str(audited.config)
    history = run_cli("history", "--config", config)
    assert history.code == 0, history.stderr
    assert raw_hostile(history.stdout) == [] and f"/?[2J{SHOWN_RLO}/" in history.stdout
    diff = run_cli("diff", audited.url, "--config", config)
    by_id = run_cli("diff", "--config", config, "--scan", str(real), "--scan", str(crafted))
    for run in (diff, by_id):
        assert run.code == 0, run.stderr
        assert raw_hostile(run.stdout + run.stderr) == []
        assert f"B?]0;owned?{SHOWN_RLO}" in run.stdout
    other = run_cli("diff", "--config", config, "--scan", str(real), "--scan", str(crafted + 1))
    assert (
        other.code == 0
        and raw_hostile(other.stdout) == []
        and f"?]0;owned?{SHOWN_RLO}refused" in other.stdout
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"a{ESC}[1mb\rc\nd{RLO}e", f"a?[1mb c d{SHOWN_RLO}e"),
        (f"{CSI_C1}31m\u200b\ufeff\u2028", "?31m<U+200B><U+FEFF><U+2028>"),
        ("\ud800 bücher ✓ 日本", "? bücher ✓ 日本"),  # a lone surrogate (a crafted JSON) cannot be printed
    ],
)
def test_one_line_rules(text: str, shown: str) -> None:
    from auditor.reports.sanitize import one_line

    assert one_line(text) == shown
