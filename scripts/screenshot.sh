#!/usr/bin/env bash
# Renders an HTML report to PNG with headless Chromium (Debian package `chromium`), to look at it
# as a reader would:
#   scripts/screenshot.sh REPORT.html OUT.png [WIDTH [HEIGHT [SCALE]]]
#   scripts/screenshot.sh --docs    # the README's pictures, docs/report-desktop.png and docs/report-phone.png,
#                                   # from a fresh `auditor demo` plus one site that refuses connections
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
command -v chromium >/dev/null || { echo "install chromium first: apt-get install chromium" >&2; exit 1; }

shoot() {  # REPORT OUT WIDTH HEIGHT SCALE
  local profile
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --force-device-scale-factor="$5" --window-size="$3,$4" --screenshot="$2" "file://$1" >/dev/null 2>&1
  rm -rf "$profile"
  if command -v pngquant >/dev/null; then pngquant --force --skip-if-larger --output "$2" -- "$2" || true; fi
  echo "$2"
}

if [ "${1:-}" != "--docs" ]; then
  shoot "$(realpath "$1")" "$(realpath -m "$2")" "${3:-1280}" "${4:-2600}" "${5:-1}"
  exit 0
fi

python=${PYTHON:-$here/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$here"
"$python" -m auditor demo --out "$work" >/dev/null
# a third site that refuses connections (a free local port): the "not audited" row, from a real run
port=$("$python" -c "from tests.harness.servers import free_port; print(free_port())")
"$python" -m auditor audit --ip 127.0.0.1 --json "$work/down.json" "https://intranet.demo.test:$port/" \
  >/dev/null 2>&1 || true
"$python" - "$work" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
report = json.loads((work / "demo-report.json").read_text())
down = json.loads((work / "down.json").read_text())["targets"][0]
down["target"]["name"] = "Intranet portal"
report["targets"].append(down)
(work / "three.json").write_text(json.dumps(report))
EOF
"$python" -m auditor report "$work/three.json" --html "$work/three.html" >/dev/null
shoot "$work/three.html" "$here/docs/report-desktop.png" 1280 2000 1
shoot "$work/three.html" "$here/docs/report-phone.png" 390 1400 2
