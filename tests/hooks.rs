//! Lifecycle hooks against the real kernel: each of the six kinds runs at its point of the lifecycle, in its
//! namespace, with the container state on stdin (the statuses the runtime-tools validation tests expect); failing
//! create-time and startContainer hooks fail the operation and leave nothing behind, failing poststart and
//! poststop hooks are warnings. The hook program is the test rootfs's `checker hook DIR PHASE`, which records what
//! it was given in `DIR/PHASE.json` and appends PHASE to `DIR/order`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_leaves_nothing, base_config, rootfs, Env, Run};
use serde_json::{json, Value};

/// The checker on the host (for hooks whose path resolves in the runtime namespace).
fn host_checker() -> PathBuf {
    rootfs().join("checker")
}

/// A hook running `checker hook DIR PHASE`, `path` being where the checker is in the hook's namespace.
fn recording_hook(path: &Path, dir: &Path, phase: &str) -> Value {
    json!({"path": path, "args": ["checker", "hook", dir, phase]})
}

/// A hook running `checker ARGS...` from the host path.
fn checker_hook(args: &[&str]) -> Value {
    let mut argv = vec!["checker"];
    argv.extend_from_slice(args);
    json!({"path": host_checker(), "args": argv})
}

/// A results directory shared by the host and (at `/tmp`, a bind mount) the container.
struct Results {
    dir: PathBuf,
}

impl Results {
    fn new(env: &Env, config: &mut Value) -> Results {
        let dir = env.dir.path().join("results");
        fs::create_dir(&dir).unwrap();
        config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/tmp", "type": "bind", "source": dir, "options": ["rbind", "rw"]
        }));
        Results { dir }
    }

    fn order(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("order"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn record(&self, phase: &str) -> Value {
        let path = self.dir.join(format!("{phase}.json"));
        let text = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("the {phase} hook left no record at {}: {e}", path.display())
        });
        serde_json::from_str(&text).unwrap()
    }

    /// The state the hook of `phase` read on stdin.
    fn stdin(&self, phase: &str) -> Value {
        let record = self.record(phase);
        serde_json::from_str(record["stdin"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("the {phase} hook's stdin is not JSON ({e}): {record}"))
    }
}

fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {}", r.describe());
}

