#!/usr/bin/env bash
# Install Debian's chromium for the HTML report tests (driven by playwright-core with
# executablePath /usr/bin/chromium; no browser is downloaded). Idempotent: does nothing
# when /usr/bin/chromium is already there.
set -euo pipefail

log() { printf '[setup-chromium] %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ -x /usr/bin/chromium ]; then
  log "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi
log "installing chromium"
as_root apt-get update
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends chromium
[ -x /usr/bin/chromium ] || { printf '[setup-chromium] ERROR: /usr/bin/chromium missing after the install\n' >&2; exit 1; }
log "installed: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
