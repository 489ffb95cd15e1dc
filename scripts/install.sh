#!/usr/bin/env bash
# Installs what the auditor needs on a Debian machine, into ./.venv.
#   scripts/install.sh          the tool (Python packages)
#   scripts/install.sh --test   plus what the tests use: nginx, openssl, pytest, aiosmtpd
# Debian packages are installed only when missing, with apt-get (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

debs=(openssl ca-certificates)
[ "$want_test" = 1 ] && debs+=(nginx-light)
python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || debs+=(python3-venv)
command -v python3 >/dev/null 2>&1 || debs+=(python3)

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    echo "installing Debian packages: ${missing[*]}" >&2
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "please install: ${missing[*]}" >&2
    exit 1
  fi
fi
# A Debian nginx package starts a system service on port 80; the tests start their own instances.
if [ "$want_test" = 1 ] && command -v systemctl >/dev/null 2>&1; then
  systemctl is-active --quiet nginx 2>/dev/null && { systemctl stop nginx || true; }
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
extras=""
[ "$want_test" = 1 ] && extras="[test]"
# This machine's pip configuration names local mirrors that may be absent: drop those warnings only.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