#[test]
fn all_six_run_in_order_with_the_state_and_in_their_namespaces() {
    require_root!("all_six_run_in_order_with_the_state_and_in_their_namespaces");
    let env = Env::new("hooks");
    let mut config = base_config(&["sh", "-c", "echo program >> /tmp/order; exec sleep 600"]);
    config["annotations"] = json!({"org.example.hook": "yes"});
    let results = Results::new(&env, &mut config);
    let host = |phase: &str| recording_hook(&host_checker(), &results.dir, phase);
    let mut prestart = host("prestart");
    prestart["env"] = json!(["HOOK_ENV=given"]);
    config["hooks"] = json!({
        "prestart": [prestart],
        "createRuntime": [host("createRuntime")],
        "createContainer": [host("createContainer")],
        "startContainer": [recording_hook(Path::new("/checker"), Path::new("/tmp"), "startContainer")],
        "poststart": [host("poststart")],
        "poststop": [host("poststop")],
    });
    env.write_config(&config);
    let bundle = env.bundle();
    ok(
        &env.hull(&["create", "--bundle", bundle.to_str().unwrap(), &env.id]),
        "create",
    );
    assert_eq!(
        results.order(),
        ["prestart", "createRuntime", "createContainer"],
        "create runs the create-time hooks, in order"
    );
    let created = env.state();
    let pid = created["pid"].as_i64().unwrap().to_string();
    ok(&env.hull(&["start", &env.id]), "start");
    let comm = results.record("poststart")["state_pid_comm"].clone();
    assert!(
        comm.is_string() && comm != "hull:[init]",
        "poststart runs once the init has executed the program, saw the init named {comm}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !results.order().contains(&"program".to_owned()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let order = results.order();
    assert_eq!(
        order[..4],
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "startContainer runs at start: {order:?}"
    );
    let mut after_start = order[4..].to_vec();
    after_start.sort();
    assert_eq!(
        after_start,
        ["poststart", "program"],
        "then the program and poststart: {order:?}"
    );
    assert_eq!(
        results.record("startContainer")["state_pid_comm"],
        Value::Null,
        "startContainer cannot see the host pid in the container's /proc"
    );
    assert_eq!(env.state()["status"], "running");
    ok(&env.hull(&["delete", "--force", &env.id]), "delete");
    assert_eq!(results.order().last().unwrap(), "poststop");

    let expected_status = [
        ("prestart", "created"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ];
    for (phase, status) in expected_status {
        let state = results.stdin(phase);
        assert_eq!(state["status"], status, "{phase} status: {state}");
        assert_eq!(state["id"], env.id.as_str(), "{phase}: {state}");
        assert_eq!(
            state["bundle"],
            bundle.to_str().unwrap(),
            "{phase}: {state}"
        );
        assert_eq!(
            state["ociVersion"], created["ociVersion"],
            "{phase}: the version `state` reports: {state}"
        );
        assert_eq!(
            state["annotations"],
            json!({"org.example.hook": "yes"}),
            "{phase}: {state}"
        );
        if phase == "poststop" {
            assert_eq!(state.get("pid"), None, "no pid once stopped: {state}");
        } else {
            assert_eq!(
                state["pid"].to_string(),
                pid,
                "{phase} gets the init's host pid, as `state` reports it: {state}"
            );
        }
    }

    let host_mnt = ns_link("self", "mnt");
    for phase in ["prestart", "createRuntime", "poststart", "poststop"] {
        let record = results.record(phase);
        assert_eq!(
            record["namespaces"]["mnt"], host_mnt,
            "{phase} runs in the runtime namespace: {record}"
        );
        assert_eq!(
            record["cwd"],
            bundle.to_str().unwrap(),
            "{phase} runs in the bundle: {record}"
        );
    }
    let container_ns = |phase: &str| results.record(phase)["namespaces"].clone();
    for phase in ["createContainer", "startContainer"] {
        let ns = container_ns(phase);
        for kind in ["mnt", "pid", "net", "uts", "ipc"] {
            assert_ne!(
                ns[kind],
                ns_link("self", kind),
                "{phase} runs in the container's {kind} namespace: {ns}"
            );
        }
    }
    assert_eq!(
        container_ns("createContainer"),
        container_ns("startContainer"),
        "both container hooks run in the same namespaces"
    );
    assert_eq!(
        results.record("createContainer")["cwd"],
        rootfs().to_str().unwrap(),
        "createContainer runs in the rootfs, before pivot_root"
    );
    assert_eq!(
        results.record("startContainer")["cwd"],
        "/",
        "startContainer runs in the container, at the process's cwd"
    );
    assert_eq!(results.record("prestart")["env"], "given", "a hook's env");
    assert_eq!(
        results.record("createRuntime")["env"],
        Value::Null,
        "without env a hook has hull's environment"
    );
}

/// `run` in the foreground goes through the same points: create-time hooks, start's, and poststop at the end.
#[test]
fn run_runs_every_hook() {
    require_root!("run_runs_every_hook");
    let env = Env::new("hookrun");
    let mut config = base_config(&["sh", "-c", "echo program >> /tmp/order"]);
    let results = Results::new(&env, &mut config);
    let host = |phase: &str| recording_hook(&host_checker(), &results.dir, phase);
    config["hooks"] = json!({
        "createRuntime": [host("createRuntime")],
        "startContainer": [recording_hook(Path::new("/checker"), Path::new("/tmp"), "startContainer")],
        "poststop": [host("poststop")],
    });
    let r = env.run(&config);
    ok(&r, "run");
    assert_eq!(
        results.order(),
        ["createRuntime", "startContainer", "program", "poststop"]
    );
    assert!(
        !env.root().join(&env.id).exists(),
        "run removed the container"
    );
}

/// A failing prestart, createRuntime or createContainer hook fails `create` with an error naming the hook, leaves
/// nothing behind, and (as the lifecycle goes on to the container's destruction) the poststop hooks run.
#[test]
fn a_failing_create_time_hook_fails_create_and_leaves_nothing() {
    require_root!("a_failing_create_time_hook_fails_create_and_leaves_nothing");
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let env = Env::new("hookfail");
        let mut config = base_config(&["true"]);
        let results = Results::new(&env, &mut config);
        config["hooks"] = json!({
            kind: [checker_hook(&["write", "/dev/null", "x"]), checker_hook(&["exit", "3"])],
            "poststop": [recording_hook(&host_checker(), &results.dir, "poststop")],
        });
        env.write_config(&config);
        let r = env.hull(&["create", &env.id]);
        assert_eq!(r.code, 1, "{kind}: {}", r.describe());
        assert!(
            r.stderr
                .contains(&format!("error running {kind} hook #1: exit status 3")),
            "{kind}: the error names the hook: {}",
            r.describe()
        );
        assert_leaves_nothing(&env);
        assert_eq!(env.hull(&["state", &env.id]).code, 1, "{kind}: state fails");
        assert_eq!(results.order(), ["poststop"], "{kind}: poststop ran");
    }
}

/// A hook path that does not exist is an error naming it; nothing is left.
#[test]
fn a_missing_hook_program_is_named() {
    require_root!("a_missing_hook_program_is_named");
    let env = Env::new("hookmissing");
    let mut config = base_config(&["true"]);
    config["hooks"] = json!({"createRuntime": [{"path": "/nonexistent/hook"}]});
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr.contains(
            "error running createRuntime hook #0: start /nonexistent/hook: No such file or directory"
        ),
        "{}",
        r.describe()
    );
    assert_leaves_nothing(&env);
}

