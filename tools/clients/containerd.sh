# containerd (Debian's containerd, ctr, containerd-shim-runc-v2): a private daemon with its own config, root, state
# and socket under $work/containerd, driven by ctr with the runtime given as the runc binary (`--runc-binary`, the
# runc shim's BinaryName option); the CRI plugin in the same daemon gets one runtime handler per runtime.

ctd_dir=$work/containerd
ctd_sock=$ctd_dir/containerd.sock
ctd_ns=hull-clients

containerd_start() {
  mkdir -p "$ctd_dir/cni/net.d" "$ctd_dir/cni/bin"
  cat >"$ctd_dir/config.toml" <<TOML
version = 2
root = "$ctd_dir/root"
state = "$ctd_dir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$ctd_sock"
[ttrpc]
  address = "$ctd_sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  disable_apparmor = true
  # The sandbox gets oom_score_adj -998; lowering it takes CAP_SYS_RESOURCE, which this machine's root lacks (runc
  # fails the same way). Restricted, CRI caps a container's score at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$ctd_dir/cri-runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hull.options]
        BinaryName = "$hull"
        Root = "$ctd_dir/cri-hull"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$ctd_dir/cni/bin"
    conf_dir = "$ctd_dir/cni/net.d"
TOML
  containerd --config "$ctd_dir/config.toml" >"$ctd_dir/daemon.log" 2>&1 &
  echo $! >"$ctd_dir/pid"
  wait_for "containerd at $ctd_sock" 30 ctr --address "$ctd_sock" version || { tail -20 "$ctd_dir/daemon.log"; return 1; }
  ctr --address "$ctd_sock" -n "$ctd_ns" images import "$images/busybox.tar" >/dev/null &&
    ctr --address "$ctd_sock" -n k8s.io images import "$images/busybox.tar" >/dev/null &&
    ctr --address "$ctd_sock" -n k8s.io images import "$images/pause.tar" >/dev/null
}

containerd_stop() {
  stop_pid "$ctd_dir/pid"
}

