#!/usr/bin/env bash
# Make sure the Debian packages vbe's tests rely on are installed and that a
# Docker engine (dockerd) answers on the default socket. Idempotent: safe to
# run again on a machine where everything is already in place.
set -euo pipefail

DOCKERD_LOG=/var/log/vbe-dockerd.log
WAIT_SECONDS=60

log() { printf '[setup-engine] %s\n' "$*"; }
die() { printf '[setup-engine] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- 1. packages ------------------------------------------------------------
need_install=0
for cmd in dockerd docker docker-registry debootstrap htpasswd curl; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    log "missing command: $cmd"
    need_install=1
  fi
done
# The static busybox is required (it is copied into a FROM-scratch image).
if [ ! -x /bin/busybox ] || ! dpkg -s busybox-static >/dev/null 2>&1; then
  log "missing static busybox (/bin/busybox from busybox-static)"
  need_install=1
fi

if [ "$need_install" -eq 1 ]; then
  log "installing docker.io docker-registry busybox-static debootstrap apache2-utils curl"
  as_root apt-get update
  # The docker.io and docker-registry maintainer scripts try to start their
  # services. There is no systemd here, and a stock docker-registry service
  # would grab port 5000 with Debian's default config, so forbid service
  # starts during the install (policy-rc.d exit 101) unless a policy exists.
  temp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 0755 /usr/sbin/policy-rc.d
    temp_policy=1
  fi
  rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    docker.io docker-registry busybox-static debootstrap apache2-utils curl || rc=$?
  if [ "$temp_policy" -eq 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" -eq 0 ] || die "apt-get install failed (exit $rc)"
else
  log "packages already installed"
fi

# --- 2. docker engine -------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "docker engine already running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?'))"
  exit 0
fi

# A dockerd that was killed hard leaves its pid file behind; dockerd itself
# copes with a stale pid file, but refuses to start when the pid is alive.
if [ -f /var/run/docker.pid ]; then
  oldpid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [ -n "$oldpid" ] && kill -0 "$oldpid" 2>/dev/null; then
    log "dockerd (pid $oldpid) is running but not answering yet; waiting for it"
  else
    log "removing stale /var/run/docker.pid"
    as_root rm -f /var/run/docker.pid
    oldpid=""
  fi
else
  oldpid=""
fi

if [ -z "$oldpid" ]; then
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid + nohup: detach from this shell's session so the daemon survives
  # the end of this script (and of CI steps that run it).
  as_root setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

for ((i = 0; i < WAIT_SECONDS; i++)); do
  if docker info >/dev/null 2>&1; then
    log "docker engine is up after ${i}s ($(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 1
done

echo "----- last lines of $DOCKERD_LOG -----" >&2
tail -n 40 "$DOCKERD_LOG" >&2 2>/dev/null || true
die "docker engine did not answer 'docker info' within ${WAIT_SECONDS}s"
