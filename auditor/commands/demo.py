"""`auditor demo`: start two local HTTPS sites (one kept to the policy, one legacy) under a
throwaway private CA, audit them like real targets, and write the reports.

It shows a new user the whole product without touching any real site: only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.checks.clauses import VALUES
from auditor.config import Config, Target
from auditor.locations import ensure_writable
from auditor.model import ReportMeta
from auditor.reports.formats import ReportFile
from auditor.reports.terminal import diagnostics_console, render, terminal_console

if TYPE_CHECKING:
    from auditor.commands import Subparsers

MODERN_CIPHERS = VALUES["MODERN_CIPHERS"]  # the site kept to the policy serves what its fixes recommend
LEGACY_CIPHERS = "AES128-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0"


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
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
    # lazy: the pipeline (sslyze, httpx: ~0.5 s) and the demo's CA and sites (cryptography) only for
    # `auditor demo`; the parser imports every command module
    from auditor import app
    from auditor.demo_site import DemoPKI, DemoSite

    out: Path = args.out
    ensure_writable(out, "--out")
    console = terminal_console(sys.stdout)
    err = diagnostics_console()  # never wrapped, even in a log
    with tempfile.TemporaryDirectory(prefix="auditor-demo-") as tmp:
        pki = DemoPKI(Path(tmp))
        good_cert = pki.issue(
            "shop", hosts=("shop.demo.test",), days_valid=90, policy="ov", subject_org="Demo Shop K.K."
        )
        legacy_cert = pki.issue("legacy", hosts=("legacy.demo.test",), days_valid=20, policy="dv")
        good = DemoSite(
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
        legacy = DemoSite(
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
                    http_port=good.http_port or 80,  # set once the site runs
                ),
                Target(
                    url=f"https://legacy.demo.test:{legacy.port}/",
                    name="Legacy site (breaks it)",
                    ip="127.0.0.1",
                    ca_bundle=pki.root_path,
                    http_port=legacy.http_port or 80,
                ),
            ]
            config = Config()
            config.scan.concurrency = 2
            outcome = app.run(
                targets,
                app.Plan(
                    config,
                    meta=ReportMeta(demo=True),
                    files=lambda report: [
                        ReportFile(out / "demo-report.json", "json", "--out"),
                        ReportFile(out / "demo-report.html", "html", "--out"),
                    ],
                    show=lambda report: render(report, console),
                ),
            )
    app.announce(outcome, app.stderr_line)
    # the legacy site breaks the policy on purpose: only a site not audited or a file not written fails
    return 3 if outcome.report.any_error or outcome.write_errors else 0
