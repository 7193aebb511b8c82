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

echo "test dependencies are installed"
