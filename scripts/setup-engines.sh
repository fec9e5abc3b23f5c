#!/usr/bin/env bash
# Make a Debian 12 machine able to run skillcell's sandboxes: bubblewrap, a Docker daemon,
# and a local stand-in for python:3.11-slim (no container registry is reachable here).
# Idempotent: a warm run only checks, in about a second. Run as root.
#
# Environment:
#   SKILLCELL_SETUP_PODMAN=1   also install Podman and serve its Docker API on
#                              unix:///run/skillcell-podman.sock (default: off)
#   SKILLCELL_IMAGE_CACHE      where built rootfs tarballs are kept
#                              (default: /var/cache/skillcell/images)
set -euo pipefail

IMAGE=python:3.11-slim
LOCAL_TAG=skillcell/python:3.11-local
CACHE_DIR=${SKILLCELL_IMAGE_CACHE:-/var/cache/skillcell/images}
DOCKERD_LOG=/var/log/skillcell-dockerd.log
PODMAN_SOCK=/run/skillcell-podman.sock
PODMAN_LOG=/var/log/skillcell-podman.log
PODMAN_CONF=/etc/containers/containers.conf

# The image recipe. Its sha256 names the cached tarball and labels the image, so editing
# any line here rebuilds the stand-in on the next run. dpkg's path-exclude takes fnmatch
# globs (no {a,b} braces), hence one option per directory.
ROOTFS_RECIPE=(
  mmdebstrap --variant=essential --include=python3,python3-pip,ca-certificates,tzdata
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt=path-exclude=/usr/share/doc/*
  --dpkgopt=path-exclude=/usr/share/man/*
  --dpkgopt=path-exclude=/usr/share/locale/*
  --dpkgopt=path-exclude=/usr/share/info/*
  bookworm
)
IMPORT_CHANGES=(
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  -c 'ENV LANG=C.UTF-8'
  -c 'CMD ["python3"]'
)
RECIPE_SHA=$(printf '%s\n' "${ROOTFS_RECIPE[@]}" "${IMPORT_CHANGES[@]}" | sha256sum | cut -d' ' -f1)

log() { printf 'setup-engines: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0"

# One run at a time: two concurrent runs would start two daemons or build twice.
# Every daemon started below gets 9>&- so it does not hold this lock after we exit.
mkdir -p /run/lock
exec 9>/run/lock/skillcell-setup.lock
flock 9

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
has() { command -v "$1" >/dev/null 2>&1; }

install_packages() {
  local wanted=() pkg
  has bwrap || wanted+=(bubblewrap); has slirp4netns || wanted+=(slirp4netns)  # its network
  { has dockerd && has docker; } || wanted+=(docker.io)
  has mmdebstrap || wanted+=(mmdebstrap)
  { has newuidmap && has newgidmap; } || wanted+=(uidmap)
  { has setpriv && has prlimit && has flock; } || wanted+=(util-linux)
  { has ps && has pgrep; } || wanted+=(procps)
  installed python3-venv || wanted+=(python3-venv)
  has node || wanted+=(nodejs)
  has npm || wanted+=(npm)
  if [ "${SKILLCELL_SETUP_PODMAN:-0}" = 1 ]; then
    has podman || wanted+=(podman)
    has runc || wanted+=(runc)
    has catatonit || wanted+=(catatonit)  # podman's --init
  fi
  [ ${#wanted[@]} -gt 0 ] || return 0

  log "installing ${wanted[*]}"
  # Installing docker.io on a systemd host would start docker.service with its default
  # flags, which rewrite the host's iptables. Forbid service starts while apt runs.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}"
  } >/var/log/skillcell-apt.log 2>&1 || rc=$?
  [ "$own_policy" = 0 ] || rm -f "$policy"
  if [ "$rc" != 0 ]; then
    tail -n 20 /var/log/skillcell-apt.log >&2
    die "apt-get failed (exit $rc); full log: /var/log/skillcell-apt.log"
  fi
  for pkg in bwrap dockerd docker mmdebstrap setpriv prlimit; do
    has "$pkg" || die "$pkg is still missing after apt-get install"
  done
}

docker_ok() { timeout 10 docker info >/dev/null 2>&1; }

# Waits up to 30 s for the Docker API at $DOCKER_HOST (the default socket when unset).
wait_for_api() { # what, its log
  local i
  for i in $(seq 60); do
    docker_ok && return 0
    sleep 0.5
  done
  tail -n 20 "$2" >&2 || true
  die "$1 did not answer within 30 s; see $2"
}

start_dockerd() {
  docker_ok && return 0
  if pgrep -x dockerd >/dev/null; then
    log "dockerd is running but not answering yet; waiting for it"
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd --iptables=false --ip-masq=false --bridge=none \
      </dev/null >"$DOCKERD_LOG" 2>&1 9>&- &
  fi
  wait_for_api "the Docker daemon" "$DOCKERD_LOG"
}

image_label() {
  docker image inspect -f '{{index .Config.Labels "org.skillcell.recipe"}}' "$1" 2>/dev/null
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }

# Prints the path of the rootfs tarball for the current recipe, building it if needed.
rootfs_tarball() {
  local tar="$CACHE_DIR/$RECIPE_SHA.tar"
  if [ ! -s "$tar" ]; then
    mkdir -p "$CACHE_DIR"
    log "building the python3 rootfs with mmdebstrap (~40 s; log: $CACHE_DIR/build.log)"
    local tmp="$CACHE_DIR/.partial-$$.tar"
    if ! "${ROOTFS_RECIPE[@]}" "$tmp" >"$CACHE_DIR/build.log" 2>&1; then
      rm -f "$tmp"
      tail -n 20 "$CACHE_DIR/build.log" >&2
      die "mmdebstrap failed; see $CACHE_DIR/build.log"
    fi
    mv -f "$tmp" "$tar"
  fi
  printf '%s\n' "$tar"
}

ensure_image() {
  # A real python:3.11-slim (pulled from a registry) is left alone. Ours carries the
  # recipe label and the LOCAL_TAG; a stand-in from an older recipe is replaced.
  local old tar
  old=$(image_id "$IMAGE" || true)
  if [ -n "$old" ]; then
    [ "$old" = "$(image_id "$LOCAL_TAG" || true)" ] || return 0
    [ "$(image_label "$IMAGE")" != "$RECIPE_SHA" ] || return 0
    log "the local $IMAGE stand-in comes from an older recipe; replacing it"
  fi
  tar=$(rootfs_tarball)
  log "importing $tar as $IMAGE and $LOCAL_TAG${DOCKER_HOST:+ into $DOCKER_HOST}"
  docker import "${IMPORT_CHANGES[@]}" -c "LABEL org.skillcell.recipe=$RECIPE_SHA" \
    "$tar" "$LOCAL_TAG" >/dev/null
  docker tag "$LOCAL_TAG" "$IMAGE"
  [ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
}

smoke_run() {
  [ "$(docker run --rm --network none --read-only --user 65534:65534 "$IMAGE" \
    python3 -c 'print(1)')" = 1 ] || die "a smoke run of $IMAGE failed (${DOCKER_HOST:-docker})"
}

# Called with DOCKER_HOST pointing at Podman's socket, so the image and the smoke run go
# through the same Docker API skillcell uses.
setup_podman() {
  # Podman 4.3 here needs runc, cgroupfs and file events (crun fails on this hybrid
  # cgroup layout), and explicit ulimits (root lacks CAP_SYS_RESOURCE).
  if [ ! -e "$PODMAN_CONF" ]; then
    mkdir -p "$(dirname "$PODMAN_CONF")"
    cat >"$PODMAN_CONF" <<'EOF'
# Written by skillcell's scripts/setup-engines.sh.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  elif ! grep -q 'runtime = "runc"' "$PODMAN_CONF"; then
    log "warning: $PODMAN_CONF exists and does not select runc; Podman may fail here"
  fi
  if ! docker_ok; then
    if pgrep -f "podman system service --time=0 unix://$PODMAN_SOCK" >/dev/null; then
      log "the Podman API service is running but not answering yet; waiting for it"
    else
      log "starting the Podman API service on unix://$PODMAN_SOCK (log: $PODMAN_LOG)"
      rm -f "$PODMAN_SOCK"
      # From /: conmon drops an `oom` marker file into its working directory when a
      # container is OOM-killed, which would otherwise land in whatever directory ran us.
      # The subshell execs podman, and neither keeps our lock (fd 9) open.
      (cd / && exec setsid podman system service --time=0 "unix://$PODMAN_SOCK") \
        </dev/null >"$PODMAN_LOG" 2>&1 9>&- &
    fi
    wait_for_api "the Podman API service" "$PODMAN_LOG"
  fi
  ensure_image
  smoke_run
}

install_packages
start_dockerd
ensure_image

# Smoke checks: the exact sandboxes the test suite relies on.
bwrap --ro-bind / / --unshare-all --die-with-parent true ||
  die "bwrap cannot create a sandbox (are unprivileged namespaces disabled?)"
smoke_run

podman_summary=""
if [ "${SKILLCELL_SETUP_PODMAN:-0}" = 1 ]; then
  DOCKER_HOST=unix://$PODMAN_SOCK setup_podman
  podman_summary=", podman $(DOCKER_HOST=unix://$PODMAN_SOCK docker version -f '{{.Server.Version}}') at unix://$PODMAN_SOCK"
fi

if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && ! id -nG "$SUDO_USER" | grep -qw docker; then
  log "note: $SUDO_USER is not in the docker group, so Docker tests will be skipped for them"
fi

stand_in=""
[ "$(image_id "$IMAGE")" != "$(image_id "$LOCAL_TAG" || true)" ] || stand_in=" (local stand-in $LOCAL_TAG)"
printf 'skillcell engines: %s, docker server %s, %s %s%s%s\n' \
  "$(bwrap --version)" \
  "$(docker version -f '{{.Server.Version}}')" \
  "$IMAGE" "$(image_id "$IMAGE" | cut -c1-19)" "$stand_in" "$podman_summary"
