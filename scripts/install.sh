#!/usr/bin/env bash
# Installs what the auditor needs on a Debian machine, into ./.venv.
#   scripts/install.sh                  the tool (Python packages)
#   scripts/install.sh --test           plus what the tests use: nginx, dnsmasq, redis, PostgreSQL, chromium,
#                                       pytest, tlslite-ng, celery, starlette...
#   scripts/install.sh [--test] --dry-run   says what it would install, changes nothing
#
# It never stops, restarts, upgrades or reconfigures anything it did not start: a Debian package is
# installed only when the command it provides is missing (any nginx, redis-server or postgres binary
# already on the machine is used as it is: the tests start their own instances on their own loopback
# ports), and while it installs a package that brings a service (nginx, redis-server, postgresql) the
# service is kept from starting (policy-rc.d, only when the machine has none of its own). dnsmasq comes from dnsmasq-base: the binary alone, no service (the tests start
# their own on a loopback port). Everything it says goes to stderr, before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --dry-run) dry_run=1 ;;
    *) echo "install.sh: unknown option $arg (expected --test, --dry-run)" >&2; exit 2 ;;
  esac
done

say() { echo "install.sh: $*" >&2; }

# Where an nginx may live outside PATH (a non-root PATH often lacks the sbin directories).
nginx_candidates=${AUDITOR_NGINX_CANDIDATES-/usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx}

find_nginx() {
  command -v nginx 2>/dev/null && return 0
  local candidate
  for candidate in $nginx_candidates; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
installs_nginx=0
installs_service=0
find_postgres() {
  command -v postgres >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}
if [ "$want_test" = 1 ]; then
  if nginx_path=$(find_nginx); then
    say "nginx: using the installed $nginx_path (its own service, if any, is left alone)"
  else
    missing+=(nginx)
    installs_nginx=1
  fi
  if command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; then
    say "dnsmasq: using the installed one"
  else
    missing+=(dnsmasq-base)
  fi
  # the fleet tests: a Redis broker and a PostgreSQL history store, started by the tests themselves
  if command -v redis-server >/dev/null 2>&1; then
    say "redis-server: using the installed one (its own service, if any, is left alone)"
  else
    missing+=(redis-server)
    installs_service=1
  fi
  if find_postgres; then
    say "postgres: using the installed one (its own service, if any, is left alone)"
  else
    missing+=(postgresql)
    installs_service=1
  fi
  # the dashboard's browser tests
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
[ "$installs_nginx" = 1 ] && installs_service=1

if [ "${#missing[@]}" -gt 0 ]; then
  say "Debian packages to install: ${missing[*]}"
  if [ "$dry_run" = 1 ]; then
    [ "$installs_service" = 1 ] && say "the packages that bring a service (nginx, redis-server, postgresql) would be installed with their service kept from starting"
  elif command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    packages=("${missing[@]}")
    if [ "$installs_nginx" = 1 ]; then
      # the smallest nginx this release packages (nginx-light left Debian in 13)
      light=$(apt-cache policy nginx-light 2>/dev/null | awk '/Candidate:/ {print $2}')
      if [ -n "$light" ] && [ "$light" != "(none)" ]; then
        packages=("${packages[@]/#nginx/nginx-light}")
      fi
    fi
    # Keep a freshly installed nginx, redis or PostgreSQL from starting a system service: only when
    # the machine has no policy-rc.d of its own, removed again whatever happens.
    made_policy=0
    if [ "$installs_service" = 1 ] && [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
      trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    say "installing: ${packages[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; made_policy=0; fi
  else
    say "please install: ${missing[*]}"
    exit 1
  fi
else
  say "Debian packages: nothing to install"
fi

extras=""
[ "$want_test" = 1 ] && extras="[test]"
if [ "$dry_run" = 1 ]; then
  say "would install the Python packages of .${extras} into ./.venv"
  exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# This machine's pip configuration names local mirrors that may be absent: drop those warnings only.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
