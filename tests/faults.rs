//! The fault sweep: hull is killed (SIGKILL, injected by strace) at each system call it makes in turn during
//! `create`, `run -d`, `start`, `exec` and `delete --force`; then `delete --force` must clean up, and nothing of the
//! container may remain: no state directory, cgroup (in any hierarchy), host mount or process. A running container
//! that a killed `exec` entered must still run, unharmed.
//!
//! The syscalls of one undisturbed run are traced first (hull's own process only: its children are not traced, so
//! they behave as usual); kill point N is then "the k-th call of the syscall at position N", which strace's
//! per-syscall counter hits exactly. `HULL_FAULT_POINTS` chooses how many kill points per command, spread evenly:
//! a number, or `all` (`make torture`); the default keeps `make test` within a few minutes. Each command prints
//! how many of its kill points were covered.

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::{base_config, run_with_timeout, Env, Run, HULL};

/// Kill points per command when `HULL_FAULT_POINTS` is not set.
const DEFAULT_POINTS: usize = 100;

/// What one command's sweep runs: `prepare` makes the container the command acts on (if any) under `id`; `args` is
/// the command.
struct Sweep<'a> {
    name: &'static str,
    env: &'a Env,
    prepare: &'a dyn Fn(&str),
    args: &'a dyn Fn(&str) -> Vec<String>,
    /// Checked after the killed command and before the cleanup (exec: the container still runs).
    after_kill: &'a dyn Fn(&str, &Run),
}

/// A syscall name and which call of it (1-based) kills the command.
struct KillPoint {
    syscall: String,
    nth: usize,
}

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn hull_command(env: &Env, args: &[String], strace: &[String]) -> Command {
    let mut cmd = Command::new("strace");
    cmd.args(strace).arg("--").arg(HULL);
    if common::systemd_driver() {
        cmd.arg("--systemd-cgroup");
    }
    cmd.arg("--root")
        .arg(env.root())
        .args(args)
        .current_dir(env.bundle());
    cmd
}

/// The syscalls of hull's own process in one undisturbed run, in order.
fn trace(sweep: &Sweep, id: &str) -> Vec<String> {
    (sweep.prepare)(id);
    let log = sweep.env.dir.path().join(format!("{id}.strace"));
    let strace = vec!["-qq".to_owned(), "-o".to_owned(), log.display().to_string()];
    let run = run_with_timeout(
        hull_command(sweep.env, &(sweep.args)(id), &strace),
        Duration::from_secs(60),
    );
    assert_eq!(
        run.code,
        0,
        "{}: expected the traced run to succeed: {}",
        sweep.name,
        run.describe()
    );
    let names = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let name = line.split('(').next()?;
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .then(|| name.to_owned())
        })
        .collect();
    cleanup(sweep, id, "the traced run");
    names
}

/// `wanted` kill points spread evenly over `syscalls` (all of them when `wanted` is at least their number).
fn kill_points(syscalls: &[String], wanted: usize) -> Vec<KillPoint> {
    let total = syscalls.len();
    let chosen: Vec<usize> = if wanted >= total {
        (0..total).collect()
    } else {
        (0..wanted).map(|i| i * total / wanted).collect()
    };
    chosen
        .into_iter()
        .map(|at| KillPoint {
            syscall: syscalls[at].clone(),
            nth: syscalls[..=at]
                .iter()
                .filter(|s| **s == syscalls[at])
                .count(),
        })
        .collect()
}

/// With the systemd driver, every read of a D-Bus reply (`recvfrom`) is a kill point too, whatever
/// `HULL_FAULT_POINTS` says: a kill while systemd starts or stops the unit is where a unit is left behind (a create
/// killed after asking for its scope once left a failed unit that `delete --force` had forgotten too early).
fn add_dbus_reply_points(points: &mut Vec<KillPoint>, syscalls: &[String]) {
    let reads = syscalls.iter().filter(|s| *s == "recvfrom").count();
    for nth in 1..=reads {
        if !points
            .iter()
            .any(|p| p.syscall == "recvfrom" && p.nth == nth)
        {
            points.push(KillPoint {
                syscall: "recvfrom".to_owned(),
                nth,
            });
        }
    }
}

