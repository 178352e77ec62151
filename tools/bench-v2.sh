#!/usr/bin/env bash
# `make bench` inside the project's guest (tools/vm.sh): Debian 12 booted with systemd and only cgroup v2, where crun
# runs too (it refuses this hybrid host). hull is copied in; runc and crun are the guest's own Debian packages (the
# same versions as here); the bench and the floor are static. Compare ratios, not absolute times, with the host's
# table. The guest runs under TCG emulation when the host offers no nested virtualisation (as here), so it runs the
# quick rounds (a fifth).
#   HULL=BINARY tools/bench-v2.sh OUT_PREFIX      (make bench-v2) writes OUT_PREFIX.md (the table) and OUT_PREFIX.json (raw samples)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench-v2.sh OUT_PREFIX}
hull=$(realpath "${HULL:?set HULL to the hull binary (make sets it)}")
rootfs=$PWD/build/rootfs
payload=$(mktemp -d)
trap 'rm -rf "$payload"' EXIT
tar -C "$rootfs" -cf "$payload/rootfs.tar" .
cp integration/target/release/bench build/floor bundles/demo/config.json "$payload/"
script="set -e; mkdir -p $rootfs; tar -xf rootfs.tar -C $rootfs;"
script+=" ./bench --rootfs $rootfs --runtime hull=$hull --runtime runc=\$(command -v runc) --runtime crun=\$(command -v crun)"
script+=" --floor ./floor --config config.json --quick --targets --out results.json;"
script+=' echo "== results.json"; cat results.json'
tools/vm.sh run -n -b "$hull" -t 1800 "$payload" sh -c "$script" > "$payload/guest.log" || { cat "$payload/guest.log"; exit 1; }
sed -n '/^== results.json$/,$p' "$payload/guest.log" | tail -n +2 > "$out.json"
# The guest log also holds the bench's progress lines; the table starts at its header.
sed '/^== results.json$/,$d' "$payload/guest.log" | sed -n '/^| workload/,$p' | tee "$out.md"
jq -e .workloads "$out.json" >/dev/null || { echo "bench-v2: no results came back from the guest" >&2; exit 1; }
