"""Side by side with testssl.sh: every harness configuration on loopback, scanned by the auditor and by
testssl.sh 3.3dev (../shared/peers), printing both SSL Labs-style letters and both verdicts for each
vulnerability row, and how many rows agree. Disagreements are where one of the two is wrong.

    .venv/bin/python bench/peers.py [--only NAME ...] [--jobs N] [--json FILE] [--keep DIR] [--recompare DIR] [--list]

Only 127.0.0.1 is contacted. testssl.sh runs in a private mount namespace (`unshare -m`, so root)
whose /etc/hosts maps the test names and whose /etc/resolv.conf names only 127.0.0.1: it makes no
DNS query that leaves the machine. It needs `dig` (Debian: bind9-dnsutils). Trust is judged by both
tools against the same test root: the auditor gets it as the target's `ca_bundle`, testssl.sh
through `--add-ca` (it otherwise uses only its own etc/*.pem stores and would say T everywhere).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import audit_local_targets
from tests.harness.legacy import (
    LegacyOpenSSLServer,
    legacy_openssl_available,
)
from tests.harness.pki import Issued, TestPKI
from tests.test_grading_real import SERVERS, Server, _audit, _start

TESTSSL = ROOT.parent / "shared" / "peers" / "testssl.sh" / "testssl.sh"
HOST_NAMES = ("good.test", "other.test")
TESTSSL_TIMEOUT = 1200  # s; about 60 s per target on 2 idle cores, several minutes on a busy one
VULN_CLAUSE = "11.4-vulnerabilities"
PRESENT, ABSENT, UNTESTED, FAILED = "PRESENT", "not present", "not tested", "no result"

# Our row -> (words naming the auditor's row in its 11.4-vulnerabilities evidence, testssl.sh JSON ids).
ROWS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Heartbleed": (("heartbleed",), ("heartbleed",)),
    "CCS injection": (("ccs",), ("CCS",)),
    "ROBOT": (("robot",), ("ROBOT",)),
    "Renegotiation": (("renegotiation",), ("secure_renego", "secure_client_renego")),
    "CRIME": (("crime",), ("CRIME_TLS",)),
    "POODLE (SSL 3.0)": (("poodle",), ("POODLE_SSL",)),
    "BEAST": (("beast",), ("BEAST",)),
    "SWEET32": (("sweet32",), ("SWEET32",)),
    "RC4": (("rc4",), ("RC4",)),
    "FREAK / export": (("export", "freak"), ("FREAK", "cipherlist_EXPORT")),
    "NULL / anonymous": (("null", "anonymous"), ("cipherlist_NULL", "cipherlist_aNULL")),
    "Logjam (DH < 1024)": (("logjam",), ("LOGJAM",)),
    "DROWN / SSL 2.0": (("drown", "ssl 2.0"), ("DROWN",)),
    "Fallback SCSV missing": (("fallback",), ("fallback_SCSV",)),
}
_ISSUE_LOCK = threading.Lock()


# ------------------------------------------------------------------ configurations


@dataclass(frozen=True)
class Config:
    name: str
    what: str  # one line: what the server is
    launch: Callable[[ExitStack, Workspace], tuple[str, Path]]  # starts it; returns (url, CA bundle)
    legacy: bool = False  # OpenSSL 1.0.1e: needs ../shared/legacy-openssl, and one connection at a time


class Workspace:
    """A temp dir with two test PKIs (EC CAs for most, RSA CAs for MD5 and the legacy OpenSSL)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pki = TestPKI(root / "pki")
        self.rsa_pki = TestPKI(root / "rsa-pki", ca_keys="rsa")

    def issue(self, name: str, rsa_ca: bool = False, **kwargs: Any) -> tuple[Issued, Path]:
        authority = self.rsa_pki if rsa_ca else self.pki
        with _ISSUE_LOCK:
            return authority.issue(f"peer-{name}", **kwargs), authority.root_path


