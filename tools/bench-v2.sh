#!/usr/bin/env bash
# The bench inside the project's guest (tools/vm.sh): Debian 12 booted with systemd and only cgroup v2, where crun
# runs too (it refuses this hybrid host) and where engines call the runtime with --systemd-cgroup. hull is copied in;
# runc and crun are the guest's own Debian packages (the same versions as here); the bench and the floor are static.
# Compare ratios, not absolute times, with the host's table: the guest runs under TCG emulation when the host offers
# no nested virtualisation (as here), so it runs the quick rounds (a fifth).
#   HULL=BINARY tools/bench-v2.sh OUT_PREFIX                  (make bench-v2): every workload with the cgroupfs
#       driver (OUT_PREFIX.md, OUT_PREFIX.json), then `run` with --systemd-cgroup (OUT_PREFIX-systemd.md/.json)
#   HULL=BINARY tools/bench-v2.sh --systemd-only OUT_PREFIX   (make bench): only the systemd path
set -euo pipefail
cd "$(dirname "$0")/.."
full=1
if [ "${1:-}" = --systemd-only ]; then
  full=0
  shift
fi
out=${1:?usage: bench-v2.sh [--systemd-only] OUT_PREFIX}
hull=$(realpath "${HULL:?set HULL to the hull binary (make sets it)}")
rootfs=$PWD/build/rootfs
payload=$(mktemp -d)
trap 'rm -rf "$payload"' EXIT
tar -C "$rootfs" -cf "$payload/rootfs.tar" .
cp integration/target/release/bench build/floor bundles/demo/config.json "$payload/"
runtimes="--rootfs $rootfs --runtime hull=$hull --runtime runc=\$(command -v runc) --runtime crun=\$(command -v crun)"
script="set -e; mkdir -p $rootfs; tar -xf rootfs.tar -C $rootfs;"
if [ "$full" = 1 ]; then
  script+=" ./bench $runtimes --floor ./floor --config config.json --quick --targets --out results.json --markdown results.md;"
fi
# The systemd path: `run /bin/true`, the D-Bus round trips to systemd included, for the three runtimes.
script+=" ./bench $runtimes --config config.json --quick --only run --systemd-cgroup --targets \
  --out results-systemd.json --markdown results-systemd.md;"
script+=' for f in results*; do echo "== $f"; cat "$f"; echo; done'
tools/vm.sh run -n -b "$hull" -t 1800 "$payload" sh -c "$script" > "$payload/guest.log" || { cat "$payload/guest.log"; exit 1; }
# The guest log holds the bench's progress, then each results file after its `== NAME` line.
extract() { sed -n "/^== $1\$/,/^== /p" "$payload/guest.log" | sed '1d;/^== /d'; }
if [ "$full" = 1 ]; then
  extract results.json > "$out.json"
  jq -e .workloads "$out.json" >/dev/null || { echo "bench-v2: no results came back from the guest" >&2; exit 1; }
  extract results.md | tee "$out.md"
fi
extract results-systemd.json > "$out-systemd.json"
jq -e .workloads "$out-systemd.json" >/dev/null || { echo "bench-v2: no systemd results came back from the guest" >&2; exit 1; }
echo "## the systemd path (--systemd-cgroup), in the guest"
extract results-systemd.md | tee "$out-systemd.md"
