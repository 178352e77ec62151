//! The container lifecycle through the real binary on the real kernel: create/start/state/kill/delete, run, list,
//! spec, features, pid files, status derivation, exit codes (seed experiments A23, A24, A25).

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{base_config, cgroup_dirs_named, Env};
use serde_json::Value;

#[test]
fn a23_create_start_state_delete() {
    require_root!("a23_create_start_state_delete");
    let env = Env::new("a23");
    let mut config = base_config(&["/bin/sh", "-c", "touch /ran; sleep 30"]);
    let rootfs = env.private_rootfs(&mut config);
    env.write_config(&config);
    let pid_file = env.dir.path().join("init.pid");
    let r = env.hull(&[
        "create",
        "--bundle",
        env.bundle().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &env.id,
    ]);
    assert_eq!(r.code, 0, "create: {}", r.describe());

    let state = env.state();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap(),
        pid.to_string(),
        "pid file holds the init pid, no newline"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} exists while created"
    );
    assert!(
        !rootfs.join("ran").exists(),
        "the user program must not run before start"
    );
    let keys: Vec<&str> = state
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "bundle",
            "created",
            "id",
            "ociVersion",
            "owner",
            "pid",
            "rootfs",
            "status"
        ]
    );
    assert_eq!(state["bundle"], env.bundle().to_str().unwrap());
    assert_eq!(state["owner"], "");

    let raw = env.hull(&["state", &env.id]).stdout;
    let keys = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ];
    let order: Vec<usize> = keys
        .iter()
        .map(|k| format!("\"{k}\":"))
        .map(|k| {
            raw.find(&k)
                .unwrap_or_else(|| panic!("{k} missing in {raw}"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "runc's field order, saw {raw}"
    );
    assert!(
        raw.starts_with("{\n  \"ociVersion\""),
        "2-space indent: {raw}"
    );
    assert!(!raw.ends_with('\n'), "no trailing newline, like runc");

    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    env.wait_for_status("running", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rootfs.join("ran").exists() {
        assert!(
            Instant::now() < deadline,
            "the program did not run after start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("cannot start an already running container"),
        "{}",
        r.describe()
    );

    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "cannot delete container {} that is not stopped: running",
            env.id
        )),
        "{}",
        r.describe()
    );

    let r = env.hull(&["kill", &env.id, "KILL"]);
    assert_eq!(r.code, 0, "kill: {}", r.describe());
    env.wait_for_status("stopped", Duration::from_secs(5));
    assert_eq!(env.state()["pid"], 0, "pid is 0 once stopped");
    let r = env.hull(&["start", &env.id]);
    assert!(
        r.stderr
            .contains("cannot start a container that has stopped"),
        "{}",
        r.describe()
    );

    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    assert!(
        !env.root().join(&env.id).exists(),
        "state directory removed"
    );
    assert!(
        cgroup_dirs_named(&env.id).is_empty(),
        "cgroups removed: {:?}",
        cgroup_dirs_named(&env.id)
    );
    let r = env.hull(&["state", &env.id]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("container does not exist"),
        "{}",
        r.describe()
    );
}

#[test]
fn start_runs_the_config_as_it_was_at_create() {
    require_root!("start_runs_the_config_as_it_was_at_create");
    let env = Env::new("frozen-config");
    let out = env.dir.path().join("out");
    let config = base_config(&["/bin/echo", "from-create"]);
    env.write_config(&config);
    let file = fs::File::create(&out).unwrap();
    let mut cmd = common::hull_command();
    cmd.arg("--root")
        .arg(env.root())
        .args(["create", &env.id])
        .current_dir(env.bundle());
    cmd.stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(std::process::Stdio::null());
    let status = cmd.status().unwrap();
    let r = common::Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::new(),
    };
    assert_eq!(r.code, 0, "create: {}", r.describe());
    env.write_config(&base_config(&["/bin/echo", "edited-later"]));
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    env.wait_for_status("stopped", Duration::from_secs(5));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "from-create\n",
        "detached stdio is hull's stdio, config frozen at create"
    );
}

