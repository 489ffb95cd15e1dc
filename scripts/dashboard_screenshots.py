"""Regenerates the README's dashboard screenshots (docs/screenshots/dashboard-*.png).

A fortnight of simulated nights over six local sites (nginx on loopback, a private test CA; one
site's HSTS comes and goes, one gains an insecure cookie, one is TLS 1.2 with RSA key exchange, one
is down some nights, one never answers), each night through the real nightly pipeline with an
injected clock; then `auditor serve` on that history and headless Chromium at desktop and phone
widths. Only 127.0.0.1 is contacted. Needs `scripts/install.sh --test` (nginx, chromium, the serve
extra).

    .venv/bin/python scripts/dashboard_screenshots.py [--out docs/screenshots] [--nights 14]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.schedule import run_nightly  # noqa: E402  (after the path: runs from a clone)
from tests.harness import chromium  # noqa: E402
from tests.harness.dashboard_server import Dashboard  # noqa: E402
from tests.harness.pki import TestPKI  # noqa: E402
from tests.harness.process_server import free_port  # noqa: E402
from tests.harness.servers import NginxSite  # noqa: E402


def build_history(directory: Path, nights: int) -> Path:
    """The config of the six sites, its history holding `nights` + 1 simulated nights."""
    pki = TestPKI(directory / "pki")
    start = datetime.now(UTC) - timedelta(days=40)
    lifetimes = {"www": 120, "shop": 100, "api": 18, "legacy": 240, "blog": 85}
    issued = {
        name: pki.issue(name, hosts=(f"{name}.acme.test",), not_before=start, days_valid=days)
        for name, days in lifetimes.items()
    }
    ports = {name: free_port() for name in issued}
    targets = "".join(
        f'[[targets]]\nname = "{name}.acme.test"\nurl = "https://{name}.acme.test:{port}/"\n'
        f'ip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
        for name, port in [*ports.items(), ("intranet", free_port())]
    )
    config = directory / "config.toml"
    config.write_text(f"[scan]\nconcurrency = 6\n{targets}")

    def site(name: str, **settings: object) -> NginxSite:
        return NginxSite(
            directory / "nginx" / name,
            issued=issued[name],
            server_name=f"{name}.acme.test",
            https_port=ports[name],
            **settings,  # type: ignore[arg-type]
        )

    today = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    for back in range(nights, -1, -1):
        night = today - timedelta(days=back)
        servers = [
            site("www"),
            site("shop", hsts=None if 4 <= back <= 9 else "max-age=63072000; includeSubDomains"),
            site("api", cookies=["session=1; Path=/"] if back <= 6 else ()),
            site(
                "legacy", protocols="TLSv1.2", ciphers="AES256-SHA:AES128-SHA:ECDHE-RSA-AES128-SHA", hsts=None
            ),
        ]
        if back % 5 != 2:  # the blog is down some nights
            servers.append(site("blog", hsts="max-age=300"))
        for server in servers:
            server.start()
        try:
            outcome = run_nightly(str(config), clock=lambda night=night: night)
        finally:
            for server in servers:
                server.stop()
        letters = [t.grade.letter if t.grade else "-" for t in outcome.report.targets]
        print(f"{night:%Y-%m-%d}: {' '.join(letters)}", file=sys.stderr)
    return config


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--nights", type=int, default=14)
    args = parser.parse_args()
    # sslyze's bundled trust stores hold old roots that cryptography warns about on every load
    warnings.filterwarnings("ignore", message=r".*serial number which wasn't positive.*")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = build_history(Path(tmp), args.nights)
        with Dashboard(config) as dashboard:
            overview = httpx.get(dashboard.url + "/", timeout=30).text
            found = re.search(r'/site\?url=[^"]*blog[^"]*', overview)
            if found is None:
                print("the overview lists no blog site", file=sys.stderr)
                return 1
            site = found.group(0).replace("&amp;", "&")
            for page, path in (("overview", "/"), ("site", site)):
                for width, size in (("desktop", chromium.DESKTOP), ("phone", chromium.PHONE)):
                    shot = chromium.screenshot(
                        dashboard.url + path, args.out / f"dashboard-{page}-{width}.png", size
                    )
                    print(shot, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
