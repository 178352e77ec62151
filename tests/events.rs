//! `events` on the real kernel: `--stats` reports the configured limits and the usage runc's JSON shape carries,
//! the streaming mode prints a stats line every interval and ends with the container, OOM kills are reported, and
//! the errors are runc's. Runs on v1, hybrid (this host) and pure v2.

mod common;

use std::fs::{self, File};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{base_config, Env};
use serde_json::{json, Value};

const MEMORY_LIMIT: u64 = 64 << 20;
const PIDS_LIMIT: u64 = 17;

/// A detached container running `args` with a memory and a pids limit.
fn run_limited(env: &Env, args: &[&str], memory_limit: u64) {
    let mut config = base_config(args);
    config["linux"]["resources"]["memory"] = json!({"limit": memory_limit});
    config["linux"]["resources"]["pids"] = json!({"limit": PIDS_LIMIT});
    env.write_config(&config);
    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
}

/// `hull events` in the background, its stdout going to a file (read with `lines_of`).
fn spawn_events(env: &Env, args: &[&str], out: &File) -> Child {
    common::hull_command()
        .arg("--root")
        .arg(env.root())
        .arg("events")
        .args(args)
        .arg(&env.id)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .spawn()
        .expect("spawn hull events")
}

fn lines_of(env: &Env) -> Vec<Value> {
    fs::read_to_string(env.dir.path().join("events.out"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// Waits until `done` holds for the events printed so far; false after `timeout`.
fn wait_for_lines(env: &Env, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done(&lines_of(env)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn assert_stats_event(event: &Value, id: &str) {
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], id, "{event}");
    assert!(event["data"]["cpu"]["usage"].is_object(), "{event}");
}

#[test]
fn events_stats_reports_limits_and_usage() {
    require_root!("events_stats_reports_limits_and_usage");
    let env = Env::new("evstats");
    run_limited(
        &env,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 3600",
        ],
        MEMORY_LIMIT,
    );
    std::thread::sleep(Duration::from_millis(300));
    let r = env.hull(&["events", "--stats", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout.matches('\n').count(),
        1,
        "one line: {:?}",
        r.stdout
    );
    assert!(r.stdout.ends_with("}\n"), "{:?}", r.stdout);
    let event: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_stats_event(&event, &env.id);
    let data = &event["data"];
    assert!(data["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{data}");
    assert_eq!(data["pids"]["limit"], PIDS_LIMIT, "{data}");
    assert_eq!(data["memory"]["usage"]["limit"], MEMORY_LIMIT, "{data}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert!(
        data["memory"]["raw"]
            .as_object()
            .is_some_and(|raw| !raw.is_empty()),
        "{data}"
    );
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    // runc 1.2+: pressure stall information, where the stats come from cgroup v2 and the kernel keeps PSI.
    if common::unified()
        && common::dir_for(&env.id, "cpu")
            .join("cpu.pressure")
            .exists()
    {
        for group in ["cpu", "memory", "blkio"] {
            assert!(
                data[group]["psi"].is_object(),
                "expected {group}.psi in the stats: {data}"
            );
        }
    } else {
        assert!(data["cpu"]["psi"].is_null(), "{data}");
    }
    let keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "blkio",
            "cpu",
            "cpuset",
            "hugetlb",
            "intel_rdt",
            "memory",
            "network_interfaces",
            "pids"
        ]
    );
    assert!(
        r.stdout.contains(r#","network_interfaces":null}}"#),
        "{:?}",
        r.stdout
    );

    // runc's errors, in runc's order: flag value, argument count, container, interval, status.
    for (args, message) in [
        (
            vec!["events", "--interval", "abc", env.id.as_str()],
            "invalid value \"abc\" for flag -interval: parse error",
        ),
        (
            vec!["events", "--interval", "1.5", "nosuch"],
            "for flag -interval: parse error",
        ),
        (vec!["events"], "\"events\" requires exactly 1 argument(s)"),
        (
            vec!["events", "--stats", "nosuch"],
            "container does not exist",
        ),
        (
            vec!["events", "--interval", "0", "nosuch"],
            "container does not exist",
        ),
        (
            vec!["events", "--interval=-1s", env.id.as_str()],
            "duration interval must be greater than 0",
        ),
    ] {
        let r = env.hull(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.describe());
        assert!(r.stderr.contains(message), "{args:?}: {}", r.describe());
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.describe());
    }
    assert_eq!(env.hull(&["kill", &env.id, "KILL"]).code, 0);
    env.wait_for_status("stopped", Duration::from_secs(5));
    let r = env.hull(&["events", "--stats", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr
            .contains(&format!("container with id {} is not running", env.id)),
        "{}",
        r.describe()
    );
}

#[test]
fn events_streams_until_the_container_stops() {
    require_root!("events_streams_until_the_container_stops");
    let env = Env::new("evstream");
    run_limited(&env, &["sleep", "3600"], MEMORY_LIMIT);
    let out = File::create(env.dir.path().join("events.out")).unwrap();
    let started = Instant::now();
    let mut events = spawn_events(&env, &["--interval", "200ms"], &out);
    let two = wait_for_lines(&env, Duration::from_secs(10), |lines| lines.len() >= 2);
    let elapsed = started.elapsed();
    if !two {
        let _ = events.kill();
    }
    assert!(two, "two stats lines within 10 s: {:?}", lines_of(&env));
    assert!(
        elapsed >= Duration::from_millis(400),
        "the first line comes after one interval, the second after two: {elapsed:?}"
    );
    for event in lines_of(&env) {
        assert_stats_event(&event, &env.id);
        assert_eq!(event["data"]["pids"]["limit"], PIDS_LIMIT, "{event}");
    }
    assert_eq!(
        events.try_wait().unwrap(),
        None,
        "events runs while the container does"
    );
    assert_eq!(env.hull(&["kill", &env.id, "KILL"]).code, 0);
    assert_eq!(
        wait_exit(&mut events, Duration::from_secs(5)),
        Some(0),
        "events exits 0 once the container has stopped"
    );
}

#[test]
fn events_reports_oom_kills() {
    require_root!("events_reports_oom_kills");
    let env = Env::new("evoom");
    // The shell that fills a variable is the biggest process and the OOM killer's victim; the init survives it.
    let mut config = base_config(&["sh", "-c", "sleep 0.5; sh -c \"$HOG\"; sleep 3600"]);
    config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("HOG=x=$(head -c 200000000 /dev/zero | tr '\\0' a)"));
    config["linux"]["resources"]["memory"] = json!({"limit": 16 << 20});
    env.write_config(&config);
    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    let out = File::create(env.dir.path().join("events.out")).unwrap();
    let mut events = spawn_events(&env, &["--interval", "1m"], &out);
    let oom = wait_for_lines(&env, Duration::from_secs(20), |lines| {
        lines.iter().any(|l| l["type"] == "oom")
    });
    let _ = env.hull(&["kill", &env.id, "KILL"]);
    let code = wait_exit(&mut events, Duration::from_secs(5));
    assert!(oom, "an oom event within 20 s: {:?}", lines_of(&env));
    for event in lines_of(&env) {
        assert_eq!(event, json!({"type": "oom", "id": env.id}));
    }
    assert_eq!(code, Some(0));
}