def _from_grading_test(server: Server) -> Config:
    """A configuration of tests/test_grading_real.py, started by that test's own `_start`."""

    def launch(stack: ExitStack, ws: Workspace) -> tuple[str, Path]:
        issued, bundle = ws.issue(server.name, server.rsa_ca or server.legacy is not None, **server.cert)
        return _start(server, issued, ws.root, stack), bundle

    kind = (
        "OpenSSL 1.0.1e"
        if server.legacy is not None
        else "tlslite-ng"
        if server.tlslite is not None
        else "Python ssl"
        if server.python is not None
        else "nginx"
    )
    return Config(
        server.name,
        f"{kind}, test_grading_real rows {sorted(server.rows) or '-'}, "
        f"vulnerabilities {sorted(server.vulns) or '-'}",
        launch,
        legacy=server.legacy is not None,
    )


def _legacy(name: str, what: str, args: list[str], dhparam_bits: int | None = None) -> Config:
    def launch(stack: ExitStack, ws: Workspace) -> tuple[str, Path]:
        issued, bundle = ws.issue(name, rsa_ca=True)  # 1.0.1e cannot use the EC test CAs
        return stack.enter_context(LegacyOpenSSLServer(issued, args, dhparam_bits=dhparam_bits)).url, bundle

    return Config(name, f"OpenSSL 1.0.1e, {what}", launch, legacy=True)


# What tests/test_grading_real.py does not have yet (an extra of a name it gains is left out).
EXTRA: list[Config] = [
    _legacy(
        "legacy-everything",
        "SSL 2/3, TLS 1.0-1.2, every suite it has (export, NULL, anon, RC4, DES, "
        "3DES), client order, its built-in 512-bit DH",
        ["-cipher", "ALL:eNULL:EXPORT:RC4:SSLv2"],
    ),
]
CONFIGS: list[Config] = [
    *(_from_grading_test(s) for s in SERVERS),
    *(c for c in EXTRA if c.name not in {s.name for s in SERVERS}),
]


# ------------------------------------------------------------------ the two tools


