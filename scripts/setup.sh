#!/usr/bin/env bash
# Installs everything Touchline needs on a Debian machine with Node and npm: a few Debian packages
# with apt-get, and the npm packages exactly as package-lock.json pins them (`npm ci`; Bun itself
# comes from npm as a dev dependency, in node_modules/.bin). Idempotent; fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages: `need PACKAGE PROGRAM` installs PACKAGE unless PROGRAM (a command name, or an
# absolute path) is already there. Add a package with one more line.
missing=()
need() {
  case "$2" in
    /*) [ -x "$2" ] && return ;;
    *) { command -v "$2" || [ -x "/usr/sbin/$2" ]; } >/dev/null 2>&1 && return ;;
  esac
  missing+=("$1")
}
need nats-server nats-server
need haproxy haproxy
need chromium /usr/bin/chromium
need openssl openssl # the TLS tests make a self-signed certificate with it
need prometheus promtool # promtool and prometheus check cluster/prometheus (test/observability.test.ts)
need nginx nginx # test/integration/nginx.test.ts runs cluster/nginx/touchline.conf in front of a node
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages, frozen: npm ci installs exactly the lock file and never rewrites it.
if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages with npm ci (Bun included)" >&2
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    cat >&2 <<'MSG'
setup: FAILED: `npm ci` could not install the packages pinned in package-lock.json (its errors are above).
setup: If package.json changed, regenerate the lock (rm -rf node_modules package-lock.json && npm install)
setup: and commit package-lock.json; this script never falls back to `npm install`.
MSG
    exit 1
  fi
fi
if ! node_modules/.bin/bun --version >/dev/null; then
  echo "setup: FAILED: node_modules/.bin/bun does not run (npm ci must run install scripts: the bun package's postinstall fetches its binary)" >&2
  exit 1
fi
