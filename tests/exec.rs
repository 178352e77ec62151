//! `hull exec`: exit codes, the flags that override the config's process, `--process` files as containerd sends
//! them, the namespaces and cgroups the new process joins, detached exec with a pid file, failures (exit 255, no pid
//! file), stopped/missing/paused containers, signal forwarding, and the fds the process gets.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{base_config, dir_for, unified, Env, Run};
use serde_json::{json, Value};

/// A running container whose init sleeps, with `tweak` applied to the base config.
fn running(prefix: &str, tweak: impl FnOnce(&mut Value)) -> Env {
    let env = Env::new(prefix);
    let mut config = base_config(&["sleep", "600"]);
    tweak(&mut config);
    env.write_config(&config);
    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    env
}

fn exec(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    env.hull(&all)
}

fn exec_ok(env: &Env, args: &[&str]) -> String {
    let r = exec(env, args);
    assert_eq!(r.code, 0, "exec {args:?}: {}", r.describe());
    r.stdout
}

fn init_pid(env: &Env) -> i64 {
    env.state()["pid"].as_i64().expect("pid")
}

fn kill_and_delete(env: &Env) {
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

#[test]
fn exit_codes_pass_through() {
    require_root!("exit_codes_pass_through");
    let env = running("exec-codes", |_| {});
    assert_eq!(exec(&env, &[&env.id, "true"]).code, 0);
    assert_eq!(exec(&env, &[&env.id, "sh", "-c", "exit 7"]).code, 7);
    assert_eq!(
        exec(&env, &[&env.id, "sh", "-c", "kill -9 $$"]).code,
        137,
        "killed by SIGKILL: 128+9"
    );
    assert_eq!(
        exec_ok(&env, &[&env.id, "echo", "hello", "world"]),
        "hello world\n"
    );
    kill_and_delete(&env);
}

#[test]
fn flags_override_the_config_process() {
    require_root!("flags_override_the_config_process");
    let env = running("exec-flags", |c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("FROM_CONFIG=1".into());
        c["process"]["noNewPrivileges"] = false.into();
    });
    let id = env.id.as_str();
    assert_eq!(
        exec_ok(
            &env,
            &[
                "--env",
                "FROM_FLAG=2",
                "-e",
                "FROM_CONFIG=3",
                id,
                "sh",
                "-c",
                "echo $FROM_CONFIG $FROM_FLAG"
            ]
        ),
        "3 2\n",
        "-e appends, and a repeated name takes the last value"
    );
    assert_eq!(exec_ok(&env, &["--cwd", "/tmp", id, "pwd"]), "/tmp\n");
    assert_eq!(
        exec_ok(&env, &["-u", "1000:100", "-g", "7", "-g", "8", id, "id"]),
        "uid=1000 gid=100 groups=7,8\n"
    );
    assert_eq!(
        exec_ok(&env, &["--user", "65534", id, "id", "-u"]),
        "65534\n"
    );
    let status = |extra: &[&str], key: &str| {
        let mut args = extra.to_vec();
        args.extend([id, "grep", key, "/proc/self/status"]);
        exec_ok(&env, &args)
    };
    let cap_sys_admin = 1u64 << 21;
    let eff =
        |text: String| u64::from_str_radix(text.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(eff(status(&[], "CapEff")) & cap_sys_admin, 0);
    assert_ne!(
        eff(status(&["--cap", "CAP_SYS_ADMIN"], "CapEff")) & cap_sys_admin,
        0,
        "--cap adds to the sets"
    );
    assert_eq!(
        status(&["--cap", "CAP_SYS_ADMIN"], "CapInh"),
        "CapInh:\t0000000000000000\n",
        "--cap never adds to the inheritable set (CVE-2022-29162)"
    );
    assert_eq!(status(&[], "NoNewPrivs"), "NoNewPrivs:\t0\n");
    assert_eq!(
        status(&["--no-new-privs"], "NoNewPrivs"),
        "NoNewPrivs:\t1\n"
    );
    assert_eq!(
        exec_ok(&env, &[id, "sh", "-c", "ulimit -n"]),
        "1024\n",
        "the config's rlimits"
    );
    kill_and_delete(&env);
}

#[test]
fn process_file_as_containerd_sends_it() {
    require_root!("process_file_as_containerd_sends_it");
    let env = running("exec-process", |_| {});
    let process = json!({
        "terminal": false,
        "user": {"uid": 1, "gid": 1, "additionalGids": [2]},
        "args": ["sh", "-c", "echo $ONLY; id; pwd"],
        "env": ["PATH=/bin", "ONLY=from-file"],
        "cwd": "/etc",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "noNewPrivileges": true
    });
    let file = env.dir.path().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = exec_ok(&env, &["--process", file.to_str().unwrap(), &env.id]);
    assert_eq!(
        out,
        "from-file\nuid=1(daemon) gid=1(daemon) groups=2\n/etc\n"
    );
    // runc 1.5: a process without `user` runs as root.
    let no_user = env.dir.path().join("no-user.json");
    fs::write(
        &no_user,
        json!({"args": ["/bin/sh", "-c", "id"], "cwd": "/"}).to_string(),
    )
    .unwrap();
    assert_eq!(
        exec_ok(&env, &["--process", no_user.to_str().unwrap(), &env.id]),
        "uid=0(root) gid=0(root)\n",
        "a process file without user"
    );
    let bad = env.dir.path().join("bad.json");
    fs::write(
        &bad,
        json!({"user": {"uid": 0, "gid": 0}, "args": ["true"], "cwd": "etc"}).to_string(),
    )
    .unwrap();
    let r = exec(&env, &["--process", bad.to_str().unwrap(), &env.id]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr
            .contains("exec failed: Cwd must be an absolute path"),
        "{}",
        r.describe()
    );
    kill_and_delete(&env);
}

/// Every namespace link of the exec'd process equals the init's, also with a user namespace; its cgroups too.
#[test]
fn joins_every_namespace_and_the_cgroup() {
    require_root!("joins_every_namespace_and_the_cgroup");
    for user_ns in [false, true] {
        let env = running("exec-ns", |c| {
            if user_ns {
                common::add_user_namespace(c);
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["type"] != "cgroup");
            }
        });
        let pid_file = env.dir.path().join("exec.pid");
        let r = exec(
            &env,
            &[
                "-d",
                "--pid-file",
                pid_file.to_str().unwrap(),
                &env.id,
                "sleep",
                "600",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.describe());
        let text = fs::read_to_string(&pid_file).unwrap();
        assert!(!text.ends_with('\n'), "pid file without newline: {text:?}");
        let pid: i64 = text.parse().unwrap();
        let init = init_pid(&env);
        for ns in ["user", "ipc", "uts", "net", "pid", "mnt", "cgroup"] {
            let link = |p: i64| fs::read_link(format!("/proc/{p}/ns/{ns}")).unwrap();
            assert_eq!(link(pid), link(init), "{ns} namespace (user ns: {user_ns})");
        }
        assert_eq!(
            fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
            fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap(),
            "same cgroups as the init"
        );
        let uid_map = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let expected_uid = if user_ns { "100000" } else { "0" };
        assert!(
            uid_map
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(expected_uid)),
            "host uid of the exec'd process: {uid_map}"
        );
        kill_and_delete(&env);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true),
            "the exec'd process died with the pid namespace"
        );
    }
}

