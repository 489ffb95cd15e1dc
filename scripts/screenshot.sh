#!/usr/bin/env bash
# Renders an HTML report to PNG with headless Chromium (Debian package `chromium`), to look at it
# as a reader would: scripts/screenshot.sh REPORT.html OUT.png [WIDTH]
set -euo pipefail
report=$(realpath "$1"); out=$(realpath -m "$2"); width=${3:-1000}
command -v chromium >/dev/null || { echo "install chromium first: apt-get install chromium" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size="${width},${4:-2600}" --screenshot="$out" "file://$report" >/dev/null 2>&1
echo "$out"
