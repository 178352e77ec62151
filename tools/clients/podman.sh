# podman (Debian's podman and conmon): its own storage root, run root and containers.conf under $work/podman, the
# runtime given with --runtime (and so its default state root, as podman users have it), cgroupfs, file events, no
# network. Every container writes its id to a --cidfile, so that nothing of any of them may remain at the end.

pm_dir=$work/podman

podman_start() {
  mkdir -p "$pm_dir"
  # This machine's root may not raise RLIMIT_NOFILE/NPROC above their current hard limits (no CAP_SYS_RESOURCE),
  # so podman's default of 1048576 fails under runc as under hull; explicit lower limits are always grantable.
  cat >"$pm_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["hull", "runc"]
[engine.runtimes]
hull = ["$hull"]
runc = ["$(command -v runc)"]
CONF
  local p
  podman_argv ""
  "${p[@]}" load -q -i "$images/busybox.tar" >/dev/null
}

podman_stop() {
  [[ -d $pm_dir ]] || return 0
  local p
  podman_argv ""
  "${p[@]}" rm -af -t 0 >/dev/null 2>&1
  "${p[@]}" system reset -f >/dev/null 2>&1
}

# podman_argv RUNTIME: sets p to the podman command line on the private storage (RUNTIME empty: image commands).
podman_argv() {
  p=(env "CONTAINERS_CONF=$pm_dir/containers.conf" podman --root "$pm_dir/storage" --runroot "$pm_dir/run"
    --tmpdir "$pm_dir/tmp" --storage-driver overlay)
  if [[ -n $1 ]]; then
    p+=(--runtime "$1")
  fi
}

podman_exited() {
  [[ $("${p[@]}" inspect -f '{{.State.Status}}' "$1" 2>&1) == exited ]]
}

# podman_counted ID: the counter container has logged a few lines.
podman_counted() {
  [[ $("${p[@]}" logs "$1" 2>/dev/null | tail -n1) -ge 3 ]]
}

# podman_counted_past ID N: it has logged a number past N.
podman_counted_past() {
  [[ $("${p[@]}" logs "$1" 2>/dev/null | tail -n1) -gt $2 ]]
}

