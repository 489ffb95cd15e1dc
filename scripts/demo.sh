#!/usr/bin/env bash
# Installs the auditor and runs the demo: starts a local HTTPS site, audits it, writes the reports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/auditor demo "$@"
