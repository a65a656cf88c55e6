#!/usr/bin/env bash
# hack/ci-deps.sh — make the machine ready for the root test suite
# (test/root/: real loop devices, FUSE, ext4 images, a real PostgreSQL
# server). Idempotent.
#
# As root: installs the Debian packages below when any is missing (apt-get
# update only then), loads the loop and fuse kernel modules when they are
# modules (best effort: often built in), and prints one line saying what it
# did. Not as root: prints a loud warning and exits 0 (the root tests then
# skip themselves, loudly).
#
#   fuse3          fusermount3, /dev/fuse userspace side
#   python3-fusepy Python module `fusepy` for /usr/bin/python3 (test/helpers/eiofs.py;
#                  not the pyenv/venv python3 that may come first on PATH)
#   e2fsprogs      mkfs.ext4, debugfs
#   util-linux     losetup, mount, umount, dmesg (`dmesg -x` in test/root/log-formats.test.ts),
#                  unshare and setpriv (a journald without audit capabilities)
#   procps         pgrep, pkill, ps
#   postgresql     initdb, pg_ctl (/usr/lib/postgresql/<ver>/bin) and the
#                  `postgres` user, for the throwaway clusters of
#                  test/helpers/postgres.ts (brings postgresql-client too).
#                  No system cluster is created or started: the tests make
#                  their own (see create_main_cluster below).
#   systemd        systemd-journald and journalctl for test/root/journald.test.ts,
#                  which runs journald as a namespace instance in a private
#                  mount namespace (systemd need not be PID 1; nothing is
#                  enabled or started on the host), and for
#                  test/root/log-formats.test.ts, which runs the default
#                  instance (it reads /dev/kmsg) the same way for real
#                  `journalctl -k` output
#   iproute2       ip (network namespaces, veth, bridges) for
#                  test/root/multicast-netns.test.ts
#   iptables       random packet loss in those namespaces (`-m statistic`;
#                  the test kernel has no netem qdisc)
#   openssl        throwaway CA, serving/client certs and service-account
#                  keys for the real kube-apiserver of test/helpers/envtest.ts
#                  and hack/envtest.sh (its binaries are built from Go modules
#                  by hack/envtest-build.sh with the machine's Go, not apt)
#   podman, runc  build and run the peripety image with no registry (hack/image.sh,
#                 test/root/image.test.ts); runc because crun refuses hybrid cgroups
#   debootstrap   the Debian root file system hack/image.sh imports as its base stand-in
#   containerd, containernetworking-plugins
#                 the real node of hack/node.sh (npm run e2e): Debian's containerd 1.6
#                 (ctr too) with runc, and the bridge/host-local/portmap CNI plugins
#   gcc, libc6-dev  the static pause binary of the node's pod sandboxes (hack/node-build.sh)
#   the ShellCheck linter: lints hack/*.sh and hack/e2e-kind.sh (test/unit/packaging/e2e-kind.test.ts)
set -euo pipefail

packages=(fuse3 python3-fusepy e2fsprogs util-linux procps postgresql systemd iproute2 iptables openssl podman runc debootstrap containerd containernetworking-plugins gcc libc6-dev shellcheck)

if [ "$(id -u)" -ne 0 ]; then
  echo "hack/ci-deps.sh: *** WARNING: NOT ROOT — installed nothing; tests that need the real kernel (loop devices, FUSE, mount) will be SKIPPED. Run as root (CI does). ***" >&2
  exit 0
fi

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

# Kernel pieces: load them if they are modules; built-in ones need nothing.
modules_note=""
for m in loop fuse; do
  if command -v modprobe >/dev/null 2>&1; then
    modprobe "$m" >/dev/null 2>&1 || true
  fi
done
[ -e /dev/loop-control ] || modules_note+=" WARNING: /dev/loop-control missing (no loop support?)."
[ -e /dev/fuse ] || modules_note+=" WARNING: /dev/fuse missing (no FUSE support?)."

did=""
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "hack/ci-deps.sh: missing ${missing[*]} and no apt-get on this machine; install them by hand" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postgresql-common would create and start a "main" cluster on
  # install; the tests need none, and a system server on 5432 only gets in
  # the way. Its createcluster.conf includes this directory.
  mkdir -p /etc/postgresql-common/createcluster.d
  nomain=/etc/postgresql-common/createcluster.d/peripety-no-main-cluster.conf
  [ -f "$nomain" ] || echo 'create_main_cluster = false' > "$nomain"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "hack/ci-deps.sh: apt-get failed installing ${missing[*]}" >&2
    exit 1
  fi
  did="installed ${missing[*]}"
else
  did="all present (${packages[*]}), installed nothing"
fi

# The module must be importable by the interpreter eiofs.py runs under.
if ! /usr/bin/python3 -c 'import fusepy' >/dev/null 2>&1; then
  modules_note+=" WARNING: /usr/bin/python3 cannot import fusepy."
fi

echo "hack/ci-deps.sh: ${did}; loop/fuse kernel support checked.${modules_note}"
