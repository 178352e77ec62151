#!/usr/bin/env bash
# make test-host: hull's kernel integration tests inside the project's own guest (tools/vm.sh), the host users run:
# Debian 12 booted with systemd as PID 1 and only cgroup v2 (this development host is hybrid, without systemd, and
# its cgroup mounts must not be changed). The tests run as root in a system.slice unit, as an admin's command would,
# with the engines' daemons masked (they are not needed there): once with the cgroupfs driver, once with
# `--systemd-cgroup` on every hull command (HULL_TEST_CGROUP_DRIVER=systemd), followed by the fault sweep with the
# systemd driver (HOST_FAULT_POINTS kill points per command, default 12: no unit may be left). Then, in a second
# guest, tools/host-engines.sh runs podman (root and rootless), docker, containerd's ctr and its CRI plugin at their
# defaults through hull and through runc.
#   make test-host, or HULL=BINARY tools/test-host.sh [TEST_BINARY_NAME...] with the cargo environment the Makefile
#   gives its hull builds (HULL_ENV: static, non-PIE). Named test binaries run alone (both drivers, no fault sweep,
#   no engines): a quicker loop while working on one.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=("$@")
everything=0
if [ ${#tests[@]} -eq 0 ]; then
  everything=1
  tests=(lifecycle cgroups cgroup_effects events errors container_view exec terminal seccomp escapes hooks userns features rootless systemd checkpoint faults)
fi
tools/vm.sh setup
# Build the test binaries and find their paths (cargo prints them as JSON artifacts). They are static, like hull.
mapfile -t bins < <(cargo test --release --no-run --message-format=json "${tests[@]/#/--test=}" 2>/dev/null \
  | jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.kind == ["test"]) | .executable')
[ ${#bins[@]} -eq ${#tests[@]} ] || { echo "test-host: expected ${#tests[@]} test binaries, found: ${bins[*]}" >&2; exit 1; }
hull=$(realpath "${HULL:?set HULL to the hull binary (make sets it)}")
rootfs=$PWD/build/rootfs
payload=$(mktemp -d)
trap 'rm -rf "$payload"' EXIT
tar -C "$rootfs" -cf "$payload/rootfs.tar" .
script="mkdir -p $rootfs && tar -xf rootfs.tar -C $rootfs || exit 125;"
script+=' echo "guest: $(systemctl is-system-running), cgroup $(cut -d: -f3 /proc/self/cgroup), v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)";'
script+=' failed=0;'
for driver in cgroupfs systemd; do
  for bin in "${bins[@]}"; do
    name=$(basename "$bin")
    case "$name" in faults-*) continue ;; esac
    # The rootless tests are rootless without systemd (a private XDG_RUNTIME_DIR, no user bus); the systemd driver's
    # rootless path is rootless podman's, in tools/host-engines.sh.
    if [ "$driver" = systemd ]; then case "$name" in rootless-*) continue ;; esac; fi
    script+=" echo \"== $name ($driver driver)\"; HULL_TEST_CGROUP_DRIVER=$driver $bin --test-threads=2 || failed=1;"
  done
done
for bin in "${bins[@]}"; do
  case "$(basename "$bin")" in
    faults-*) script+=" echo \"== $(basename "$bin") (systemd driver)\"; HULL_TEST_CGROUP_DRIVER=systemd HULL_FAULT_POINTS=${HOST_FAULT_POINTS:-12} $bin --test-threads=2 || failed=1;" ;;
  esac
done
script+=' exit $failed'
copies=(-b "$hull")
for bin in "${bins[@]}"; do copies+=(-b "$bin"); done
status=0
tools/vm.sh run -n "${copies[@]}" -e "HULL_TEST_ROOTFS=$rootfs" -t 2400 "$payload" sh -c "$script" || status=1
[ "$everything" = 1 ] || exit $status
# Then the engines at their defaults, through hull and through runc, in a guest of their own (daemons running).
engines=$(mktemp -d)
trap 'rm -rf "$payload" "$engines"' EXIT
cp tools/host-engines.sh "$engines/"
cp -r tools/clients/cri "$engines/cri"
tools/vm.sh run -b "$hull" -t 1800 "$engines" bash host-engines.sh "$hull" || status=1
exit $status