/// `delete --force`, then the check that nothing of `id` is left.
fn cleanup(sweep: &Sweep, id: &str, after: &str) {
    let delete = sweep.env.hull(&["delete", "--force", id]);
    assert_eq!(
        delete.code,
        0,
        "{}: expected `delete --force` after {after} to succeed: {}",
        sweep.name,
        delete.describe()
    );
    let leftovers = leftovers(sweep.env, id);
    assert!(
        leftovers.is_empty(),
        "{}: expected nothing of {id} to remain after {after} and `delete --force`; found {leftovers:?}",
        sweep.name
    );
}

/// What remains of container `id`: its state directory, cgroups, host mounts of its bundle, processes naming it.
fn leftovers(env: &Env, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    if env.root().join(id).exists() {
        found.push(format!("state directory {}", env.root().join(id).display()));
    }
    for dir in common::cgroup_dirs_named(id) {
        found.push(format!("cgroup {}", dir.display()));
    }
    for unit in common::systemd_units_named(id) {
        found.push(format!("systemd unit {unit}"));
    }
    for mount in common::host_mounts_mentioning(&env.bundle().display().to_string()) {
        found.push(format!("mount {mount}"));
    }
    for process in common::processes_mentioning(id) {
        found.push(format!("process {process}"));
    }
    for process in common::processes_mentioning(&format!("sleep {} ", sleep_marker(env))) {
        found.push(format!("container process {process}"));
    }
    found
}

fn points_wanted() -> usize {
    match std::env::var("HULL_FAULT_POINTS").as_deref() {
        Ok("all") => usize::MAX,
        Ok(n) => n.parse().expect("HULL_FAULT_POINTS: a number or `all`"),
        Err(_) => DEFAULT_POINTS,
    }
}

