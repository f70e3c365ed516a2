#!/usr/bin/env bash
# Build the local base images vbe's tests use, offline (no image registry):
#   vbe-local/busybox:latest        FROM scratch + Debian's static busybox
#   vbe-local/python-base:bookworm  debootstrap'd Debian bookworm (minbase +
#                                   python3), imported with `docker import`
#   vbe-local/python-web:bookworm   python-base + Debian's python3-fastapi,
#                                   python3-uvicorn, python3-gunicorn, python3-flask
#                                   (apt inside `docker build`; no PyPI)
# Each image is built only when it is missing from the engine, unless
# --force is given. Usage:
#   docker/build-test-images.sh [--force] [busybox] [python-base] [python-web]
# With no image names, all are considered.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUSYBOX_IMAGE=vbe-local/busybox:latest
PYTHON_IMAGE=vbe-local/python-base:bookworm
PYTHON_WEB_IMAGE=vbe-local/python-web:bookworm
SUITE=bookworm

log() { printf '[build-test-images] %s\n' "$*"; }
die() { printf '[build-test-images] ERROR: %s\n' "$*" >&2; exit 1; }

force=0
want_busybox=0
want_python=0
want_web=0
for arg in "$@"; do
  case "$arg" in
    --force|-f) force=1 ;;
    busybox) want_busybox=1 ;;
    python-base|python) want_python=1 ;;
    python-web|web) want_web=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (usage: $0 [--force] [busybox] [python-base] [python-web])" ;;
  esac
done
if [ "$want_busybox" -eq 0 ] && [ "$want_python" -eq 0 ] && [ "$want_web" -eq 0 ]; then
  want_busybox=1
  want_python=1
  want_web=1
fi

docker info >/dev/null 2>&1 || die "docker engine not reachable (run docker/setup-engine.sh first)"

built=()
skipped=()
TMP_DIRS=()

