# docker (Debian's docker.io 20.10, client /usr/bin/docker): a private dockerd with its own data root, exec root and
# socket under $work/docker, its own managed containerd, no bridge, no iptables; hull and runc registered with
# --add-runtime and chosen per container with --runtime.

dk_dir=$work/docker
dk=(/usr/bin/docker -H "unix://$work/docker/docker.sock")

docker_start() {
  mkdir -p "$dk_dir"
  # See podman.sh for why the open-files limit is lowered: this machine's root cannot raise it.
  dockerd --data-root "$dk_dir/data" --exec-root "$dk_dir/x" --pidfile "$dk_dir/dockerd.pid" \
    -H "unix://$dk_dir/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs --default-ulimit nofile=4096:4096 \
    --add-runtime "hull=$hull" --add-runtime "hull-runc=$(command -v runc)" >"$dk_dir/daemon.log" 2>&1 &
  echo $! >"$dk_dir/pid"
  if ! wait_for "dockerd at $dk_dir/docker.sock" 60 "${dk[@]}" version; then
    echo "dockerd could not start here; its log ends with:" >&2
    tail -5 "$dk_dir/daemon.log" >&2
    return 1
  fi
  "${dk[@]}" load -q -i "$images/busybox.tar" >/dev/null
}

docker_stop() {
  [[ -e $dk_dir/pid ]] || return 0
  "${dk[@]}" rm -f $("${dk[@]}" ps -aq 2>/dev/null) >/dev/null 2>&1
  stop_pid "$dk_dir/pid"
}

# docker_scenarios NAME BINARY
docker_scenarios() {
  local name=$1 label="docker/$1" id="hd-$1" seen cid cids=$dk_dir/cids-$1
  # runc is registered as hull-runc so that both go through --add-runtime (BinaryName) the same way.
  local runtime=$name
  [[ $name == runc ]] && runtime=hull-runc
  local run=("${dk[@]}" run --runtime "$runtime" --network none)
  mkdir -p "$cids"

  seen=$(out "${run[@]}" --cidfile "$cids/exit" --rm --name "$id-exit" "$busybox_image" sh -c 'echo hi; exit 3')
  expect run-exit-code $'hi\nrc=3' "$seen"

  seen=$(in_tty "${run[@]}" --cidfile "$cids/tty" --rm -t "$busybox_image" tty)
  expect tty /dev/pts/0 "$seen"

  seen=$(out "${run[@]}" --cidfile "$cids/d" -d --name "$id-d" --memory 64m "$busybox_image" \
    sh -c 'trap "echo got TERM; exit 42" TERM; echo started; while :; do sleep 0.1; done')
  expect detached-run '*rc=0' "$seen"
  cid=$("${dk[@]}" inspect -f '{{.Id}}' "$id-d" 2>&1)
  expect memory-limit 67108864 "$(cgroup_value memory memory.limit_in_bytes memory.max "/docker/$cid")"

  seen=$(out "${dk[@]}" exec "$id-d" sh -c 'echo "in $PWD"; exit 7')
  expect exec-exit-code $'in /\nrc=7' "$seen"
  seen=$(in_tty "${dk[@]}" exec -t "$id-d" tty)
  expect exec-tty '/dev/pts/*' "$seen"

  seen=$(out "${dk[@]}" stop -t 10 "$id-d")
  expect stop $'*rc=0' "$seen"
  expect stop-exit-code 42 "$("${dk[@]}" inspect -f '{{.State.ExitCode}}' "$id-d" 2>&1)"
  expect logs $'started\ngot TERM' "$("${dk[@]}" logs "$id-d" 2>&1)"
  seen=$(out "${dk[@]}" rm "$id-d")
  expect rm "$id-d"$'\nrc=0' "$seen"

  seen=$(out "${run[@]}" --cidfile "$cids/bad" --rm --name "$id-bad" "$busybox_image" /nonexistent)
  expect bad-entrypoint '*OCI runtime create failed: *exec: "/nonexistent": stat /nonexistent: no such file or directory*rc=127' "$seen"

  # dockerd 20.10 gives every runtime the state root <exec-root>/runtime-runc.
  # shellcheck disable=SC2046
  expect no-leftovers '' "$(leftovers "$dk_dir/x/runtime-runc" $(cat "$cids"/* 2>/dev/null))"
}
