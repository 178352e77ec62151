#!/usr/bin/env bash
# preseal (src/preseal.rs) runs before the C library is initialised: its compiled code may make syscalls and call its
# own helpers, nothing else (a call into libc, such as a memcpy the compiler inserted, would crash every create).
# Builds hull as `make build` does but unstripped, into its own target directory, and disassembles every preseal
# function. Run by `make test` with $(HULL_ENV); prints what it found and exits 1 on any other call or jump.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=target/preseal-check
cargo build --release --quiet --config 'profile.release.strip=false' --target-dir "$target_dir"
bin=$target_dir/${CARGO_BUILD_TARGET:?set by the Makefile (HULL_ENV)}/release/hull
mapfile -t functions < <(nm -S "$bin" | awk '$4 ~ /7preseal/ {print $1, $2, $4}')
[ ${#functions[@]} -gt 0 ] || { echo "check-preseal: no preseal functions in $bin" >&2; exit 1; }
bad=0
for f in "${functions[@]}"; do
  read -r start size name <<<"$f"
  # Calls and jumps whose target is not a preseal function, and every indirect one.
  outside=$(objdump -d --no-show-raw-insn -M intel --start-address=$((16#$start)) \
      --stop-address=$((16#$start + 16#$size)) "$bin" \
    | grep -E $'\t(call|jmp)' | grep -v -E '<[^>]*7preseal[^>]*>' || true)
  if [ -n "$outside" ]; then
    echo "check-preseal: $name calls or jumps outside preseal (expected raw syscalls only):" >&2
    echo "$outside" >&2
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "ok   preseal: ${#functions[@]} functions, no call outside them"
exit $bad