# Unmount anything debootstrap may have left mounted inside a root dir,
# deepest first, so that removing the directory never reaches the host.
unmount_under() {
  local root=$1 m
  [ -n "$root" ] || return 0
  for m in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

cleanup() {
  local d
  for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    unmount_under "$d"
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# After a --force rebuild, drop the previous image if nothing tags it anymore.
drop_if_dangling() { # old-id
  local old=$1
  [ -n "$old" ] || return 0
  if [ -z "$(docker image inspect --format '{{join .RepoTags ","}}' "$old" 2>/dev/null)" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

needs_build() { # image
  if [ "$force" -eq 1 ]; then return 0; fi
  if have_image "$1"; then
    skipped+=("$1")
    log "$1 already present, skipping (use --force to rebuild)"
    return 1
  fi
  return 0
}

build_busybox() {
  needs_build "$BUSYBOX_IMAGE" || return 0
  [ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
  if ! /bin/busybox --help 2>&1 | head -n1 | grep -q BusyBox; then
    die "/bin/busybox is not a BusyBox binary"
  fi
  if command -v file >/dev/null 2>&1 && ! file -L /bin/busybox | grep -q 'statically linked'; then
    die "/bin/busybox is not statically linked (install busybox-static, not busybox)"
  fi
  local ctx old
  old=$(image_id "$BUSYBOX_IMAGE")
  ctx=$(mktemp -d /tmp/vbe-busybox-ctx.XXXXXX)
  TMP_DIRS+=("$ctx")
  cp "$SCRIPT_DIR/busybox/Dockerfile" "$SCRIPT_DIR/busybox/passwd" "$SCRIPT_DIR/busybox/group" "$ctx/"
  cp /bin/busybox "$ctx/busybox"
  log "building $BUSYBOX_IMAGE (legacy builder, context docker/busybox + /bin/busybox)"
  local t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build --quiet -t "$BUSYBOX_IMAGE" "$ctx" >/dev/null
  # Smoke test: applets, /tmp mode, nobody user.
  docker run --rm --network none "$BUSYBOX_IMAGE" sh -c \
    'test "$(stat -c %a /tmp)" = 1777 && id nobody >/dev/null && echo ok' | grep -qx ok \
    || die "$BUSYBOX_IMAGE smoke test failed"
  drop_if_dangling "$old"
  log "built $BUSYBOX_IMAGE in $((SECONDS - t0))s"
  built+=("$BUSYBOX_IMAGE")
}

build_python_base() {
  needs_build "$PYTHON_IMAGE" || return 0
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing (run docker/setup-engine.sh first)"
  local root old
  old=$(image_id "$PYTHON_IMAGE")
  root=$(mktemp -d /var/tmp/vbe-python-base.XXXXXX)
  TMP_DIRS+=("$root")
  # mktemp makes the directory 0700; the image's / must be 0755.
  chmod 0755 "$root"
  log "debootstrap --variant=minbase --include=python3 $SUITE (takes about 1-2 minutes)"
  local t0=$SECONDS
  # No mirror argument: debootstrap uses Debian's default mirror and writes
  # it into the image's /etc/apt/sources.list, so apt keeps working in
  # images built FROM this one.
  if ! debootstrap --variant=minbase --include=python3 "$SUITE" "$root" >"$root.debootstrap.log" 2>&1; then
    tail -n 40 "$root.debootstrap.log" >&2 || true
    tail -n 40 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
    rm -f "$root.debootstrap.log"
    die "debootstrap failed"
  fi
  rm -f "$root.debootstrap.log"
  unmount_under "$root"
  [ -x "$root/usr/bin/python3" ] || die "debootstrap finished but usr/bin/python3 is missing"
  [ -s "$root/etc/apt/sources.list" ] || die "debootstrap left no etc/apt/sources.list"

  ln -sfn python3 "$root/usr/bin/python"
  # Slim: package lists and caches are re-fetched by `apt-get update`.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb \
         "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
         "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/bootstrap.log \
         "$root"/tmp/* "$root"/var/tmp/*
  mkdir -p "$root/var/lib/apt/lists/partial"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  # Behave like Debian's official container images: no binary package caches
  # left behind by `apt-get update` (they add ~75 MB to every layer that
  # installs something), no translation indexes, and no service starts
  # during `apt-get install` in a Dockerfile.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APTCONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APTCONF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf '#!/bin/sh\n# no services start inside container builds\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  # debootstrap copies the host's resolver and hostname; docker provides both.
  : >"$root/etc/resolv.conf"
  rm -f "$root/etc/hostname"

  log "importing $PYTHON_IMAGE"
  tar --numeric-owner --xattrs -C "$root" -c . | docker import \
    --change 'CMD ["python3"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    - "$PYTHON_IMAGE" >/dev/null
  docker run --rm --network none "$PYTHON_IMAGE" python -c 'import sys, json, ctypes; print("ok")' | grep -qx ok \
    || die "$PYTHON_IMAGE smoke test failed"
  drop_if_dangling "$old"
  log "built $PYTHON_IMAGE in $((SECONDS - t0))s"
  built+=("$PYTHON_IMAGE")
}

# Web server packages as Debian ships them (FastAPI, uvicorn, gunicorn, Flask),
# for test servers in the patterns users copy (tiangolo/uvicorn-gunicorn-fastapi).
build_python_web() {
  needs_build "$PYTHON_WEB_IMAGE" || return 0
  have_image "$PYTHON_IMAGE" || die "$PYTHON_IMAGE missing (build it first: $0 python-base)"
  local ctx old
  old=$(image_id "$PYTHON_WEB_IMAGE")
  ctx=$(mktemp -d /tmp/vbe-python-web-ctx.XXXXXX)
  TMP_DIRS+=("$ctx")
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $PYTHON_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3-fastapi python3-uvicorn python3-gunicorn python3-flask \\
 && rm -rf /var/lib/apt/lists/*
DOCKERFILE
  log "building $PYTHON_WEB_IMAGE (apt-get install python3-fastapi python3-uvicorn python3-gunicorn python3-flask)"
  local t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build --quiet -t "$PYTHON_WEB_IMAGE" "$ctx" >/dev/null
  docker run --rm --network none "$PYTHON_WEB_IMAGE" python3 -c 'import fastapi, uvicorn, gunicorn, flask; print("ok")' | grep -qx ok \
    || die "$PYTHON_WEB_IMAGE smoke test failed"
  drop_if_dangling "$old"
  log "built $PYTHON_WEB_IMAGE in $((SECONDS - t0))s"
  built+=("$PYTHON_WEB_IMAGE")
}

if [ "$want_busybox" -eq 1 ]; then build_busybox; fi
if [ "$want_python" -eq 1 ]; then build_python_base; fi
if [ "$want_web" -eq 1 ]; then build_python_web; fi

log "built:   ${built[*]:-(none)}"
log "skipped: ${skipped[*]:-(none)}"
