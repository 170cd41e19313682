# Sourced by tools/test: starts a private dockerd (vfs storage, no networking, its own data
# root, exec root, socket and pidfile), exports DOCKER_HOST, and stops it by pid on exit.
start_private_dockerd() {
  install_packages docker.io skopeo umoci busybox-static file python3
  DSQ_DOCKER_DIR=$(mktemp -d /tmp/dsq-dockerd.XXXXXX)
  # DSQ_DOCKERD_TMPFS=SIZE puts the daemon's data on a tmpfs (the daemon benchmark does).
  if [ -n "${DSQ_DOCKERD_TMPFS:-}" ]; then
    mkdir -p "$DSQ_DOCKER_DIR/data"
    mount -t tmpfs -o "size=$DSQ_DOCKERD_TMPFS" tmpfs "$DSQ_DOCKER_DIR/data"
  fi
  local sock="$DSQ_DOCKER_DIR/docker.sock"
  dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root "$DSQ_DOCKER_DIR/data" --exec-root "$DSQ_DOCKER_DIR/exec" \
    -H "unix://$sock" --pidfile "$DSQ_DOCKER_DIR/docker.pid" >"$DSQ_DOCKER_DIR/log" 2>&1 &
  DSQ_DOCKERD_PID=$!
  trap stop_private_dockerd EXIT
  export DOCKER_HOST="unix://$sock"
  # dockerd runs its own containerd; the tests import the OCI layout into it as well.
  export DSQ_CONTAINERD_SOCKET="$DSQ_DOCKER_DIR/exec/containerd/containerd.sock"
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$DSQ_DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not start; its log:" >&2
  tail -20 "$DSQ_DOCKER_DIR/log" >&2
  return 1
}

stop_private_dockerd() {
  if [ -n "${DSQ_DOCKERD_PID:-}" ] && kill -0 "$DSQ_DOCKERD_PID" 2>/dev/null; then
    kill "$DSQ_DOCKERD_PID"
    for _ in $(seq 1 40); do kill -0 "$DSQ_DOCKERD_PID" 2>/dev/null || break; sleep 0.25; done
  fi
  # dockerd leaves its vfs layers behind; they are ours alone.
  [ -n "${DSQ_DOCKERD_TMPFS:-}" ] && umount "$DSQ_DOCKER_DIR/data" 2>/dev/null
  [ -n "${DSQ_DOCKER_DIR:-}" ] && rm -rf "$DSQ_DOCKER_DIR"
}
