#!/usr/bin/env bash
# Run hull's kernel integration tests inside a throw-away QEMU guest whose only cgroup hierarchy is pure cgroup v2
# (this development host is hybrid, and its cgroup mounts must not be changed). Uses ../shared/tools/v2vm.sh.
#   make test-v2, or HULL=BINARY tools/test-v2.sh [TEST_BINARY_NAME...] (default: every kernel integration test)
# with the cargo environment the Makefile gives its hull builds (HULL_ENV: static, non-PIE).
set -euo pipefail
cd "$(dirname "$0")/.."
v2vm=${V2VM:-../shared/tools/v2vm.sh}
[ -x "$v2vm" ] || { echo "test-v2: $v2vm not found (the shared tools sit beside the checkout)" >&2; exit 1; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(lifecycle cgroups cgroup_effects events errors container_view exec terminal seccomp escapes hooks userns features rootless)

"$v2vm" setup >/dev/null
# Build the test binaries and find their paths (cargo prints them as JSON artifacts).
mapfile -t bins < <(cargo test --release --no-run --message-format=json "${tests[@]/#/--test=}" 2>/dev/null \
  | jq -r 'select(.reason == "compiler-artifact" and .executable != null and .target.kind == ["test"]) | .executable')
[ ${#bins[@]} -eq ${#tests[@]} ] || { echo "test-v2: expected ${#tests[@]} test binaries, found: ${bins[*]}" >&2; exit 1; }

hull=$(realpath "${HULL:?set HULL to the hull binary (make sets it)}")
rootfs=$PWD/build/rootfs
payload=$(mktemp -d)
trap 'rm -rf "$payload"' EXIT
# The rootfs travels as a tarball: v2vm.sh's -b aborts on static-pie executables (ldd says "statically linked").
tar -C "$rootfs" -cf "$payload/rootfs.tar" .
script="set -e; mkdir -p $rootfs; tar -xf rootfs.tar -C $rootfs;"
script+=' cat /sys/fs/cgroup/cgroup.controllers | sed "s/^/v2 controllers: /";'
# newuidmap/newgidmap for the rootless tests: the copy into the guest drops their setuid bit.
mapping_tools=()
for tool in /usr/bin/newuidmap /usr/bin/newgidmap; do [ -x "$tool" ] && mapping_tools+=("$tool"); done
[ ${#mapping_tools[@]} -eq 0 ] || script+=" chmod u+s ${mapping_tools[*]};"
for bin in "${bins[@]}"; do
  script+=" echo \"== $(basename "$bin")\"; $bin --test-threads=1;"
done
args=(-b "$hull" -e "HULL_TEST_ROOTFS=$rootfs" -m 2048 -t 1200)
# strace for the test of when hull re-execs (container_view).
for bin in "${bins[@]}" "${mapping_tools[@]}" "$(command -v strace)"; do args+=(-b "$bin"); done
"$v2vm" run "${args[@]}" "$payload" sh -c "$script"