# podman_scenarios NAME BINARY
podman_scenarios() {
  local name=$1 label="podman/$1" id="hp-$1" seen p cids=$pm_dir/cids-$1
  podman_argv "$name"
  mkdir -p "$cids"
  local run=("${p[@]}" run --network none)

  seen=$(out "${run[@]}" --cidfile "$cids/exit" --rm --name "$id-exit" "$busybox_image" sh -c 'echo hi; exit 3')
  expect run-exit-code $'hi\nrc=3' "$seen"

  seen=$(out "${run[@]}" --cidfile "$cids/user" --rm --user 65534 --cap-drop ALL "$busybox_image" sh -c 'id -u; grep CapEff /proc/self/status')
  expect user-and-cap-drop $'65534\nCapEff:\t0000000000000000\nrc=0' "$seen"

  seen=$(out "${run[@]}" --cidfile "$cids/ro" --rm --read-only "$busybox_image" sh -c 'touch /tmp/a /var/tmp/b /run/c && echo scratch writable; cat /run/lock/from-image; echo; touch /file')
  expect read-only-with-tmpcopyup $'scratch writable\ncopied-up\ntouch: /file: Read-only file system\nrc=1' "$seen"

  seen=$(out "${run[@]}" --cidfile "$cids/d" -d --name "$id-d" --memory 64m --pids-limit 50 "$busybox_image" \
    sh -c 'trap "echo got TERM; exit 42" TERM; echo started; while :; do sleep 0.1; done')
  expect detached-run '*rc=0' "$seen"
  local cid
  cid=$("${p[@]}" inspect -f '{{.Id}}' "$id-d" 2>&1)
  expect memory-limit 67108864 "$(cgroup_value memory memory.limit_in_bytes memory.max "/libpod_parent/libpod-$cid")"
  expect pids-limit 50 "$(cgroup_value pids pids.max pids.max "/libpod_parent/libpod-$cid")"

  seen=$(out "${p[@]}" exec "$id-d" sh -c 'echo "in $PWD"; exit 7')
  expect exec-exit-code $'in /\nrc=7' "$seen"
  seen=$(in_tty "${p[@]}" exec -t "$id-d" tty)
  expect exec-tty '/dev/pts/*' "$seen"

  seen=$("${p[@]}" top "$id-d" pid args 2>&1 | awk 'NR == 2 {print $1, $2, $3}')
  expect top '1 sh -c' "$seen"
  seen=$("${p[@]}" stats --no-stream --format '{{.MemLimit}}' "$id-d" 2>&1)
  expect stats 67108864 "$seen"
  seen=$("${p[@]}" logs "$id-d" 2>&1)
  expect logs started "$seen"

  seen=$(out "${p[@]}" stop -t 10 "$id-d")
  expect stop $'*rc=0' "$seen"
  seen=$("${p[@]}" inspect -f '{{.State.ExitCode}}' "$id-d" 2>&1)
  expect stop-exit-code 42 "$seen"
  seen=$(out "${p[@]}" start "$id-d")
  expect start-again '*rc=0' "$seen"
  seen=$("${p[@]}" inspect -f '{{.State.Status}}' "$id-d" 2>&1)
  expect running-again running "$seen"
  seen=$(out "${p[@]}" kill "$id-d")
  expect kill '*rc=0' "$seen"
  wait_for "$id-d to exit" 10 podman_exited "$id-d"
  seen=$("${p[@]}" logs "$id-d" 2>&1)
  expect logs-after-restart $'started\ngot TERM\nstarted' "$seen"
  seen=$(out "${p[@]}" rm "$id-d")
  expect rm '*rc=0' "$seen"

  # Checkpoint and restore through the runtime (CRIU 4.1 from `make criu` first on PATH), in place and through an
  # exported archive into a new container: the counter goes on from where it stopped.
  local counter='i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done' before after
  seen=$(out "${run[@]}" -d --cidfile "$cids/ck" --name "$id-ck" "$busybox_image" sh -c "$counter")
  expect checkpoint-run '*rc=0' "$seen"
  wait_for "$id-ck to count" 10 podman_counted "$id-ck"
  seen=$(out "${p[@]}" container checkpoint "$id-ck")
  expect checkpoint '*rc=0' "$seen"
  seen=$("${p[@]}" inspect -f '{{.State.Status}}' "$id-ck" 2>&1)
  expect checkpointed-exited exited "$seen"
  before=$("${p[@]}" logs "$id-ck" 2>&1 | tail -n1)
  seen=$(out "${p[@]}" container restore "$id-ck")
  expect restore '*rc=0' "$seen"
  wait_for "$id-ck to count on" 10 podman_counted_past "$id-ck" "$before"
  after=$("${p[@]}" logs "$id-ck" 2>&1 | tail -n1)
  expect restore-continues yes "$( ((after > before && after < before + 100)) && echo yes || echo "from $before to $after")"
  seen=$(out "${p[@]}" container checkpoint -e "$pm_dir/$name-ck.tar.gz" "$id-ck")
  expect checkpoint-export '*rc=0' "$seen"
  before=$("${p[@]}" logs "$id-ck" 2>&1 | tail -n1)
  "${p[@]}" rm -f "$id-ck" >/dev/null 2>&1
  seen=$(out "${p[@]}" container restore -i "$pm_dir/$name-ck.tar.gz" --name "$id-ck2")
  expect restore-import '*rc=0' "$seen"
  "${p[@]}" inspect -f '{{.Id}}' "$id-ck2" >"$cids/ck2" 2>/dev/null
  expect import-continues yes "$(wait_for "$id-ck2 to count on" 10 podman_counted_past "$id-ck2" "$before" && echo yes)"
  seen=$(out "${p[@]}" rm -f -t 0 "$id-ck2")
  expect rm-restored '*rc=0' "$seen"

  seen=$(out "${run[@]}" --cidfile "$cids/bad" --rm --name "$id-bad" "$busybox_image" /nonexistent)
  # One error line: podman read the runtime's --log-format json error (not raw JSON, not two messages).
  expect bad-entrypoint 'Error: *: unable to start container process: *exec: "/nonexistent": stat /nonexistent: no such file or directory: OCI runtime attempted to invoke a command that was not found'$'\nrc=127' "$seen"

  # Podman calls the runtime without --root: the state is in its default root, /run/hull or /run/runc.
  # shellcheck disable=SC2046
  expect no-leftovers '' "$(leftovers "/run/$name" $(cat "$cids"/* 2>/dev/null))"
}
