#!/usr/bin/env bash
# hull against runc on the same busybox bundle, interleaved so both see the same machine state:
#   run /bin/true                       (create + start + wait + delete in one command)
#   create -> start -> delete --force   (three commands, as containerd drives a runtime)
# Prints the median wall time of each and the hull/runc ratio.   tools/bench.sh HULL ROOTFS [ROUNDS]
# With BENCH_GUARD=MAX_RATIO only `run /bin/true` is measured, and the script fails when hull's median exceeds
# MAX_RATIO times runc's in the same run (the speed regression guard of `make test`).
set -euo pipefail
hull=$(readlink -f "${1:?usage: bench.sh HULL ROOTFS [ROUNDS]}")
rootfs=$(readlink -f "${2:?usage: bench.sh HULL ROOTFS [ROUNDS]}")
rounds=${3:-100}
guard=${BENCH_GUARD:-}
runc=$(command -v runc) || { echo "bench: runc not found (apt-get install runc)" >&2; exit 1; }
work=$(mktemp -d)
trap 'for rt in "$hull" "$runc"; do "$rt" --root "$work/state" delete -f bench-c >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
mkdir -p "$work/bundle"
jq --arg root "$rootfs" '.process.args = ["/bin/true"] | .root = {"path": $root, "readonly": true} | del(.hostname)' \
  "$(dirname "$0")/../bundles/demo/config.json" \
  | jq '.hostname = "bench" | del(.linux.resources.memory, .linux.resources.pids)' > "$work/bundle/config.json"

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
declare -A samples
measure() { # measure NAME CMD...: append the wall time of CMD in microseconds to samples[NAME]
  local name=$1; shift
  local t0 t1
  t0=$(now_us); "$@" >/dev/null 2>&1 || { echo "bench: $name failed: $*" >&2; exit 1; }; t1=$(now_us)
  samples[$name]+="$((t1 - t0)) "
}
lifecycle() { # lifecycle RUNTIME
  "$1" --root "$work/state" create --bundle "$work/bundle" bench-c && "$1" --root "$work/state" start bench-c \
    && "$1" --root "$work/state" delete -f bench-c
}
cd "$work/bundle"
for i in $(seq "$rounds"); do
  measure hull-run "$hull" --root "$work/state" run --bundle "$work/bundle" bench-r
  measure runc-run "$runc" --root "$work/state" run --bundle "$work/bundle" bench-r
  [[ -n $guard ]] && continue
  measure hull-lifecycle lifecycle "$hull"
  measure runc-lifecycle lifecycle "$runc"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-28s %12s %12s %8s\n' "benchmark ($rounds rounds)" "hull (ms)" "runc (ms)" "ratio"
benchmarks=(run lifecycle)
[[ -z $guard ]] || benchmarks=(run)
for b in "${benchmarks[@]}"; do
  h=$(echo "${samples[hull-$b]}" | median); r=$(echo "${samples[runc-$b]}" | median)
  label=$([ $b = run ] && echo "run /bin/true" || echo "create+start+delete -f")
  awk -v l="$label" -v h="$h" -v r="$r" 'BEGIN {printf "%-28s %12.2f %12.2f %8.2f\n", l, h/1000, r/1000, h/r}'
done
if [[ -n $guard ]]; then
  h=$(echo "${samples[hull-run]}" | median); r=$(echo "${samples[runc-run]}" | median)
  awk -v h="$h" -v r="$r" -v max="$guard" 'BEGIN {
    if (h / r > max) {
      printf "FAIL speed guard: expected hull run /bin/true <= %.2fx runc, saw %.2fx (%.2f ms vs %.2f ms)\n", max, h / r, h / 1000, r / 1000
      exit 1
    }
    printf "ok   speed guard: hull run /bin/true is %.2fx runc (limit %.2fx)\n", h / r, max
  }'
fi
