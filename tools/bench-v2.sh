#!/usr/bin/env bash
# `make bench` inside a throw-away QEMU guest whose only cgroup hierarchy is pure cgroup v2 (../shared/tools/v2vm.sh),
# where crun runs too (it refuses this hybrid host). hull, runc and crun are copied in with their shared libraries;
# the bench and the floor are static. Compare ratios, not absolute times, with the host's table. The guest runs under
# TCG emulation when the host offers no nested virtualisation (as here), so it runs the quick rounds (a fifth).
#   HULL=BINARY tools/bench-v2.sh OUT_PREFIX      (make bench-v2) writes OUT_PREFIX.md (the table) and OUT_PREFIX.json (raw samples)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench-v2.sh OUT_PREFIX}
v2vm=${V2VM:-../shared/tools/v2vm.sh}
[ -x "$v2vm" ] || { echo "bench-v2: $v2vm not found (the shared tools sit beside the checkout)" >&2; exit 1; }
hull=$(realpath "${HULL:?set HULL to the hull binary (make sets it)}")
rootfs=$PWD/build/rootfs
runtimes=(--runtime "hull=$hull")
copies=(-b "$hull")
for rt in runc crun; do
  path=$(command -v "$rt") || { echo "bench-v2: $rt not found (make deps installs it)" >&2; exit 1; }
  runtimes+=(--runtime "$rt=$path")
  copies+=(-b "$path")
done
"$v2vm" setup >/dev/null
payload=$(mktemp -d)
trap 'rm -rf "$payload"' EXIT
# v2vm.sh refuses static-pie executables (the bench) among its copies and in the payload: they travel as tarballs.
tar -C "$rootfs" -cf "$payload/rootfs.tar" .
tar -C integration/target/release -cf "$payload/bench.tar" bench
cp build/floor bundles/demo/config.json "$payload/"
script="set -e; mkdir -p $rootfs; tar -xf rootfs.tar -C $rootfs; tar -xf bench.tar;"
script+=" ./bench --rootfs $rootfs ${runtimes[*]} --floor ./floor --config config.json --quick --targets --out results.json;"
script+=' echo "== results.json"; cat results.json'
"$v2vm" run "${copies[@]}" -m 2048 -t 1200 "$payload" sh -c "$script" > "$payload/guest.log" || { cat "$payload/guest.log"; exit 1; }
sed -n '/^== results.json$/,$p' "$payload/guest.log" | tail -n +2 > "$out.json"
# The guest log also holds the bench's progress lines; the table starts at its header.
sed '/^== results.json$/,$d' "$payload/guest.log" | sed -n '/^| workload/,$p' | tee "$out.md"
jq -e .workloads "$out.json" >/dev/null || { echo "bench-v2: no results came back from the guest" >&2; exit 1; }