# containerd_scenarios NAME BINARY
containerd_scenarios() {
  local name=$1 binary=$2 label="containerd/$1"
  local root=$ctd_dir/$name-root id="hc-$name" seen
  local ctr=(ctr --address "$ctd_sock" -n "$ctd_ns")
  local run=("${ctr[@]}" run --runc-binary "$binary" --runc-root "$root")

  seen=$(out "${run[@]}" --rm "$busybox_image" "$id-exit" sh -c 'echo hi; exit 3')
  expect run-exit-code $'hi\nrc=3' "$seen"

  seen=$(echo hello | out "${run[@]}" --rm "$busybox_image" "$id-stdin" sh -c 'read line; echo "got $line"')
  expect stdin $'got hello\nrc=0' "$seen"

  seen=$(out "${run[@]}" --rm --env FOO=bar --cwd /tmp "$busybox_image" "$id-env" sh -c 'echo "$FOO in $PWD"')
  expect env-and-cwd $'bar in /tmp\nrc=0' "$seen"

  seen=$(out "${run[@]}" --rm --read-only "$busybox_image" "$id-ro" touch /file)
  expect read-only-rootfs $'touch: /file: Read-only file system\nrc=1' "$seen"

  # ctr echoes the terminal's NUL as "^@" before the output, with runc as with hull.
  seen=$(in_tty "${run[@]}" --rm -t "$busybox_image" "$id-tty" tty)
  expect tty '*/dev/pts/0' "$seen"

  # A detached task with a memory limit that answers SIGTERM: exec, ps, pause, metrics and kill work on it.
  local task=$id-task log=$ctd_dir/$name-task.log
  seen=$(out "${run[@]}" -d --memory-limit 67108864 --log-uri "file://$log" "$busybox_image" "$task" \
    sh -c 'trap "echo got TERM; exit 42" TERM; echo started; while :; do sleep 0.1; done')
  expect detached-run 'rc=0' "$seen"
  expect memory-limit 67108864 "$(cgroup_value memory memory.limit_in_bytes memory.max "/$ctd_ns/$task")"

  seen=$(out "${ctr[@]}" task exec --exec-id plain "$task" sh -c 'echo "in $PWD"; exit 7')
  expect exec-exit-code $'in /\nrc=7' "$seen"

  seen=$(in_tty "${ctr[@]}" task exec -t --exec-id tty "$task" tty)
  expect exec-tty '*/dev/pts/*' "$seen"

  seen=$(out "${ctr[@]}" task exec -d --exec-id bg "$task" sleep 60)
  expect exec-detached 'rc=0' "$seen"
  seen=$("${ctr[@]}" task ps "$task" 2>&1)
  expect task-ps '*ExecID:bg*' "$seen"

  "${ctr[@]}" task pause "$task" >/dev/null 2>&1
  seen=$("${ctr[@]}" task ls 2>&1 | awk -v t="$task" '$1 == t {print $3}')
  expect pause PAUSED "$seen"
  "${ctr[@]}" task resume "$task" >/dev/null 2>&1
  seen=$("${ctr[@]}" task ls 2>&1 | awk -v t="$task" '$1 == t {print $3}')
  expect resume RUNNING "$seen"

  seen=$("${ctr[@]}" task metrics "$task" 2>&1 | grep -cE '^(memory\.(usage_in_bytes|usage)|pids\.current) ')
  expect task-metrics 2 "$seen"

  "${ctr[@]}" task kill "$task" >/dev/null 2>&1
  wait_for "$task to stop" 10 sh -c "${ctr[*]} task ls | grep -q '^$task .*STOPPED'"
  seen=$(out "${ctr[@]}" task delete "$task")
  expect sigterm-exit '*exit code 42*rc=0' "$seen"
  expect sigterm-output $'started\ngot TERM' "$(cat "$log" 2>&1)"
  seen=$(out "${ctr[@]}" containers delete "$task")
  expect delete 'rc=0' "$seen"

  # Checkpoint and restore as ctr asks the runc shim for them (go-runc): `checkpoint --leave-running --image-path
  # --work-path` for `containers checkpoint --task`, and `restore --detach --image-path --work-path --bundle
  # --pid-file` for the task of `containers restore --live`. The restored process has the memory it had: the token
  # it drew at start and a count from where the checkpoint found it. /count is replaced by a rename, so a read never
  # sees it half written.
  local ck=$id-ck ref=registry.local/hull/checkpoint-$name:1 before after
  seen=$(out "${run[@]}" -d "$busybox_image" "$ck" \
    sh -c 't=$RANDOM$RANDOM; i=0; while :; do echo "$t $i" > /count.new; mv /count.new /count; i=$((i+1)); sleep 0.05; done')
  expect checkpoint-run 'rc=0' "$seen"
  wait_for "$ck to count" 10 sh -c "${ctr[*]} task exec --exec-id wait $ck cat /count | grep -q ' [1-9]'"
  seen=$(out "${ctr[@]}" containers checkpoint --task "$ck" "$ref")
  expect checkpoint 'rc=0' "$seen"
  before=$("${ctr[@]}" task exec --exec-id before "$ck" cat /count 2>&1)
  "${ctr[@]}" task kill -s KILL "$ck" >/dev/null 2>&1
  wait_for "$ck to stop" 10 sh -c "${ctr[*]} task ls | grep -q '^$ck .*STOPPED'"
  "${ctr[@]}" task delete "$ck" >/dev/null 2>&1
  "${ctr[@]}" containers delete "$ck" >/dev/null 2>&1
  seen=$(out "${ctr[@]}" containers restore --live "$ck" "$ref")
  expect restore 'rc=0' "$seen"
  wait_for "$ck to count again" 10 sh -c "${ctr[*]} task exec --exec-id again $ck cat /count"
  after=$("${ctr[@]}" task exec --exec-id after "$ck" cat /count 2>&1)
  expect counting-token '[0-9]*[0-9]' "${before%% *}"
  expect restored-memory "${before%% *}" "${after%% *}"
  "${ctr[@]}" task kill -s KILL "$ck" >/dev/null 2>&1
  wait_for "$ck to stop" 10 sh -c "${ctr[*]} task ls | grep -q '^$ck .*STOPPED'"
  "${ctr[@]}" task delete "$ck" >/dev/null 2>&1
  "${ctr[@]}" containers delete "$ck" >/dev/null 2>&1
  "${ctr[@]}" images remove "$ref" >/dev/null 2>&1

  seen=$(out "${run[@]}" --rm "$busybox_image" "$id-bad" /nonexistent)
  expect bad-entrypoint '*OCI runtime create failed: *exec: "/nonexistent": stat /nonexistent: no such file or directory*rc=1' "$seen"
  "${ctr[@]}" containers delete "$id-bad" >/dev/null 2>&1

  expect no-leftovers '' "$(leftovers "$root" "$id")"
}

# cri_scenarios NAME: the CRI client's scenarios with the runtime handler NAME, then nothing left of its pod.
cri_scenarios() {
  local name=$1 label="cri/$1" dir=$work/cri-$1 lines line failed_before=$failed
  mapfile -t lines < <(/usr/bin/python3 "$here/cri/cri.py" --socket "$ctd_sock" --handler "$name" \
    --image "$busybox_image" --work "$dir" --label "$label" 2>&1; echo "rc=$?")
  for line in "${lines[@]:0:${#lines[@]}-1}"; do
    tally "$line"
  done
  # A client that failed without saying which scenario (a traceback above) still fails the run.
  [[ ${lines[-1]} == rc=0 || $failed -gt $failed_before ]] || expect cri-client rc=0 "${lines[-1]}"
  # shellcheck disable=SC2046
  expect no-leftovers '' "$(leftovers "$ctd_dir/cri-$name" $(cat "$dir/ids" 2>/dev/null))"
}

