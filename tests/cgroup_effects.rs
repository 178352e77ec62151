//! cgroup limits observed in effect, and the commands that act on a container's cgroup (pause, resume, ps, update,
//! kill on a paused container): seed experiments A17 (cpu quota), A18 (memory limit and OOM), A19 (shares 2:1), A20
//! (pids limit), A21 (write throttle), A22 (pause/resume), and a device denied even to a process with CAP_MKNOD. Runs on v1, hybrid and pure
//! v2 (`make test-host`). Tests that measure CPU time take a lock so they never compete with each other for a CPU.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::loop_device::LoopDevice;
use common::{base_config, cgroup_dirs_named, dir_for, read, unified, Env};
use serde_json::{json, Value};

static CPU: Mutex<()> = Mutex::new(());

/// The value of `key` in a flat keyed file (`cpu.stat`, `memory.events`, `pids.events`, `memory.oom_control`).
fn keyed(dir: &Path, file: &str, key: &str) -> u64 {
    let text = read(dir, file);
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {key} in {}/{file}: {text:?}", dir.display()))
}

/// CPU time used by the container's cgroup so far.
fn cpu_used(id: &str) -> Duration {
    if unified() {
        Duration::from_micros(keyed(&dir_for(id, "cpu"), "cpu.stat", "usage_usec "))
    } else {
        Duration::from_nanos(
            read(&dir_for(id, "cpuacct"), "cpuacct.usage")
                .parse()
                .unwrap(),
        )
    }
}

/// The share of one CPU the container used over `window`.
fn cpu_share(id: &str, window: Duration) -> f64 {
    let (used0, t0) = (cpu_used(id), Instant::now());
    sleep(window);
    let (used1, t1) = (cpu_used(id), Instant::now());
    (used1 - used0).as_secs_f64() / (t1 - t0).as_secs_f64()
}

fn busy_loop() -> Value {
    base_config(&["sh", "-c", "while : ; do : ; done"])
}

/// Start `config` detached under `env` and return nothing until it runs.
fn start(env: &Env, config: &Value) {
    env.write_config(config);
    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
}

fn status(env: &Env) -> String {
    env.state()["status"].as_str().unwrap().to_owned()
}

