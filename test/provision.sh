#!/usr/bin/env bash
# Installs what the test suite needs, from Debian's packages, when it is missing. Idempotent: a machine
# that has everything does nothing here. Needs root (or sudo) for apt-get; says so plainly otherwise.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] && have pgbench || need+=(postgresql postgresql-contrib)
have mariadbd || have /usr/sbin/mariadbd || need+=(mariadb-server mariadb-client)
have mkfs.btrfs || need+=(btrfs-progs)
have mkfs.xfs || need+=(xfsprogs)
have sqlite3 || need+=(sqlite3)
have losetup || need+=(mount)
have strace || need+=(strace)
# The status page is tested in a real headless browser (test/status).
have chromium || have /usr/bin/chromium || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "provision: installing ${need[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "provision: these Debian packages are missing and this user cannot install them: ${need[*]}" >&2
      echo "provision: run as root: apt-get install -y ${need[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Debian starts the services it installs; the tests run their own throwaway servers, so stop those.
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  for svc in postgresql mariadb; do
    if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi
echo "provision: postgresql $(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1), $(/usr/sbin/mariadbd --version 2>/dev/null | awk '{print $3}' || echo 'no mariadb'), $(mkfs.btrfs --version 2>/dev/null | head -n1), $(mkfs.xfs -V 2>/dev/null)"
