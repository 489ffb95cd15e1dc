#!/usr/bin/env bash
# Installs everything the tests need (Debian packages included), runs the static gates, then the whole
# test suite. A gate that fails stops the run: lint, format and types are kept green like the tests.
#   ruff check       lint rules in pyproject.toml [tool.ruff.lint]
#   ruff format      formatting (line length 110)
#   mypy             strict types on the auditor package ([tool.mypy]; its cache in .mypy_cache)
# The layer contract (import-linter) runs inside pytest, in tests/test_layers.py.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_fleet.py`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
gate() {
  local started=$SECONDS
  echo "test.sh: $*" >&2
  "$@"
  echo "test.sh: $1 ${2:-} passed in $((SECONDS - started)) s" >&2
}
gate .venv/bin/ruff check --no-cache .
gate .venv/bin/ruff format --check --no-cache .
gate .venv/bin/mypy
# Two test processes (pytest-xdist), a file each at a time (its servers are module fixtures): most tests wait
# on loopback servers and deadlines, so two halve the wall time on the 2-core CI machine (17 -> 8 min).
workers=$(nproc 2>/dev/null || echo 1)
[ "$workers" -gt 2 ] && workers=2
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