#[test]
fn a17_cpu_quota_caps_a_busy_loop() {
    require_root!("a17_cpu_quota_caps_a_busy_loop");
    let _cpu = CPU.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new("a17");
    let mut config = busy_loop();
    config["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000});
    start(&env, &config);
    if unified() {
        assert_eq!(read(&dir_for(&env.id, "cpu"), "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read(&dir_for(&env.id, "cpu"), "cpu.cfs_quota_us"), "20000");
        assert_eq!(
            read(&dir_for(&env.id, "cpu"), "cpu.cfs_period_us"),
            "100000"
        );
    }
    sleep(Duration::from_millis(500));
    let share = cpu_share(&env.id, Duration::from_secs(3));
    assert!(
        (0.15..=0.25).contains(&share),
        "a 20000/100000 quota gives 0.20 of a CPU, measured {share:.3}"
    );
    // update raises the quota and keeps the period when only the quota is given.
    let r = env.hull(&["update", "--cpu-quota", "50000", &env.id]);
    assert_eq!(r.code, 0, "update: {}", r.describe());
    let share = cpu_share(&env.id, Duration::from_secs(2));
    assert!(
        (0.42..=0.58).contains(&share),
        "after update --cpu-quota 50000: 0.50 of a CPU, measured {share:.3}"
    );
}

#[test]
fn a18_memory_limit_and_oom_kill() {
    require_root!("a18_memory_limit_and_oom_kill");
    let env = Env::new("a18");
    // dd fills a 64 MiB buffer from /dev/zero: far over a 20 MiB limit without swap.
    let mut config = base_config(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    config["linux"]["resources"]["memory"] = json!({"limit": 20_971_520, "swap": 20_971_520});
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let memory = dir_for(&env.id, "memory");
    if unified() {
        assert_eq!(read(&memory, "memory.max"), "20971520");
        if memory.join("memory.swap.max").exists() {
            assert_eq!(read(&memory, "memory.swap.max"), "0");
        }
    } else {
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "20971520");
        if memory.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "20971520");
        }
    }
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    env.wait_for_status("stopped", Duration::from_secs(10));
    // systemd removes a scope, and its cgroup with the OOM count, once its last process is gone: then the exit
    // status alone tells.
    if !common::systemd_driver() {
        let kills = if unified() {
            keyed(&memory, "memory.events", "oom_kill ")
        } else {
            keyed(&memory, "memory.oom_control", "oom_kill ")
        };
        assert!(kills >= 1, "the cgroup counts an OOM kill, got {kills}");
    }
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    let r = env.run(&config);
    assert_eq!(
        r.code,
        137,
        "run reports SIGKILL as 128+9: {}",
        r.describe()
    );
}

#[test]
fn a19_cpu_shares_two_to_one_then_pause() {
    require_root!("a19_cpu_shares_two_to_one_then_pause");
    let _cpu = CPU.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = (Env::new("a19a"), Env::new("a19b"));
    for (env, shares) in [(&a, 1024), (&b, 512)] {
        let mut config = busy_loop();
        config["linux"]["resources"]["cpu"] = json!({"shares": shares, "cpus": "0"});
        start(env, &config);
    }
    if unified() {
        assert_eq!(read(&dir_for(&a.id, "cpu"), "cpu.weight"), "100");
        assert_eq!(read(&dir_for(&b.id, "cpu"), "cpu.weight"), "59");
    } else {
        assert_eq!(read(&dir_for(&b.id, "cpu"), "cpu.shares"), "512");
    }
    sleep(Duration::from_millis(500));
    let (a0, b0) = (cpu_used(&a.id), cpu_used(&b.id));
    sleep(Duration::from_secs(4));
    let (a1, b1) = (cpu_used(&a.id), cpu_used(&b.id));
    let ratio = (a1 - a0).as_secs_f64() / (b1 - b0).as_secs_f64();
    let expected = if unified() { 100.0 / 59.0 } else { 2.0 };
    assert!(
        (ratio - expected).abs() <= 0.35,
        "shares 1024:512 on one CPU give {expected:.2}:1, measured {ratio:.2}"
    );
    assert_eq!(a.hull(&["pause", &a.id]).code, 0);
    let share = cpu_share(&b.id, Duration::from_secs(1));
    assert!(share >= 0.85, "with A paused B gets the CPU: {share:.3}");
}

#[test]
fn a20_pids_limit_stops_forks() {
    require_root!("a20_pids_limit_stops_forks");
    let env = Env::new("a20");
    // The forks run in a child shell, which gives up at the first refused fork; the init outlives it, so the
    // cgroup still exists to be read (a systemd scope goes with its last process).
    let mut config = base_config(&[
        "sh",
        "-c",
        "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; wait'; sleep 5",
    ]);
    config["linux"]["resources"]["pids"] = json!({"limit": 5});
    start(&env, &config);
    sleep(Duration::from_millis(500));
    let pids = dir_for(&env.id, "pids");
    assert_eq!(read(&pids, "pids.max"), "5");
    let current: u64 = read(&pids, "pids.current").parse().unwrap();
    assert!(current <= 5, "pids.current {current} <= 5");
    assert!(
        keyed(&pids, "pids.events", "max ") > 0,
        "pids.events counts refused forks"
    );
}

/// Seed A21: direct writes to a block device throttled to 4 MiB/s take about 4 s for 16 MiB; without the throttle the
/// same copy is seconds faster (busybox dd prints no rate, so `run`'s wall time is measured; under emulation, as in
/// the cgroup v2 VM, the copy itself takes over a second, so the throttle is judged by the time it adds). The device
/// is a loop device, given to the container as /dev/disk.
#[test]
fn a21_write_throttle_slows_direct_writes() {
    require_root!("a21_write_throttle_slows_direct_writes");
    let env = Env::new("a21dd");
    let disk = LoopDevice::attach(env.dir.path().join("disk.img"), 32 << 20)
        .unwrap_or_else(|e| panic!("a loop device for the throttle: {e}"));
    let (major, minor) = (disk.major, disk.minor);
    let rate: u64 = 4 << 20;
    let copy = |throttle: bool| -> f64 {
        let mut config = base_config(&[
            "dd",
            "if=/dev/zero",
            "of=/dev/disk",
            "bs=1M",
            "count=16",
            "oflag=direct",
        ]);
        config["linux"]["devices"] = json!([{"path": "/dev/disk", "type": "b", "major": major, "minor": minor, "fileMode": 0o600}]);
        config["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"allow": true, "type": "b", "major": major, "minor": minor, "access": "rw"}),
            );
        if throttle {
            config["linux"]["resources"]["blockIO"] = json!({
                "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": rate}]
            });
        }
        let began = Instant::now();
        let r = env.run(&config);
        assert_eq!(r.code, 0, "dd to {}: {}", disk.path.display(), r.describe());
        began.elapsed().as_secs_f64()
    };
    let free = copy(false);
    let throttled = copy(true);
    assert!(
        throttled >= 3.0,
        "16 MiB at {rate} B/s should take about 4 s, took {throttled} s (unthrottled {free} s)"
    );
    assert!(
        throttled - free >= 2.0,
        "the throttle should add seconds to the copy: unthrottled {free} s, throttled {throttled} s"
    );
}