#[test]
fn inside_the_pid_namespace_with_a_small_pid() {
    require_root!("inside_the_pid_namespace_with_a_small_pid");
    let env = running("exec-pidns", |_| {});
    let out = exec_ok(
        &env,
        &[
            &env.id,
            "sh",
            "-c",
            "echo $$; readlink /proc/self; cat /proc/1/cmdline",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    let pid: u32 = lines[0].parse().unwrap();
    assert!(pid < 10, "pid inside the container: {pid}");
    let readlink: u32 = lines[1].parse().unwrap();
    assert!(
        readlink > pid && readlink < 10,
        "/proc/self works: {readlink}"
    );
    assert_eq!(
        lines[2], "sleep\u{0}600\u{0}",
        "pid 1 is the container's init"
    );
    kill_and_delete(&env);
}

#[test]
fn detached_exec_writes_the_pid_file_and_failures_write_none() {
    require_root!("detached_exec_writes_the_pid_file_and_failures_write_none");
    let env = running("exec-detach", |_| {});
    let pid_file = env.dir.path().join("p.pid");
    let p = pid_file.to_str().unwrap();
    let began = Instant::now();
    let r = exec(&env, &["--detach", "--pid-file", p, &env.id, "sleep", "5"]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "detached exec returns at once"
    );
    let pid = fs::read_to_string(&pid_file).unwrap();
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, "sleep\u{0}5\u{0}",
        "the pid file names the exec'd process"
    );
    fs::remove_file(&pid_file).unwrap();

    for (args, message) in [
        (
            vec!["no-such-program"],
            "exec failed: unable to start container process: exec: \"no-such-program\": executable file not found in $PATH",
        ),
        (vec!["/etc/passwd"], "exec failed: unable to start container process: exec: \"/etc/passwd\": permission denied"),
    ] {
        let mut all = vec!["-d", "--pid-file", p, env.id.as_str()];
        all.extend(args);
        let r = exec(&env, &all);
        assert_eq!(r.code, 255, "{}", r.describe());
        assert!(r.stderr.contains(message), "expected {message:?}: {}", r.describe());
        assert!(!pid_file.exists(), "no pid file after a failed exec");
    }
    let r = exec(&env, &["--pid-file", p, &env.id, "sh", "-c", "echo $PPID"]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(
        pid_file.exists(),
        "a foreground exec writes the pid file too (runc)"
    );
    fs::remove_file(&pid_file).unwrap();
    let r = exec(&env, &["--cwd", "/nonexistent", &env.id, "true"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr
            .contains("chdir to cwd /nonexistent: No such file or directory"),
        "{}",
        r.describe()
    );
    kill_and_delete(&env);
}

#[test]
fn stopped_missing_and_paused_containers() {
    require_root!("stopped_missing_and_paused_containers");
    let env = Env::new("exec-state");
    let r = exec(&env, &[&env.id, "true"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("exec failed: container does not exist"),
        "{}",
        r.describe()
    );

    env.write_config(&base_config(&["true"]));
    assert_eq!(env.hull(&["run", "--keep", &env.id]).code, 0);
    let r = exec(&env, &[&env.id, "true"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr
            .contains("exec failed: cannot exec in a stopped container"),
        "{}",
        r.describe()
    );
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());

    let env = running("exec-paused", |_| {});
    assert_eq!(env.hull(&["pause", &env.id]).code, 0);
    let r = exec(&env, &[&env.id, "true"]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains(
            "exec failed: cannot exec in a paused container (use --ignore-paused to override)"
        ),
        "{}",
        r.describe()
    );
    let r = exec(&env, &[&env.id]);
    assert_eq!(r.code, 255);
    kill_and_delete(&env);

    let env = running("exec-noargs", |_| {});
    let r = exec(&env, &[&env.id]);
    assert!(
        r.stderr
            .contains("exec failed: process args cannot be empty"),
        "{}",
        r.describe()
    );
    kill_and_delete(&env);
}

/// `--ignore-paused` lets the exec through; like runc's, the new process is frozen with the container, so a
/// detached exec returns only once the container is resumed.
#[test]
fn ignore_paused_waits_for_resume() {
    require_root!("ignore_paused_waits_for_resume");
    let env = running("exec-ignpause", |_| {});
    assert_eq!(env.hull(&["pause", &env.id]).code, 0);
    let pid_file = env.dir.path().join("p.pid");
    let mut child = common::hull_command()
        .arg("--root")
        .arg(env.root())
        .args(["exec", "-d", "--ignore-paused", "--pid-file"])
        .arg(&pid_file)
        .args([&env.id, "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the exec waits while the container is frozen"
    );
    assert!(!pid_file.exists());
    assert_eq!(env.hull(&["resume", &env.id]).code, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "exec did not finish after resume"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(pid_file.exists());
    kill_and_delete(&env);
}

/// exec into a created (not yet started) container works, as in runc.
#[test]
fn exec_into_a_created_container() {
    require_root!("exec_into_a_created_container");
    let env = Env::new("exec-created");
    env.write_config(&base_config(&["sleep", "600"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    assert_eq!(exec_ok(&env, &[&env.id, "hostname"]), "hull\n");
    assert_eq!(env.state()["status"], "created");
    kill_and_delete(&env);
}

/// Foreground exec forwards the signals hull gets and exits with the process's status.
#[test]
fn foreground_exec_forwards_signals() {
    require_root!("foreground_exec_forwards_signals");
    let env = running("exec-signal", |_| {});
    let out = env.dir.path().join("out");
    let mut child = common::hull_command()
        .arg("--root")
        .arg(env.root())
        .args([
            "exec",
            &env.id,
            "sh",
            "-c",
            "trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&out).unwrap().contains("ready") {
        assert!(
            Instant::now() < deadline,
            "the exec'd shell never said ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(5),
        "hull exits with the process's status"
    );
    assert_eq!(fs::read_to_string(&out).unwrap(), "ready\ngot-term\n");
    kill_and_delete(&env);
}

/// The process gets stdio, the preserved fds, and nothing else of hull's. Its fd table is read from the host while
/// it sleeps (a shell inside would show its own transient pipe and redirection fds).
#[test]
fn preserved_fds_and_nothing_else() {
    require_root!("preserved_fds_and_nothing_else");
    let env = running("exec-fds", |_| {});
    let passed = fs::File::open("/etc/hostname").unwrap();
    let stray = fs::File::open("/etc/passwd").unwrap();
    let (passed_fd, stray_fd) = (passed.as_raw_fd(), stray.as_raw_fd());
    let pid_file = env.dir.path().join("exec.pid");
    let fds_of_exec = |preserve: &str| {
        let mut cmd = common::hull_command();
        cmd.arg("--root").arg(env.root()).args([
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--preserve-fds",
            preserve,
            &env.id,
            "sleep",
            "30",
        ]);
        cmd.stdin(Stdio::null());
        common::pass_fds(&mut cmd, vec![(passed_fd, 3), (stray_fd, 4)]);
        let r = common::run_with_timeout(cmd, Duration::from_secs(30));
        assert_eq!(
            r.code,
            0,
            "exec --preserve-fds {preserve}: {}",
            r.describe()
        );
        let pid = fs::read_to_string(&pid_file).unwrap();
        let mut fds: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let n = e.file_name().to_string_lossy().parse().unwrap();
                (n, fs::read_link(e.path()).unwrap().display().to_string())
            })
            .collect();
        fds.sort();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
        fds.into_iter()
            .filter(|(n, _)| *n > 2)
            .map(|(n, target)| format!("{n}:{target}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(fds_of_exec("1"), ["3:/etc/hostname"]);
    assert_eq!(fds_of_exec("0"), Vec::<String>::new());
    kill_and_delete(&env);
}

/// `--cgroup` puts the process in an existing sub-cgroup of the container's.
#[test]
fn sub_cgroup() {
    require_root!("sub_cgroup");
    let env = running("exec-subcg", |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup");
    });
    let controller = if unified() { "" } else { "pids" };
    let dir = dir_for(&env.id, if unified() { "pids" } else { controller });
    fs::create_dir(dir.join("inner")).unwrap();
    let flag = if unified() {
        "inner".to_owned()
    } else {
        format!("{controller}:inner")
    };
    let out = exec_ok(
        &env,
        &["--cgroup", &flag, &env.id, "cat", "/proc/self/cgroup"],
    );
    let line = out
        .lines()
        .find(|l| {
            if unified() {
                l.starts_with("0::")
            } else {
                l.contains(":pids:")
            }
        })
        .unwrap_or_else(|| panic!("no pids line in {out:?}"));
    assert!(line.ends_with("/inner"), "in the sub-cgroup: {out}");
    // `/` names the container's own cgroup (runc 1.5).
    assert_eq!(
        exec_ok(
            &env,
            &["--cgroup", "/", &env.id, "cat", "/proc/self/cgroup"]
        ),
        exec_ok(&env, &[&env.id, "cat", "/proc/self/cgroup"]),
        "exec --cgroup / lands in the container's own cgroup"
    );
    let r = exec(&env, &["--cgroup", "a", "--cgroup", "b", &env.id, "true"]);
    assert!(
        r.code == 255
            && r.stderr
                .contains("invalid --cgroup argument: a (missing <controller>: prefix)"),
        "{}",
        r.describe()
    );
    let r = exec(&env, &["--cgroup", "missing", &env.id, "true"]);
    assert!(
        r.code == 255 && r.stderr.contains("missing"),
        "{}",
        r.describe()
    );
    kill_and_delete(&env);
    fs::remove_dir(dir.join("inner")).ok();
}

/// Labels follow the host: without the LSM a requested label is refused rather than silently not applied; with
/// AppArmor (the v2 VM) `--apparmor unconfined` is applied to the new process.
#[test]
fn labels_follow_the_host() {
    require_root!("labels_follow_the_host");
    let env = running("lsm", |_| {});
    let mut cases = vec![(
        "--process-label=system_u:system_r:container_t:s0",
        "exec failed: selinux label is specified in config, but selinux is disabled or not supported",
    )];
    if common::host_has_apparmor() {
        let r = exec(
            &env,
            &[
                "--apparmor=unconfined",
                &env.id,
                "cat",
                "/proc/self/attr/current",
            ],
        );
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "unconfined\n"),
            "{}",
            r.describe()
        );
        cases.push((
            "--apparmor=docker-default",
            "exec failed: unable to start container process: apply apparmor profile \"docker-default\"",
        ));
    } else {
        cases.push((
            "--apparmor=docker-default",
            "exec failed: apparmor profile \"docker-default\" is set, but AppArmor is not enabled on this host",
        ));
    }
    for (flag, message) in cases {
        let r = exec(&env, &[flag, &env.id, "true"]);
        assert_eq!(r.code, 255, "{flag}: {}", r.describe());
        assert!(
            r.stderr.contains(message),
            "{flag}: want {message:?}: {}",
            r.describe()
        );
    }
    kill_and_delete(&env);
}

/// runc 1.5: `linux.personality` LINUX32 makes the container's processes, the init and every exec'd one, see a
/// 32-bit machine (`uname -m` says i686 on x86_64); hull refused the field.
#[test]
fn personality_linux32_for_the_init_and_exec() {
    require_root!("personality_linux32_for_the_init_and_exec");
    if std::env::consts::ARCH != "x86_64" {
        skip!("personality_linux32_for_the_init_and_exec: LINUX32's machine name is checked on x86_64 only");
    }
    let env = running("exec-persona", |c| {
        c["process"]["args"] = json!(["sh", "-c", "uname -m > /dev/shm/machine; exec sleep 600"]);
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    assert_eq!(
        exec_ok(&env, &[&env.id, "cat", "/dev/shm/machine"]),
        "i686\n",
        "the init's machine"
    );
    assert_eq!(
        exec_ok(&env, &[&env.id, "uname", "-m"]),
        "i686\n",
        "an exec'd process's machine"
    );
    kill_and_delete(&env);
}

/// The CPU affinity of runc 1.4+: a container's processes start on every CPU of their cpuset, whatever the affinity
/// of the caller (`taskset -c 0 hull run ...`); `process.execCPUAffinity` gives an exec'd process its `final`
/// affinity once in the cgroup (or keeps its `initial` one), and a bad list is refused in runc's words.
#[test]
fn cpu_affinity_is_reset_and_exec_cpu_affinity_applies() {
    require_root!("cpu_affinity_is_reset_and_exec_cpu_affinity_applies");
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let allowed = own
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
        .unwrap();
    if allowed == "0" {
        skip!("cpu_affinity_is_reset_and_exec_cpu_affinity_applies: this machine gives the test one CPU");
    }
    let env = Env::new("exec-affinity");
    let config = base_config(&[
        "sh",
        "-c",
        "grep Cpus_allowed_list /proc/self/status; sleep 600",
    ]);
    env.write_config(&config);
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", common::HULL]);
    if common::systemd_driver() {
        cmd.arg("--systemd-cgroup");
    }
    cmd.arg("--root")
        .arg(env.root())
        .args(["run", "-d", &env.id])
        .current_dir(env.bundle());
    let r = common::run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(r.code, 0, "taskset -c 0 hull run -d: {}", r.describe());
    let init_allowed = |env: &Env| {
        let status = fs::read_to_string(format!("/proc/{}/status", init_pid(env))).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    assert_eq!(
        init_allowed(&env),
        allowed,
        "expected the init on every CPU of its cpuset, not on hull's caller's CPU 0"
    );
    let status = "grep Cpus_allowed_list /proc/self/status";
    // With `initial` alone the kernel decides once the process joins the cpuset: Linux 6.2+ keeps the affinity it
    // asked for, older kernels give it the cpuset's CPUs.
    for (affinity, wanted) in [
        (json!({"final": "0"}), vec!["0"]),
        (json!({"initial": "1"}), vec!["1", allowed.as_str()]),
        (json!({"initial": "0", "final": "1"}), vec!["1"]),
    ] {
        let file = env.dir.path().join("affinity.json");
        let process =
            json!({"args": ["/bin/sh", "-c", status], "cwd": "/", "execCPUAffinity": affinity});
        fs::write(&file, process.to_string()).unwrap();
        let out = exec_ok(&env, &["--process", file.to_str().unwrap(), &env.id]);
        assert!(
            wanted
                .iter()
                .any(|want| out == format!("Cpus_allowed_list:\t{want}\n")),
            "execCPUAffinity {affinity}: expected Cpus_allowed_list one of {wanted:?}, saw {out:?}"
        );
    }
    let file = env.dir.path().join("bad.json");
    let bad = json!({"args": ["true"], "cwd": "/", "execCPUAffinity": {"initial": "3-1"}});
    fs::write(&file, bad.to_string()).unwrap();
    let r = exec(&env, &["--process", file.to_str().unwrap(), &env.id]);
    assert!(
        r.code == 255
            && r.stderr
                .contains("bad CPUAffinity.Initial: invalid range: 3-1"),
        "expected runc's words for a bad range: {}",
        r.describe()
    );
    kill_and_delete(&env);
}

/// runc 1.5 sets `process.scheduler` (sched_setattr) and `process.ioPriority` (ioprio_set) for the init and for an
/// exec'd process from its own process fields; the kernel's view (`/proc/PID/stat` nice and policy, `ionice`) shows
/// them. hull refused both fields.
#[test]
fn scheduler_and_io_priority_for_the_init_and_exec() {
    require_root!("scheduler_and_io_priority_for_the_init_and_exec");
    let show = "cut -d' ' -f19,41 /proc/$$/stat; ionice -p $$";
    let env = running("exec-sched", |c| {
        c["process"]["args"] = json!([
            "sh",
            "-c",
            format!("{{ {show}; }} > /dev/shm/init.tmp; mv /dev/shm/init.tmp /dev/shm/init; exec sleep 600")
        ]);
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    });
    assert_eq!(
        // `running` returns once the init runs, maybe before its shell has written the file (whole, by the rename).
        exec_ok(
            &env,
            &[
                &env.id,
                "sh",
                "-c",
                "for i in $(seq 100); do [ -e /dev/shm/init ] && break; sleep 0.1; done; cat /dev/shm/init"
            ]
        ),
        "5 3\nbest-effort: prio 6\n",
        "the init: nice 5, policy SCHED_BATCH (3), best-effort I/O priority 6"
    );
    let file = env.dir.path().join("sched.json");
    let process = json!({
        "args": ["/bin/sh", "-c", "cut -d' ' -f41 /proc/$$/stat; ionice -p $$"], "cwd": "/",
        "scheduler": {"policy": "SCHED_IDLE"},
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    });
    fs::write(&file, process.to_string()).unwrap();
    assert_eq!(
        exec_ok(&env, &["--process", file.to_str().unwrap(), &env.id]),
        "5\nidle\n",
        "an exec'd process: policy SCHED_IDLE (5), idle I/O class"
    );
    fs::write(
        &file,
        json!({"args": ["true"], "cwd": "/", "scheduler": {"policy": "SCHED_OTHER", "nice": 25}})
            .to_string(),
    )
    .unwrap();
    let r = exec(&env, &["--process", file.to_str().unwrap(), &env.id]);
    assert!(
        r.code == 255
            && r.stderr
                .contains("invalid scheduler.nice: 25 when scheduler.policy is SCHED_OTHER"),
        "expected runc's validation message: {}",
        r.describe()
    );
    kill_and_delete(&env);
}

/// runc 1.5: `linux.memoryPolicy` is the NUMA policy of the init and of every exec'd process (set_mempolicy): their
/// memory maps show it (`bind:0` in /proc/PID/numa_maps). A mode without the nodes it needs is refused in runc's words.
/// hull refused the field.
#[test]
fn memory_policy_for_the_init_and_exec() {
    require_root!("memory_policy_for_the_init_and_exec");
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        skip!("memory_policy_for_the_init_and_exec: this kernel has no NUMA support (no /proc/self/numa_maps)");
    }
    let show = "grep -c ' bind:0 ' /proc/$$/numa_maps";
    let env = running("exec-mempolicy", |c| {
        c["process"]["args"] = json!([
            "sh",
            "-c",
            format!("{show} > /dev/shm/init; exec sleep 600")
        ]);
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let count = |out: String| out.trim().parse::<u32>().unwrap_or(0);
    assert!(
        count(exec_ok(&env, &[&env.id, "cat", "/dev/shm/init"])) > 0,
        "expected the init's mappings bound to node 0"
    );
    assert!(
        count(exec_ok(&env, &[&env.id, "sh", "-c", show])) > 0,
        "expected an exec'd process's mappings bound to node 0"
    );
    kill_and_delete(&env);
    let mut config = base_config(&["true"]);
    config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE"});
    let r = env.run(&config);
    assert!(
        r.code == 1
            && r.stderr
                .contains("memory policy mode requires at least one node but got 0"),
        "expected runc's words for a mode without nodes: {}",
        r.describe()
    );
}