def run_auditor(
    name: str, url: str, bundle: Path, directory: Path, one_connection: bool
) -> tuple[dict[str, Any], float]:
    """One `auditor audit --json -` run over this target, the way the tests run it (for OpenSSL 1.0.1e's
    single-threaded s_server, test_grading_real's one connection at a time); its target object."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = (_audit if one_connection else audit_local_targets)({name: (url, bundle)}, directory)
    elapsed = time.monotonic() - started
    (directory / "report.json").write_text(run.stdout)
    (directory / "stderr.txt").write_text(run.stderr)
    try:
        return run.report["targets"][0], elapsed
    except (ValueError, KeyError, IndexError):
        return {"error": f"exit {run.code}: {run.stderr.strip()[-500:]}"}, elapsed


def run_testssl(url: str, bundle: Path, directory: Path) -> tuple[dict[str, tuple[str, str]], float, str]:
    """testssl.sh on `url` via 127.0.0.1, no DNS; {JSON id: (severity, finding)}, seconds, log tail."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts, resolv, out = directory / "hosts", directory / "resolv.conf", directory / "testssl.json"
    hosts.write_text(f"127.0.0.1 localhost {' '.join(HOST_NAMES)}\n::1 localhost\n")
    resolv.write_text("nameserver 127.0.0.1\n")
    out.unlink(missing_ok=True)
    testssl = " ".join(
        [
            str(TESTSSL),
            "--ip",
            "127.0.0.1",
            "--nodns",
            "none",
            "--warnings",
            "off",
            "--color",
            "0",
            "--add-ca",
            str(bundle),
            "--jsonfile-pretty",
            str(out),
            url,
        ]
    )
    script = f"mount --bind {hosts} /etc/hosts && mount --bind {resolv} /etc/resolv.conf && exec {testssl}"
    started = time.monotonic()
    # its own session, so a timeout or Ctrl-C ends testssl.sh and every openssl it forked
    proc = subprocess.Popen(
        ["unshare", "-m", "bash", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        log = proc.communicate(timeout=TESTSSL_TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        log = f"testssl.sh timed out after {TESTSSL_TIMEOUT} s"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    (directory / "testssl.log").write_text(log)
    return read_testssl_json(out), elapsed, log[-400:]


def read_testssl_json(path: Path) -> dict[str, tuple[str, str]]:
    """{id: (severity, finding)} from testssl.sh's --jsonfile-pretty file ({} if it wrote none)."""
    findings: dict[str, tuple[str, str]] = {}
    if path.exists():
        for result in json.loads(path.read_text()).get("scanResult", []):
            for value in result.values():
                for item in value if isinstance(value, list) else []:
                    if isinstance(item, dict) and "id" in item:
                        findings[item["id"]] = (item.get("severity", ""), item.get("finding", ""))
    return findings


# ------------------------------------------------------------------ verdicts


def testssl_verdict(row: str, findings: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """PRESENT / not present / not tested for one row, and the raw finding(s) it rests on."""
    ids = ROWS[row][1]
    seen = [(i, *findings[i]) for i in ids if i in findings]
    raw = "; ".join(f"{i}: {sev} {text}" for i, sev, text in seen)
    if not findings:
        return FAILED, "testssl.sh wrote no JSON"
    if not seen:
        return UNTESTED, "no such id in the JSON"
    verdicts = []
    for ident, severity, text in seen:
        if ident == "LOGJAM" and not text.startswith("VULNERABLE"):
            # testssl.sh flags any DH group <= 1280 bits (MEDIUM); our row is < 1024 bits or export DH
            bits = re.search(r"has only (\d+) bits", text)
            verdicts.append(PRESENT if bits and int(bits.group(1)) < 1024 else ABSENT)
        elif severity in ("OK", "INFO"):
            verdicts.append(ABSENT)
        elif severity in ("LOW", "MEDIUM", "HIGH", "CRITICAL"):
            verdicts.append(PRESENT)
        else:  # WARN, DEBUG: the check failed or was skipped
            verdicts.append(UNTESTED)
    if row == "Renegotiation":  # insecure = no RFC 5746 and client-initiated renegotiation accepted
        by_id = dict(zip((i for i, _, _ in seen), verdicts, strict=True))
        rfc5746_missing, client_renego = by_id.get("secure_renego"), by_id.get("secure_client_renego")
        if rfc5746_missing == ABSENT:
            return ABSENT, raw
        ok = rfc5746_missing == PRESENT and client_renego in (PRESENT, ABSENT)
        return (client_renego if ok else UNTESTED), raw  # type: ignore[return-value]
    if PRESENT in verdicts:
        return PRESENT, raw
    return (UNTESTED if UNTESTED in verdicts else ABSENT), raw


def _accepted_suites(target: dict[str, Any]) -> list[dict[str, Any]]:
    protocols = ((target.get("evidence") or {}).get("tls") or {}).get("protocols") or []
    return [s for p in protocols if p.get("supported") for s in p.get("suites") or []]


def auditor_rows(target: dict[str, Any]) -> dict[str, str]:
    """The auditor's rows as its 11.4-vulnerabilities evidence states them: {row name: verdict}."""
    rows: dict[str, str] = {}
    for f in target.get("findings") or []:
        if f.get("clause") != VULN_CLAUSE:
            continue
        for line in f.get("evidence") or []:
            name, _, verdict = line.rpartition(": ")
            if verdict in (PRESENT, ABSENT, UNTESTED):
                rows[name] = verdict
    return rows


def auditor_verdict(row: str, target: dict[str, Any], rows: dict[str, str]) -> tuple[str, str]:
    """Our row from the auditor's: the one whose name has this row's words. Its combined
    "export, NULL or anonymous" row is split by the accepted suites it lists in its evidence."""
    if not target.get("findings"):
        return FAILED, f"the audit failed: {target.get('error')}"
    words = ROWS[row][0]
    names = [n for n in rows if any(w in n.lower() for w in words)]
    if not names:
        return UNTESTED, "no such row in the auditor's evidence"
    name = names[0]
    verdict = rows[name]
    combined = row in ("FREAK / export", "NULL / anonymous") and all(
        any(w in name.lower() for w in ROWS[other][0]) for other in ("FREAK / export", "NULL / anonymous")
    )
    if combined and verdict == PRESENT:
        suites = _accepted_suites(target)
        test: Callable[[dict[str, Any]], object] = (
            (lambda s: s.get("export"))
            if row == "FREAK / export"
            else (lambda s: s.get("anonymous") or s.get("bits") == 0)
        )
        hits = sorted({s.get("openssl_name") or s["name"] for s in suites if test(s)})
        return (PRESENT if hits else ABSENT), f"{name}: {verdict}; suites {hits[:4]}"
    return verdict, f"{name}: {verdict}"


def compare(
    config: Config,
    url: str,
    target: dict[str, Any],
    auditor_s: float,
    findings: dict[str, tuple[str, str]],
    testssl_s: float,
    log_tail: str,
) -> dict[str, Any]:
    grade = target.get("grade") or {}
    rows_said = auditor_rows(target)
    rows = []
    for row in ROWS:
        ours, our_raw = auditor_verdict(row, target, rows_said)
        theirs, their_raw = testssl_verdict(row, findings)
        rows.append(
            {
                "row": row,
                "auditor": ours,
                "testssl": theirs,
                "agree": ours == theirs,
                "auditor_raw": our_raw,
                "testssl_raw": their_raw,
            }
        )
    caps = sorted(text for ident, (_, text) in findings.items() if ident.startswith("grade_cap_reason"))
    warnings = sorted(text for ident, (_, text) in findings.items() if ident.startswith("grade_cap_warning"))
    return {
        "name": config.name,
        "what": config.what,
        "url": url,
        "auditor": {
            "letter": grade.get("letter") or FAILED,
            "letter_ignoring_trust": grade.get("letter_ignoring_trust"),
            "score": grade.get("score"),
            "caps": [f"{c['grade']}: {c['reason']}" for c in grade.get("caps", [])],
            "warnings": grade.get("warnings", []),
            "error": target.get("error"),
            "seconds": round(auditor_s, 1),
        },
        "testssl": {
            "letter": findings.get("overall_grade", ("", FAILED))[1],
            "score": findings.get("final_score", ("", None))[1],
            "caps": caps,
            "warnings": warnings,
            "seconds": round(testssl_s, 1),
            "log_tail": None if findings else log_tail,
        },
        "rows": rows,
        "agree": sum(r["agree"] for r in rows),
        "of": len(rows),
    }


# ------------------------------------------------------------------ running and printing


def run_one(config: Config, ws: Workspace) -> dict[str, Any]:
    work = ws.root / "runs" / config.name
    with ExitStack() as stack:
        url, bundle = config.launch(stack, ws)
        target, auditor_s = run_auditor(config.name, url, bundle, work / "auditor", config.legacy)
        findings, testssl_s, tail = run_testssl(url, bundle, work / "testssl")
    (work / "meta.json").write_text(json.dumps({"url": url, "auditor_s": auditor_s, "testssl_s": testssl_s}))
    return compare(config, url, target, auditor_s, findings, testssl_s, tail)


def load_one(config: Config, root: Path) -> dict[str, Any] | None:
    """The comparison again from a --keep directory's saved reports, scanning nothing (None if absent)."""
    work = root / "runs" / config.name
    report = work / "auditor" / "report.json"
    if not report.exists():
        return None
    meta = json.loads((work / "meta.json").read_text()) if (work / "meta.json").exists() else {}
    try:
        target = json.loads(report.read_text())["targets"][0]
    except (ValueError, KeyError, IndexError):
        target = {"error": (work / "auditor" / "stderr.txt").read_text()[-500:]}
    findings = read_testssl_json(work / "testssl" / "testssl.json")
    return compare(
        config,
        meta.get("url", ""),
        target,
        meta.get("auditor_s", 0.0),
        findings,
        meta.get("testssl_s", 0.0),
        "",
    )


def render(result: dict[str, Any]) -> str:
    a, t = result["auditor"], result["testssl"]
    trust = f" (trust ignored: {a['letter_ignoring_trust']})" if a["letter_ignoring_trust"] else ""
    lines = [
        f"== {result['name']}: {result['what']}",
        (
            f"   letter: auditor {a['letter']}{trust}, testssl.sh {t['letter']}"
            f"{'' if a['letter'] == t['letter'] else '   <-- letters differ'}"
        ),
        f"   auditor caps {a['caps']} warnings {a['warnings']}"
        + (f" error {a['error']}" if a["error"] else ""),
        f"   testssl.sh caps {t['caps']} warnings {t['warnings']}",
        f"   time: auditor {a['seconds']} s, testssl.sh {t['seconds']} s",
    ]
    if t["log_tail"]:
        lines.append(f"   testssl.sh wrote no JSON: {t['log_tail']!r}")
    lines.append(f"   {'row':24} {'auditor':12} {'testssl.sh':12}")
    for r in result["rows"]:
        mark = "" if r["agree"] else f"   <-- differs: {r['auditor_raw']} | {r['testssl_raw'][:160]}"
        lines.append(f"   {r['row']:24} {r['auditor']:12} {r['testssl']:12}{mark}")
    lines.append(f"   rows agreeing: {result['agree']}/{result['of']}")
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]]) -> str:
    head = (
        "| configuration | auditor | testssl.sh | vulnerability rows agreeing | rows differing | "
        "auditor time | testssl.sh time |\n|---|---|---|---|---|---|---|"
    )
    body = []
    for r in results:
        a, t = r["auditor"], r["testssl"]
        letter = str(a["letter"]) + (
            f" ({a['letter_ignoring_trust']} ignoring trust)" if a["letter_ignoring_trust"] else ""
        )
        differ = ", ".join(x["row"] for x in r["rows"] if not x["agree"]) or "-"
        body.append(
            f"| {r['name']} | {letter} | {t['letter']} | {r['agree']}/{r['of']} | {differ} | "
            f"{a['seconds']} s | {t['seconds']} s |"
        )
    return "\n".join([head, *body])


def scan(chosen: list[Config], jobs: int, keep: Path | None, json_file: Path | None) -> list[dict[str, Any]]:
    """Run the configurations, `jobs` at a time, printing each comparison as it completes in order."""
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            work = keep.resolve()
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peers-")))
        pool = stack.enter_context(ThreadPoolExecutor(max(1, jobs)))
        ws = Workspace(work)
        futures = [(c, pool.submit(run_one, c, ws)) for c in chosen]
        for config, future in futures:
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001  # one broken configuration must not lose the others
                print(f"== {config.name}: FAILED to run: {exc!r}", flush=True)
                continue
            results.append(result)
            print(render(result), flush=True)
            if json_file:  # after each one: a long run interrupted keeps what it has
                json_file.write_text(
                    json.dumps({"openssl": ssl.OPENSSL_VERSION, "results": results}, indent=2)
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these configurations only")
    parser.add_argument("--jobs", type=int, default=1, help="configurations scanned at once (default 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="save the results as JSON")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="work in DIR and keep it (PKI, logs, both reports)"
    )
    parser.add_argument(
        "--recompare",
        type=Path,
        metavar="DIR",
        help="compare again from the reports a --keep DIR run saved; scan nothing",
    )
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(f"{c.name:24} {c.what}" for c in CONFIGS))
        return 0
    chosen = [c for c in CONFIGS if not args.only or c.name in args.only]
    unknown = set(args.only or ()) - {c.name for c in chosen}
    if unknown:
        parser.error(f"unknown configuration(s) {sorted(unknown)}; see --list")
    if not TESTSSL.is_file() or not shutil.which("unshare") or not shutil.which("dig"):
        print(f"needs {TESTSSL}, unshare and dig (bind9-dnsutils)", file=sys.stderr)
        return 2
    if not legacy_openssl_available():
        skipped = [c.name for c in chosen if c.legacy]
        chosen = [c for c in chosen if not c.legacy]
        print(f"../shared/legacy-openssl is absent: skipping {skipped}", file=sys.stderr)
    if args.recompare:
        results = [r for c in chosen if (r := load_one(c, args.recompare)) is not None]
        print("\n".join(render(r) for r in results))
    else:
        results = scan(chosen, args.jobs, args.keep, args.json)
    if args.json:
        args.json.write_text(json.dumps({"openssl": ssl.OPENSSL_VERSION, "results": results}, indent=2))
    print()
    print(markdown(results))
    agree = sum(r["agree"] for r in results)
    total = sum(r["of"] for r in results)
    letters = sum(r["auditor"]["letter"] == r["testssl"]["letter"] for r in results)
    print(f"\nletters agreeing: {letters}/{len(results)}; vulnerability rows agreeing: {agree}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
