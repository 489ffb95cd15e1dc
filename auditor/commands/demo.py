"""`auditor demo`: start two local HTTPS sites (one kept to the policy, one legacy) under a
throwaway private CA, audit them like real targets, and write the reports.

It shows a new user the whole product without touching any real site: only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from auditor.config import Config, Target

MODERN_CIPHERS = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
LEGACY_CIPHERS = "AES128-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # noqa: SLF001
    demo = sub.add_parser(
        "demo",
        help="start local demo HTTPS sites, audit them, write the reports",
        description="Start two HTTPS sites on 127.0.0.1 (one kept to the policy, one legacy) "
        "under a throwaway CA, audit them and write the reports.",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("demo-output"),
        metavar="DIR",
        help="where the reports go (default: %(default)s)",
    )
    return demo


def run(args: argparse.Namespace) -> int:
    import ssl

    from auditor.commands.audit import ensure_writable, terminal_console
    from auditor.audit import run_audit
    from auditor.testing.pki import TestPKI
    from auditor.testing.servers import PythonTLSServer
    from auditor.reports.html import render_html
    from auditor.reports.json_report import to_json, write_atomic
    from auditor.reports.terminal import diagnostics_console, render

    out: Path = args.out
    ensure_writable(out, "--out")
    console = terminal_console(sys.stdout)
    err = diagnostics_console()  # never wrapped, even in a log
    with tempfile.TemporaryDirectory(prefix="auditor-demo-") as tmp:
        pki = TestPKI(Path(tmp))
        good_cert = pki.issue(
            "shop", hosts=("shop.demo.test",), days_valid=90, policy="ov", subject_org="Demo Shop K.K."
        )
        legacy_cert = pki.issue("legacy", hosts=("legacy.demo.test",), days_valid=20, policy="dv")
        good = PythonTLSServer(
            issued=good_cert,
            minimum_version=ssl.TLSVersion.TLSv1_2,
            ciphers=MODERN_CIPHERS,
            response_headers=[
                ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
                ("Set-Cookie", "__Host-session=demo; Path=/; Secure; HttpOnly; SameSite=Lax"),
            ],
            body="<html><body><h1>Demo shop</h1><form action='/order' method='post'></form></body></html>",
            http_mode="redirect",
        )
        legacy = PythonTLSServer(
            issued=legacy_cert,
            minimum_version=ssl.TLSVersion.TLSv1,
            maximum_version=ssl.TLSVersion.TLSv1_2,
            ciphers=LEGACY_CIPHERS,
            response_headers=[("Set-Cookie", "session=demo; Path=/")],
            body="<html><body><img src='http://legacy.demo.test/logo.png'></body></html>",
            http_mode="content",
        )
        err.print("demo: starting two HTTPS sites on 127.0.0.1 under a throwaway private CA")
        with good, legacy:
            targets = [
                Target(
                    url=f"https://shop.demo.test:{good.port}/",
                    name="Demo shop (kept to the policy)",
                    ip="127.0.0.1",
                    ca_bundle=pki.root_path,
                    http_port=good.http_port,
                ),
                Target(
                    url=f"https://legacy.demo.test:{legacy.port}/",
                    name="Legacy site (breaks it)",
                    ip="127.0.0.1",
                    ca_bundle=pki.root_path,
                    http_port=legacy.http_port,
                ),
            ]
            config = Config()
            config.scan.concurrency = 2
            report = run_audit(targets, config, meta={"demo": True})
    render(report, console)
    written = [out / "demo-report.json"]
    write_atomic(written[0], to_json(report))
    written.append(out / "demo-report.html")
    write_atomic(written[-1], render_html(report))
    for path in written:
        err.print(f"report written: {path}")
    return 3 if report.any_error else 0
