# Sourced by the daemon tests. tree_of IMAGE OUT: the filesystem of a container created from
# IMAGE (docker export), one line per path "type mode uid:gid size mtime path [target]" and a
# SHA-256 per file, leaving out what Docker itself creates in every container.
tree_of() {
  local image="$1" out="$2" id
  id=$(docker create "$image" /none)
  echo "$id" >>"$WORK/containers"
  mkdir -p "$out.d"
  docker export "$id" | tar -x -C "$out.d"
  local skip=(! -path ./.dockerenv ! -path ./etc ! -path ./etc/hostname ! -path ./etc/hosts
    ! -path ./etc/resolv.conf ! -path ./etc/mtab ! -path ./dev ! -path './dev/*' ! -path ./proc
    ! -path ./sys)
  (cd "$out.d" && find . -mindepth 1 "${skip[@]}" -printf '%y %m %U:%G %s %T@ %p %l\n' | sort -k6 >"$out")
  (cd "$out.d" && find . -type f "${skip[@]}" -exec sha256sum {} + | sort -k2 >>"$out")
}