/// Trace, then kill at each chosen point in turn; prints the coverage.
fn sweep(sweep: &Sweep) {
    let prefix: String = sweep
        .name
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect();
    let syscalls = trace(sweep, &common::unique_id(&prefix));
    let mut points = kill_points(&syscalls, points_wanted());
    if common::systemd_driver() {
        add_dbus_reply_points(&mut points, &syscalls);
    }
    let mut killed = 0;
    for point in &points {
        let id = common::unique_id(&prefix);
        (sweep.prepare)(&id);
        let strace = vec![
            "-qq".to_owned(),
            "-o".to_owned(),
            "/dev/null".to_owned(),
            "-e".to_owned(),
            format!("trace={}", point.syscall),
            "-e".to_owned(),
            format!("inject={}:signal=KILL:when={}", point.syscall, point.nth),
        ];
        let run = run_with_timeout(
            hull_command(sweep.env, &(sweep.args)(&id), &strace),
            Duration::from_secs(60),
        );
        if run.code != 0 {
            killed += 1;
        }
        (sweep.after_kill)(&id, &run);
        cleanup(
            sweep,
            &id,
            &format!("a kill at {} #{}", point.syscall, point.nth),
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "fault sweep {}: {} of {} kill points covered ({} runs killed), 0 leaks",
        sweep.name,
        points.len(),
        syscalls.len(),
        killed
    );
}

/// A bundle whose container sleeps for a number of seconds unique to this bundle: the container's processes name
/// no id, so a stray one is found by that argument (see `leftovers`).
fn sleeping_bundle(name: &str) -> Env {
    let env = Env::new(name);
    let config = base_config(&["/bin/sleep", &sleep_marker(&env)]);
    env.write_config(&config);
    env
}

/// A sleeping bundle whose config lists no mount namespace: its mounts go into the host's, below its own copy of the
/// rootfs (inside the bundle, where `leftovers` looks for mounts).
fn sleeping_bundle_without_mount_namespace(name: &str) -> Env {
    let env = Env::new(name);
    let mut config = base_config(&["/bin/sleep", &sleep_marker(&env)]);
    env.private_rootfs(&mut config);
    config["linux"]["namespaces"] =
        serde_json::json!([{"type": "pid"}, {"type": "uts"}, {"type": "cgroup"}]);
    let linux = config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    env.write_config(&config);
    env
}

fn sleep_marker(env: &Env) -> String {
    let digits: String = env.id.chars().filter(char::is_ascii_digit).collect();
    format!("9{digits}")
}

fn create(env: &Env, id: &str) {
    let r = env.hull(&["create", "--bundle", env.bundle().to_str().unwrap(), id]);
    assert_eq!(r.code, 0, "create {id}: {}", r.describe());
}

macro_rules! sweep_prelude {
    ($name:expr) => {
        require_root!($name);
        if !strace_available() {
            skip!("{}: strace is not installed", $name);
        }
    };
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn no_check(_: &str, _: &Run) {}

#[test]
fn killed_create_leaves_nothing_after_delete() {
    sweep_prelude!("killed_create_leaves_nothing_after_delete");
    let env = sleeping_bundle("fcreate");
    let bundle = env.bundle().display().to_string();
    sweep(&Sweep {
        name: "create",
        env: &env,
        prepare: &|_| {},
        args: &|id| args(&["create", "--bundle", &bundle, id]),
        after_kill: &no_check,
    });
}

#[test]
fn killed_create_without_a_mount_namespace_leaves_no_host_mount_after_delete() {
    sweep_prelude!("killed_create_without_a_mount_namespace_leaves_no_host_mount_after_delete");
    let env = sleeping_bundle_without_mount_namespace("fnomnt");
    let bundle = env.bundle().display().to_string();
    sweep(&Sweep {
        name: "create without a mount namespace",
        env: &env,
        prepare: &|_| {},
        args: &|id| args(&["create", "--bundle", &bundle, id]),
        after_kill: &no_check,
    });
}

#[test]
fn killed_run_leaves_nothing_after_delete() {
    sweep_prelude!("killed_run_leaves_nothing_after_delete");
    let env = sleeping_bundle("frun");
    let bundle = env.bundle().display().to_string();
    sweep(&Sweep {
        name: "run -d",
        env: &env,
        prepare: &|_| {},
        args: &|id| args(&["run", "-d", "--bundle", &bundle, id]),
        after_kill: &no_check,
    });
}

#[test]
fn killed_start_leaves_nothing_after_delete() {
    sweep_prelude!("killed_start_leaves_nothing_after_delete");
    let env = sleeping_bundle("fstart");
    sweep(&Sweep {
        name: "start",
        env: &env,
        prepare: &|id| create(&env, id),
        args: &|id| args(&["start", id]),
        after_kill: &no_check,
    });
}

#[test]
fn killed_delete_leaves_nothing_after_delete() {
    sweep_prelude!("killed_delete_leaves_nothing_after_delete");
    let env = sleeping_bundle("fdelete");
    sweep(&Sweep {
        name: "delete --force",
        env: &env,
        prepare: &|id| {
            create(&env, id);
            let r = env.hull(&["start", id]);
            assert_eq!(r.code, 0, "start {id}: {}", r.describe());
        },
        args: &|id| args(&["delete", "--force", id]),
        after_kill: &no_check,
    });
}

#[test]
fn killed_exec_leaves_the_container_running() {
    sweep_prelude!("killed_exec_leaves_the_container_running");
    let env = sleeping_bundle("fexec");
    let init_of = |id: &str| -> i64 {
        let r = env.hull(&["state", id]);
        let state: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("state {id} is not JSON ({e}): {}", r.describe()));
        assert_eq!(
            state["status"], "running",
            "expected container {id} to be running: {state}"
        );
        state["pid"].as_i64().unwrap()
    };
    let started = std::cell::RefCell::new(std::collections::HashMap::new());
    sweep(&Sweep {
        name: "exec",
        env: &env,
        prepare: &|id| {
            create(&env, id);
            let r = env.hull(&["start", id]);
            assert_eq!(r.code, 0, "start {id}: {}", r.describe());
            started.borrow_mut().insert(id.to_owned(), init_of(id));
        },
        args: &|id| args(&["exec", id, "/bin/true"]),
        after_kill: &|id, run| {
            let before = started.borrow()[id];
            let now = init_of(id);
            assert_eq!(
                now,
                before,
                "expected the container's init to be the same process after a killed exec ({})",
                run.describe()
            );
        },
    });
}
