#!/usr/bin/env bash
# Start two local Docker registries (Debian's docker-registry, i.e.
# distribution v2) on loopback for vbe's tests:
#   open     127.0.0.1:5000  no auth
#   private  127.0.0.1:5001  htpasswd auth, user vbe-user / password vbe-pass
#                             (test-only credentials)
# Docker treats 127.0.0.0/8 registries as insecure automatically, so plain
# HTTP needs no daemon configuration. Idempotent: a registry whose port
# already answers the way it should is left alone.
set -euo pipefail

BASE_DIR=/var/lib/vbe-registry
LOG_DIR=/var/log
WAIT_SECONDS=30
PRIVATE_USER=vbe-user
PRIVATE_PASS=vbe-pass

log() { printf '[start-registries] %s\n' "$*"; }
die() { printf '[start-registries] ERROR: %s\n' "$*" >&2; exit 1; }

command -v docker-registry >/dev/null 2>&1 || die "docker-registry not installed (run docker/setup-engine.sh first)"
command -v htpasswd >/dev/null 2>&1 || die "htpasswd not installed (run docker/setup-engine.sh first)"
command -v curl >/dev/null 2>&1 || die "curl not installed"

# HTTP status of GET /v2/ on 127.0.0.1:PORT, or 000 when nothing answers.
status_of() {
  curl -s --noproxy '*' -o /dev/null --max-time 2 -w '%{http_code}' \
    "http://127.0.0.1:$1/v2/" 2>/dev/null || true
}

write_config() { # name port auth(yes|no)
  local name=$1 port=$2 auth=$3 dir="$BASE_DIR/$1"
  mkdir -p "$dir/data"
  {
    cat <<YAML
# Written by docker/start-registries.sh -- local test registry "$name".
version: 0.1
log:
  level: info
  fields:
    service: vbe-registry-$name
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
YAML
    if [ "$auth" = yes ]; then
      cat <<YAML
auth:
  htpasswd:
    realm: vbe-$name
    path: $dir/htpasswd
YAML
    fi
  } >"$dir/config.yml.tmp"
  mv "$dir/config.yml.tmp" "$dir/config.yml"

  if [ "$auth" = yes ]; then
    # (Re)write the htpasswd file unless it already holds the test user with
    # the test password. bcrypt is the only scheme distribution accepts.
    if ! htpasswd -vb "$dir/htpasswd" "$PRIVATE_USER" "$PRIVATE_PASS" >/dev/null 2>&1; then
      htpasswd -Bbn "$PRIVATE_USER" "$PRIVATE_PASS" >"$dir/htpasswd.tmp"
      mv "$dir/htpasswd.tmp" "$dir/htpasswd"
    fi
  fi
}

# start_registry name port expected-status auth
start_registry() {
  local name=$1 port=$2 want=$3 auth=$4 got
  got=$(status_of "$port")
  if [ "$got" = "$want" ]; then
    log "$name registry already answers on 127.0.0.1:$port (HTTP $got), skipping"
    return 0
  fi
  if [ "$got" != "000" ]; then
    die "127.0.0.1:$port answers HTTP $got on /v2/ (expected $want for the $name registry); something else holds the port"
  fi
  write_config "$name" "$port" "$auth"
  local logf="$LOG_DIR/vbe-registry-$name.log"
  log "starting $name registry on 127.0.0.1:$port (config: $BASE_DIR/$name/config.yml, log: $logf)"
  setsid nohup docker-registry serve "$BASE_DIR/$name/config.yml" >>"$logf" 2>&1 </dev/null &
}

wait_registry() { # name port expected-status
  local name=$1 port=$2 want=$3 got=000 i
  for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    got=$(status_of "$port")
    if [ "$got" = "$want" ]; then
      log "$name registry ready on 127.0.0.1:$port (GET /v2/ -> HTTP $got)"
      return 0
    fi
    sleep 0.5
  done
  echo "----- last lines of $LOG_DIR/vbe-registry-$name.log -----" >&2
  tail -n 30 "$LOG_DIR/vbe-registry-$name.log" >&2 2>/dev/null || true
  die "$name registry on 127.0.0.1:$port did not answer HTTP $want within ${WAIT_SECONDS}s (last: $got)"
}

mkdir -p "$BASE_DIR" "$LOG_DIR"
start_registry open 5000 200 no
start_registry private 5001 401 yes
wait_registry open 5000 200
wait_registry private 5001 401