#[test]
fn a22_pause_and_resume() {
    require_root!("a22_pause_and_resume");
    let _cpu = CPU.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new("a22");
    start(&env, &busy_loop());
    let r = env.hull(&["resume", &env.id]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: container not paused\n"),
        "resume of a running container"
    );
    let r = env.hull(&["pause", &env.id]);
    assert_eq!(r.code, 0, "pause: {}", r.describe());
    assert_eq!(status(&env), "paused");
    if unified() {
        let dir = dir_for(&env.id, "cpu");
        assert_eq!(read(&dir, "cgroup.freeze"), "1");
        assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(
            read(&dir_for(&env.id, "freezer"), "freezer.state"),
            "FROZEN"
        );
    }
    let share = cpu_share(&env.id, Duration::from_secs(1));
    assert!(share < 0.02, "a paused container uses no CPU: {share:.3}");
    let r = env.hull(&["pause", &env.id]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: container not running\n")
    );
    assert_eq!(env.hull(&["resume", &env.id]).code, 0);
    assert_eq!(status(&env), "running");
    let share = cpu_share(&env.id, Duration::from_secs(1));
    assert!(share > 0.5, "resumed, the loop runs again: {share:.3}");
    // SIGKILL reaches a paused container: hull thaws it, as runc does.
    assert_eq!(env.hull(&["pause", &env.id]).code, 0);
    assert_eq!(env.hull(&["kill", &env.id, "KILL"]).code, 0);
    env.wait_for_status("stopped", Duration::from_secs(5));
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    assert!(cgroup_dirs_named(&env.id).is_empty());
}

#[test]
fn ps_lists_the_container_processes() {
    require_root!("ps_lists_the_container_processes");
    let env = Env::new("ps");
    start(&env, &base_config(&["sh", "-c", "sleep 30 & sleep 31"]));
    sleep(Duration::from_millis(200));
    let init = env.state()["pid"].as_i64().unwrap();
    let r = env.hull(&["ps", "--format", "json", &env.id]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.describe());
    let pids: Vec<i64> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        pids.len(),
        2,
        "sh's two sleeps (sh execs the last): {pids:?}"
    );
    assert!(
        pids.contains(&init) && r.stdout.ends_with("]\n"),
        "{:?}",
        r.stdout
    );
    let r = env.hull(&["ps", &env.id, "-o", "pid,args"]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "header and two processes: {:?}", r.stdout);
    assert!(lines[0].contains("PID"), "{:?}", lines[0]);
    assert!(
        lines.iter().any(|l| l.contains("sleep 30")),
        "{:?}",
        r.stdout
    );
    let r = env.hull(&["ps", "-f", "yaml", &env.id]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: invalid format option\n")
    );
    assert_eq!(env.hull(&["kill", &env.id, "KILL"]).code, 0);
}

#[test]
fn update_changes_limits_of_a_running_container() {
    require_root!("update_changes_limits_of_a_running_container");
    let env = Env::new("update");
    let mut config = base_config(&["sleep", "30"]);
    config["linux"]["resources"]["memory"] = json!({"limit": 104_857_600});
    config["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 50000});
    start(&env, &config);
    let r = env.hull(&[
        "update",
        "--memory",
        "200m",
        "--cpu-period",
        "100000",
        &env.id,
    ]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let memory = dir_for(&env.id, "memory");
    let cpu = dir_for(&env.id, "cpu");
    if unified() {
        assert_eq!(read(&memory, "memory.max"), "209715200");
        assert_eq!(read(&cpu, "cpu.max"), "20000 100000", "the quota is kept");
    } else {
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "209715200");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "20000", "the quota is kept");
    }
    let r = env.hull_with(
        &["update", "--resources", "-", &env.id],
        Duration::from_secs(10),
        |cmd| {
            let file = env.dir.path().join("resources.json");
            fs::write(
                &file,
                r#"{"pids":{"limit":77},"memory":{"limit":314572800}}"#,
            )
            .unwrap();
            cmd.stdin(fs::File::open(file).unwrap());
        },
    );
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(read(&dir_for(&env.id, "pids"), "pids.max"), "77");
    let limit = if unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read(&memory, limit), "314572800");
    let r = env.hull(&["update", "--memory", "lots", &env.id]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: invalid value for memory: invalid size: 'lots'\n")
    );
    let r = env.hull(&["update", "--l3-cache-schema", "L3:0=f", &env.id]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: Intel RDT/CAT: l3 cache schema is not enabled\n")
    );
    assert_eq!(env.hull(&["kill", &env.id, "KILL"]).code, 0);
    env.wait_for_status("stopped", Duration::from_secs(5));
    let r = env.hull(&["update", "--memory", "1g", &env.id]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "error: container not running\n")
    );
}

/// The device policy holds even against a process that may mknod: /dev/kmsg (c 1:11) is not in the allowed list,
/// so a node made for it cannot be opened (v1 devices controller, or the eBPF filter on cgroup v2).
#[test]
fn a_denied_device_stays_denied_with_cap_mknod() {
    require_root!("a_denied_device_stays_denied_with_cap_mknod");
    let env = Env::new("kmsg");
    let mut config = base_config(&[
        "sh",
        "-c",
        "mknod /dev/kmsg2 c 1 11 && echo made; head -c1 /dev/kmsg2 >/dev/null 2>&1 || echo denied; \
         head -c1 /dev/zero | wc -c",
    ]);
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_MKNOD".into());
    }
    let r = env.run(&config);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "made\ndenied\n1\n"),
        "mknod allowed, kmsg denied, /dev/zero allowed: {}",
        r.describe()
    );
}