/// A hook killed by a signal is named in Go's words, as runc's error has it (`signal: bad system call`), so that
/// scripts matching runc's text match hull's.
#[test]
fn a_hook_killed_by_a_signal_is_named_as_runc_names_it() {
    require_root!("a_hook_killed_by_a_signal_is_named_as_runc_names_it");
    let env = Env::new("hooksignal");
    let mut config = base_config(&["true"]);
    config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -SYS $$"]}]});
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr
            .contains("error running createRuntime hook #0: signal: bad system call"),
        "expected Go's signal name in the error: {}",
        r.describe()
    );
    assert_leaves_nothing(&env);
}

/// A hook past its timeout is killed and fails the operation, naming the timeout.
#[test]
fn a_hook_past_its_timeout_is_killed() {
    require_root!("a_hook_past_its_timeout_is_killed");
    let env = Env::new("hooktimeout");
    let mut config = base_config(&["true"]);
    let mut slow = checker_hook(&["sleep", "61"]);
    slow["timeout"] = json!(1);
    config["hooks"] = json!({"prestart": [slow]});
    env.write_config(&config);
    let started = Instant::now();
    let r = env.hull(&["create", &env.id]);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr
            .contains("error running prestart hook #0: hook ran past specified timeout of 1.0s"),
        "{}",
        r.describe()
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "create took {took:?}"
    );
    assert!(
        common::processes_mentioning("sleep 61").is_empty(),
        "the hook was killed: {:?}",
        common::processes_mentioning("sleep 61")
    );
    assert_leaves_nothing(&env);
}

/// A failing startContainer hook fails `start`, the program never runs, and the container is destroyed.
#[test]
fn a_failing_start_container_hook_fails_start_and_destroys_the_container() {
    require_root!("a_failing_start_container_hook_fails_start_and_destroys_the_container");
    let env = Env::new("hookstart");
    let mut config = base_config(&["sh", "-c", "echo program >> /tmp/order"]);
    let results = Results::new(&env, &mut config);
    config["hooks"] = json!({
        "startContainer": [{"path": "/checker", "args": ["checker", "exit", "4"]}],
        "poststop": [recording_hook(&host_checker(), &results.dir, "poststop")],
    });
    env.write_config(&config);
    ok(&env.hull(&["create", &env.id]), "create");
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr
            .contains("error running startContainer hook #0: exit status 4"),
        "{}",
        r.describe()
    );
    assert_eq!(results.order(), ["poststop"], "the program did not run");
    assert_leaves_nothing(&env);
}

/// runtime-spec 1.3 and runc 1.5: a failing poststart hook fails `start` (the later poststart hooks do not run) and
/// stops the container, which `delete` then removes; `run -d` fails the same way and removes the container itself.
/// Before, the failure was a warning and the container ran on.
#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container() {
    require_root!("a_failing_poststart_hook_fails_start_and_stops_the_container");
    let env = Env::new("hookpoststart");
    let mut config = base_config(&["sleep", "600"]);
    let results = Results::new(&env, &mut config);
    let host = |phase: &str| recording_hook(&host_checker(), &results.dir, phase);
    config["hooks"] = json!({
        "poststart": [checker_hook(&["exit", "5"]), host("poststart")],
        "poststop": [host("poststop")],
    });
    env.write_config(&config);
    ok(&env.hull(&["create", &env.id]), "create");
    let r = env.hull(&["start", &env.id]);
    assert_eq!(
        (
            r.code,
            r.stderr
                .contains("error running poststart hook #0: exit status 5")
        ),
        (1, true),
        "expected start to fail naming the poststart hook: {}",
        r.describe()
    );
    assert_eq!(
        env.state()["status"],
        "stopped",
        "expected the container stopped"
    );
    assert!(
        results.order().is_empty(),
        "expected no later poststart hook to run, saw {:?}",
        results.order()
    );
    ok(&env.hull(&["delete", &env.id]), "delete");
    assert_eq!(results.order(), ["poststop"]);
    assert_leaves_nothing(&env);

    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(
        (
            r.code,
            r.stderr
                .contains("error running poststart hook #0: exit status 5")
        ),
        (1, true),
        "expected run -d to fail naming the poststart hook: {}",
        r.describe()
    );
    assert_eq!(results.order(), ["poststop", "poststop"]);
    assert_leaves_nothing(&env);
}

/// Failing poststop hooks are warnings (runtime-spec): the next hook runs and `delete` succeeds.
#[test]
fn failing_poststop_hooks_are_warnings() {
    require_root!("failing_poststop_hooks_are_warnings");
    let env = Env::new("hookwarn");
    let mut config = base_config(&["sleep", "600"]);
    let results = Results::new(&env, &mut config);
    let host = |phase: &str| recording_hook(&host_checker(), &results.dir, phase);
    config["hooks"] = json!({
        "poststop": [checker_hook(&["exit", "6"]), host("poststop")],
    });
    env.write_config(&config);
    ok(&env.hull(&["run", "-d", &env.id]), "run -d");
    let r = env.hull(&["delete", "--force", &env.id]);
    ok(&r, "delete");
    assert!(
        r.stderr
            .contains("error running poststop hook #0: exit status 6"),
        "{}",
        r.describe()
    );
    assert_eq!(results.order(), ["poststop"]);
    assert_leaves_nothing(&env);
}