#[test]
fn a25_run_exit_codes() {
    require_root!("a25_run_exit_codes");
    let env = Env::new("a25");
    let r = env.run(&base_config(&["/bin/sh", "-c", "exit 3"]));
    assert_eq!(r.code, 3, "{}", r.describe());
    assert!(
        !env.root().join(&env.id).exists(),
        "run deletes the container afterwards"
    );
    let r = env.run(&base_config(&["pwd"]));
    assert_eq!((r.code, r.stdout.as_str()), (0, "/\n"), "{}", r.describe());
    // An init in its own pid namespace cannot be killed from inside it, so this one shares hull's.
    let mut config = base_config(&["/bin/sh", "-c", "kill -KILL $$"]);
    config["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "uts"}]);
    let r = env.run(&config);
    assert_eq!(r.code, 137, "128+SIGKILL: {}", r.describe());
}

#[test]
fn run_keep_and_detach() {
    require_root!("run_keep_and_detach");
    let env = Env::new("keep");
    env.write_config(&base_config(&["true"]));
    let r = env.hull(&["run", "--keep", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        env.state()["status"],
        "stopped",
        "--keep leaves a stopped container"
    );
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());

    env.write_config(&base_config(&["sleep", "30"]));
    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(env.state()["status"], "running");
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(!env.root().join(&env.id).exists());
    assert!(cgroup_dirs_named(&env.id).is_empty());
}

#[test]
fn a24_kill_term_versus_kill() {
    require_root!("a24_kill_term_versus_kill");
    let env = Env::new("a24");
    env.write_config(&base_config(&[
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ]));
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    env.wait_for_handler(libc::SIGTERM, Duration::from_secs(5));
    assert_eq!(
        env.hull(&["kill", &env.id]).code,
        0,
        "default signal is TERM"
    );
    env.wait_for_status("stopped", Duration::from_secs(5));
    let r = env.hull(&["kill", &env.id, "TERM"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("container not running"),
        "{}",
        r.describe()
    );
    assert_eq!(
        env.hull(&["kill", "--all", &env.id, "TERM"]).code,
        0,
        "--all accepts a stopped container"
    );
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());

    // PID 1 without a handler ignores TERM but not KILL; signals by name, SIG-name and number.
    env.write_config(&base_config(&["sleep", "3600"]));
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    assert_eq!(env.hull(&["kill", &env.id, "SIGTERM"]).code, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        env.state()["status"],
        "running",
        "pid 1 ignores a default-action TERM"
    );
    let r = env.hull(&["kill", &env.id, "NOSUCHSIG"]);
    assert!(
        r.stderr.contains("unknown signal \"NOSUCHSIG\""),
        "{}",
        r.describe()
    );
    assert_eq!(env.hull(&["kill", &env.id, "9"]).code, 0);
    env.wait_for_status("stopped", Duration::from_secs(5));
}

#[test]
fn kill_all_reaches_every_process() {
    require_root!("kill_all_reaches_every_process");
    let env = Env::new("killall");
    let mut config = base_config(&["/bin/sh", "-c", "sleep 3600 & sleep 3600 & wait"]);
    // Without a pid namespace killing the init does not kill the rest: --all must.
    config["linux"]["namespaces"] =
        serde_json::json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
    config["hostname"] = "killall".into();
    env.write_config(&config);
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    std::thread::sleep(Duration::from_millis(200));
    let procs = fs::read_to_string(common::dir_for(&env.id, "pids").join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().count() >= 3,
        "three processes in the cgroup, saw {procs:?}"
    );
    assert_eq!(env.hull(&["kill", "--all", &env.id, "KILL"]).code, 0);
    env.wait_for_status("stopped", Duration::from_secs(5));
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(
        cgroup_dirs_named(&env.id).is_empty(),
        "no process was left to keep the cgroup busy"
    );
}

#[test]
fn delete_created_and_missing_containers() {
    require_root!("delete_created_and_missing_containers");
    let env = Env::new("del");
    env.write_config(&base_config(&["true"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let pid = env.state()["pid"].as_i64().unwrap();
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(
        r.code,
        0,
        "a created container may be deleted: {}",
        r.describe()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        assert!(
            Instant::now() < deadline,
            "parked init {pid} still alive after delete"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("container does not exist"),
        "{}",
        r.describe()
    );
    assert_eq!(
        env.hull(&["delete", "--force", &env.id]).code,
        0,
        "--force on a missing id succeeds"
    );
}

#[test]
fn status_is_derived_and_a_reused_pid_is_not_the_container() {
    require_root!("status_is_derived_and_a_reused_pid_is_not_the_container");
    let env = Env::new("reuse");
    env.write_config(&base_config(&["sleep", "30"]));
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    assert_eq!(env.state()["status"], "running");
    // Pretend the recorded start time belongs to an older process that had the same pid.
    let path = env.root().join(&env.id).join("state.json");
    let mut saved: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let real = saved["init_start_time"].as_u64().unwrap();
    saved["init_start_time"] = (real - 1).into();
    fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    assert_eq!(
        env.state()["status"],
        "stopped",
        "a pid with another start time is not the container"
    );
    let r = env.hull(&["kill", &env.id, "KILL"]);
    assert_eq!(
        r.code,
        1,
        "no signal to a process that is not the container: {}",
        r.describe()
    );
    saved["init_start_time"] = real.into();
    fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    assert_eq!(env.state()["status"], "running");
}

#[test]
fn list_formats() {
    require_root!("list_formats");
    let env = Env::new("list");
    let r = env.hull(&["list", "--format", "json"]);
    assert_eq!(r.stdout, "null\n", "no containers: {}", r.describe());
    env.write_config(&base_config(&["sleep", "30"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let r = env.hull(&["list"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PID") && lines[0].ends_with("OWNER"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].starts_with(&env.id) && lines[1].contains("created") && lines[1].ends_with("root"),
        "{}",
        r.stdout
    );
    assert_eq!(env.hull(&["list", "-q"]).stdout, format!("{}\n", env.id));
    let json: Value = serde_json::from_str(&env.hull(&["list", "-f", "json"]).stdout).unwrap();
    assert_eq!(json[0]["id"], env.id.as_str());
    assert_eq!(json[0]["owner"], "root");
}

#[test]
fn spec_features_and_version() {
    let env = Env::new("spec");
    let r = env.hull(&["spec", "--bundle", env.bundle().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let spec: Value =
        serde_json::from_slice(&fs::read(env.bundle().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    let r = env.hull(&["spec", "-b", env.bundle().to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("File config.json exists. Remove it first"),
        "{}",
        r.describe()
    );

    let r = env.hull(&["features"]);
    let features: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
    assert_eq!(features["linux"]["apparmor"]["enabled"], true);
    assert!(
        r.stdout.contains("\n    \"ociVersionMax\""),
        "4-space indent like runc"
    );

    let r = env.hull(&["--version"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("hull version "), "{}", r.stdout);
    assert!(
        lines[1].starts_with("commit: ") && lines[2].starts_with("spec: "),
        "{}",
        r.stdout
    );
    assert_eq!(env.hull(&["-v"]).stdout, r.stdout);
}

#[test]
fn go_style_flags_as_go_runc_sends_them() {
    require_root!("go_style_flags_as_go_runc_sends_them");
    let env = Env::new("goflags");
    env.write_config(&base_config(&["sleep", "30"]));
    let pid_file = env.dir.path().join("p.pid");
    let r = env.hull(&[
        "-log-format=json",
        "create",
        "-bundle",
        env.bundle().to_str().unwrap(),
        &env.id,
        "-pid-file",
        pid_file.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(pid_file.exists());
    let r = env.hull(&["kill", &env.id]);
    assert_eq!(
        r.code,
        0,
        "a created container can be signalled: {}",
        r.describe()
    );
    let r = env.hull(&["delete", "-force=true", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let r = env.hull(&["kill"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("\"kill\" requires a minimum of 1 argument(s)"),
        "{}",
        r.describe()
    );
    let r = env.hull(&["state", "--bogus", "x"]);
    assert_eq!(
        r.code,
        1,
        "unknown flags fail with status 1: {}",
        r.describe()
    );
}

#[test]
fn run_forwards_signals_and_reports_them() {
    require_root!("run_forwards_signals_and_reports_them");
    let env = Env::new("fwd");
    env.write_config(&base_config(&[
        "/bin/sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
    ]));
    let out = env.dir.path().join("out");
    let mut cmd = common::hull_command();
    cmd.arg("--root")
        .arg(env.root())
        .args(["run", &env.id])
        .current_dir(env.bundle());
    cmd.stdout(fs::File::create(&out).unwrap())
        .stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(Instant::now() < deadline, "container did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(7),
        "hull run exits with the container's status after forwarding TERM"
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "ready\ngot-term\n");
    assert!(
        !env.root().join(&env.id).exists(),
        "and deletes the container"
    );
}

#[test]
fn a26_without_terminal_stdio_are_the_callers_pipes() {
    require_root!("a26_without_terminal_stdio_are_the_callers_pipes");
    let env = Env::new("a26");
    let r = env.run(&base_config(&[
        "/bin/sh",
        "-c",
        "[ -t 0 ] && echo tty || echo no-tty; readlink /proc/self/fd/1; echo err >&2",
    ]));
    assert_eq!(r.code, 0, "{}", r.describe());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "no-tty");
    assert!(
        !lines[1].starts_with("/dev/pts"),
        "stdout is the caller's file, not a terminal: {}",
        lines[1]
    );
    assert_eq!(r.stderr, "err\n", "the container's stderr is hull's stderr");
}

/// With NOTIFY_SOCKET set, the container gets a socket of hull's; `run -d` and `start` wait for its READY=1 and pass
/// it on to the host's socket with MAINPID and a barrier (runc's protocol). The host side reads while hull runs, as
/// systemd does: hull waits for the barrier's pipe to be closed by the reader.
#[test]
fn notify_socket_ready_is_forwarded() {
    require_root!("notify_socket_ready_is_forwarded");
    use std::os::unix::net::UnixDatagram;
    use std::process::Stdio;
    let env = Env::new("notify");
    let host_path = env.dir.path().join("host.sock");
    let host = UnixDatagram::bind(&host_path).unwrap();
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    env.write_config(&base_config(&[
        "sh",
        "-c",
        "sleep 0.4; /checker notify READY=1; sleep 600",
    ]));
    for start_separately in [false, true] {
        if start_separately {
            let r = env.hull_with(&["create", &env.id], Duration::from_secs(30), |cmd| {
                cmd.env("NOTIFY_SOCKET", &host_path);
            });
            assert_eq!(r.code, 0, "{}", r.describe());
        }
        let command: &[&str] = if start_separately {
            &["start", &env.id]
        } else {
            &["run", "-d", &env.id]
        };
        let began = Instant::now();
        let mut hull = common::hull_command()
            .arg("--root")
            .arg(env.root())
            .args(command)
            .current_dir(env.bundle())
            .env("NOTIFY_SOCKET", &host_path)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut buf = [0u8; 256];
        let mut next = || {
            let n = host.recv(&mut buf).expect("a notify datagram");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let ready = next();
        let mainpid = next();
        let barrier = next();
        let status = hull.wait().unwrap();
        assert!(status.success(), "{command:?}: {status}");
        assert!(
            began.elapsed() >= Duration::from_millis(400),
            "{command:?} returns only after READY=1 (took {:?})",
            began.elapsed()
        );
        let pid = env.state()["pid"].as_i64().unwrap();
        assert_eq!(
            [ready, mainpid, barrier],
            [
                "READY=1\n".to_owned(),
                format!("MAINPID={pid}\n"),
                "BARRIER=1".to_owned()
            ]
        );
        let r = env.hull(&["delete", "--force", &env.id]);
        assert_eq!(r.code, 0, "delete: {}", r.describe());
    }
}

/// Racing deletes: four `delete --force` of the same id at once, for 50 containers: every one exits 0 (the
/// directory a concurrent delete removed first is gone all the same) and nothing is left.
///
/// A delete that treats a vanished state directory as an error fails some of them with `remove state directory
/// ...: No such file or directory`.
#[test]
fn racing_deletes_all_succeed() {
    require_root!("racing_deletes_all_succeed");
    let env = Env::new("race");
    env.write_config(&base_config(&["sleep", "600"]));
    let ids: Vec<String> = (0..50).map(|i| format!("{}-{i}", env.id)).collect();
    for id in &ids {
        let r = env.hull(&["run", "-d", id]);
        assert_eq!(r.code, 0, "run -d {id}: {}", r.describe());
    }
    // Ten containers at a time: 200 hull processes at once would exceed a service's 1024 open files.
    let failures: Vec<String> = ids
        .chunks(10)
        .flat_map(|batch| {
            std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .flat_map(|id| (0..4).map(move |_| id))
                    .map(|id| {
                        let env = &env;
                        scope.spawn(move || (id, env.hull(&["delete", "--force", id])))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|(_, r)| r.code != 0)
                    .map(|(id, r)| format!("{id}: {}", r.describe()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "expected all 200 racing `delete --force` to exit 0; {} failed: {failures:#?}",
        failures.len()
    );
    for id in &ids {
        assert!(
            !env.root().join(id).exists(),
            "state directory of {id} remains"
        );
        assert_eq!(
            cgroup_dirs_named(id),
            Vec::<std::path::PathBuf>::new(),
            "cgroup of {id} remains"
        );
    }
}

/// A cgroup in use by something else: with container A in cgroupsPath P and a host process put into P, a second
/// container in P is refused with runc 1.5's error (P untouched, A and the host process alive); `delete --force` of
/// A kills A (its init, and with it its pid namespace) but not the host process, which is not A's.
///
/// A runtime that joins a non-empty cgroup lets unrelated workloads share limits; one that kills "everything in the
/// cgroup" on delete kills the host process too.
#[test]
fn a_cgroup_in_use_is_refused_and_its_other_processes_survive_delete() {
    require_root!("a_cgroup_in_use_is_refused_and_its_other_processes_survive_delete");
    require_cgroupfs_driver!("a_cgroup_in_use_is_refused_and_its_other_processes_survive_delete");
    let env = Env::new("shared");
    let name = common::unique_id("hull-shared");
    let mut config = base_config(&["sleep", "600"]);
    config["linux"]["cgroupsPath"] = serde_json::json!(format!("/{name}"));
    env.write_config(&config);
    let a = format!("{}-a", env.id);
    let r = env.hull(&["run", "-d", &a]);
    assert_eq!(r.code, 0, "run -d {a}: {}", r.describe());
    let mut host = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let dirs = cgroup_dirs_named(&name);
    assert!(!dirs.is_empty(), "no cgroup {name} was made");
    for dir in &dirs {
        fs::write(dir.join("cgroup.procs"), host.id().to_string())
            .unwrap_or_else(|e| panic!("move the host process into {}: {e}", dir.display()));
    }

    let b = format!("{}-b", env.id);
    let r = env.hull(&["run", "-d", &b]);
    assert_eq!(
        r.code,
        1,
        "expected a second container in {name} to be refused: {}",
        r.describe()
    );
    assert!(
        r.stderr
            .contains("container's cgroup is not empty: 2 process(es) found"),
        "expected runc's error naming the 2 processes in the cgroup, got {}",
        r.describe()
    );
    assert!(
        !env.root().join(&b).exists(),
        "the refused container left its state directory"
    );
    assert_eq!(
        cgroup_dirs_named(&name).len(),
        dirs.len(),
        "the refused create removed the cgroup in use"
    );
    assert!(
        host.try_wait().unwrap().is_none(),
        "the refused create killed the host process"
    );

    let init = {
        let r = env.hull(&["state", &a]);
        let state: Value = serde_json::from_str(&r.stdout).unwrap();
        state["pid"].as_i64().unwrap()
    };
    let _ = env.hull(&["delete", "--force", &a]);
    assert!(
        host.try_wait().unwrap().is_none(),
        "expected `delete --force` of {a} to leave the host process in its cgroup alive; it was killed"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists()
            || fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|s| s.contains(") Z")),
        "expected {a}'s init {init} to be killed"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    let r = env.hull(&["delete", "--force", &a]);
    assert_eq!(
        r.code,
        0,
        "delete --force {a} once the cgroup is empty: {}",
        r.describe()
    );
    assert_eq!(
        cgroup_dirs_named(&name),
        Vec::<std::path::PathBuf>::new(),
        "cgroup {name} remains"
    );
}

/// runc 1.5: a cgroup that already exists and is frozen is refused at once (`container's cgroup unexpectedly
/// frozen`), whichever hierarchy holds the freezer: the v1 freezer where it is mounted, and the cgroup2 directory
/// (on a hybrid host it is the one the init is cloned into). The frozen cgroup stays as it was; nothing else of the
/// container remains. Before, `run -d` hung forever on an init that could not run.
#[test]
fn a_frozen_cgroup_is_refused_without_hanging() {
    require_root!("a_frozen_cgroup_is_refused_without_hanging");
    require_cgroupfs_driver!("a_frozen_cgroup_is_refused_without_hanging");
    let mut freezers: Vec<(std::path::PathBuf, &str, &str)> = Vec::new();
    if let Some(mount) =
        common::controller_mount("freezer").filter(|_| common::v1_mounted("freezer"))
    {
        freezers.push((mount, "freezer.state", "FROZEN"));
    }
    if let Some(mount) = common::cgroup2_mount() {
        freezers.push((mount, "cgroup.freeze", "1"));
    }
    for (mount, file, frozen) in freezers {
        let env = Env::new("frozen");
        let name = common::unique_id("hull-frozen");
        let dir = mount.join(&name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(file), frozen)
            .unwrap_or_else(|e| panic!("freeze {}: {e}", dir.display()));
        let mut config = base_config(&["true"]);
        config["linux"]["cgroupsPath"] = serde_json::json!(format!("/{name}"));
        env.write_config(&config);
        let r = std::panic::catch_unwind(|| {
            env.hull_with(&["run", "-d", &env.id], Duration::from_secs(20), |_| {})
        });
        let left = cgroup_dirs_named(&name);
        let thawed = if file == "cgroup.freeze" {
            "0"
        } else {
            "THAWED"
        };
        let _ = fs::write(dir.join(file), thawed);
        let _ = env.hull(&["delete", "--force", &env.id]);
        for d in cgroup_dirs_named(&name).iter().rev() {
            let _ = fs::remove_dir(d);
        }
        let r = r.unwrap_or_else(|_| {
            panic!(
                "expected run -d in the frozen {} to fail at once with runc's error; it hung for 20 s",
                dir.display()
            )
        });
        assert_eq!(
            (
                r.code,
                r.stderr.contains("container's cgroup unexpectedly frozen")
            ),
            (1, true),
            "expected run -d in the frozen {} to fail at once with runc's error: {}",
            dir.display(),
            r.describe()
        );
        assert!(
            !env.root().join(&env.id).exists(),
            "the refused create left its state directory"
        );
        assert_eq!(
            left,
            vec![dir.clone()],
            "expected only the frozen cgroup, which existed before, to remain"
        );
    }
}
