#!/usr/bin/env bash
# Installs the system services the test suite starts for itself (from temp dirs, on loopback ports).
# Idempotent: each package is installed only when its binary is missing. Needs root (apt-get).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

apt_install() {
  # A fresh machine may have no package lists yet: update once, then retry.
  apt-get install -y "$@" || { apt-get update && apt-get install -y "$@"; }
}

# OpenLDAP: a stand-in for Bottin, the collective's LDAP directory.
# Debian installs slapd in /usr/sbin, which may not be on a non-root PATH.
if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
  apt_install slapd ldap-utils
fi

# PostgreSQL: throwaway servers for the database backend's tests, the sandbox and benchmarks.
# Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin, off the PATH.
postgres_binaries_found() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then return 0; fi
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then return 0; fi
  done
  return 1
}
if ! postgres_binaries_found; then
  apt_install postgresql
fi
# initdb refuses to run as root: as root, the tests run the servers as this system user.
if ! id -u postgres >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home --shell /bin/bash postgres
fi

echo "test dependencies are installed"
