//! cgroups on the real host: the init is in its final cgroup before `create` returns, the configured limits are in
//! the kernel's files, `delete` removes the directories (seed A30). Runs on v1, hybrid (this host) and pure v2
//! (`make test-host` runs it in a systemd + cgroup v2 guest).

mod common;

use std::fs;
use std::path::Path;

use common::loop_device::LoopDevice;
use common::{base_config, cgroup_dirs_named, dir_for, read, unified, Env};
use serde_json::json;

#[test]
fn a30_placement_before_create_returns_and_cleanup() {
    require_root!("a30_placement_before_create_returns_and_cleanup");
    require_cgroupfs_driver!("a30_placement_before_create_returns_and_cleanup");
    let env = Env::new("a30");
    let mut config = base_config(&["cat", "/proc/self/cgroup"]);
    config["linux"]["cgroupsPath"] = format!("/hull-test/{}", env.id).into();
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let pid = env.state()["pid"].as_i64().unwrap().to_string();
    let dirs = cgroup_dirs_named(&env.id);
    assert!(!dirs.is_empty(), "cgroup directories exist after create");
    for dir in &dirs {
        assert!(
            dir.to_string_lossy()
                .contains(&format!("/hull-test/{}", env.id)),
            "absolute cgroupsPath: {dir:?}"
        );
        let procs = read(dir, "cgroup.procs");
        assert!(
            procs.lines().any(|p| p == pid),
            "init {pid} is in {} already while created: {procs:?}",
            dir.display()
        );
    }
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert!(
        cgroup_dirs_named(&env.id).is_empty(),
        "delete removes every cgroup directory"
    );
    // With a cgroup namespace the container sees itself at the root.
    let r = env.run(&config);
    assert_eq!(r.code, 0, "{}", r.describe());
    for line in r.stdout.lines() {
        assert!(
            line.ends_with(":/"),
            "inside a cgroup namespace every path is /: {:?}",
            r.stdout
        );
    }
}

/// A nested cgroupsPath: missing ancestors are created, and `delete` removes the ones hull created and only those
/// (an ancestor another container still uses stays; one that existed before stays).
#[test]
fn nested_cgroups_path_parents_are_removed_only_when_hull_made_them() {
    require_root!("nested_cgroups_path_parents_are_removed_only_when_hull_made_them");
    require_cgroupfs_driver!("nested_cgroups_path_parents_are_removed_only_when_hull_made_them");
    let exists = |name: &str| !cgroup_dirs_named(name).is_empty();
    let deep = Env::new("nest");
    let top = format!("hull-nest-{}", deep.id);
    let mut config = base_config(&["sleep", "30"]);
    config["linux"]["cgroupsPath"] = format!("/{top}/mid/{}", deep.id).into();
    deep.write_config(&config);
    assert_eq!(deep.hull(&["create", &deep.id]).code, 0);
    assert!(exists(&top) && exists("mid") && exists(&deep.id));
    let shared = Env::new("nest-b");
    config["linux"]["cgroupsPath"] = format!("/{top}/{}", shared.id).into();
    shared.write_config(&config);
    assert_eq!(shared.hull(&["create", &shared.id]).code, 0);

    assert_eq!(deep.hull(&["delete", "--force", &deep.id]).code, 0);
    assert!(!exists(&deep.id), "the container's own cgroup is removed");
    assert!(
        cgroup_dirs_named("mid")
            .iter()
            .all(|d| !d.to_string_lossy().contains(&top)),
        "the ancestor only it used is removed"
    );
    assert!(
        exists(&top),
        "an ancestor another container still uses stays"
    );

    assert_eq!(shared.hull(&["delete", "--force", &shared.id]).code, 0);
    assert!(!exists(&shared.id));
    let left = cgroup_dirs_named(&top);
    assert!(
        !left.is_empty(),
        "the second container did not create {top}, so it stays"
    );
    for dir in left {
        fs::remove_dir(&dir).unwrap();
    }
}

/// blockIO throttles land as runc writes them (seed A21's file check): v1 `blkio.throttle.*_device` "M:m rate",
/// cgroup2 `io.max` "M:m wbps=rate riops=rate". The device is a loop device of the test's own, so this runs in the
/// v2 VM too, which has no disk.
#[test]
fn a21_block_io_throttle_files() {
    require_root!("a21_block_io_throttle_files");
    let env = Env::new("a21");
    let disk = LoopDevice::attach(env.dir.path().join("disk.img"), 16 << 20)
        .unwrap_or_else(|e| panic!("a loop device for the throttle: {e}"));
    let (major, minor) = (disk.major, disk.minor);
    let mut config = base_config(&["sleep", "30"]);
    config["linux"]["resources"]["blockIO"] = json!({
        "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 31457280}],
        "throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 1000}]
    });
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let dev = format!("{major}:{minor}");
    if unified() {
        let io_max = read(&dir_for(&env.id, "io"), "io.max");
        assert!(
            io_max.contains(&dev)
                && io_max.contains("wbps=31457280")
                && io_max.contains("riops=1000"),
            "io.max: {io_max:?}"
        );
    } else {
        let blkio = dir_for(&env.id, "blkio");
        assert_eq!(
            read(&blkio, "blkio.throttle.write_bps_device"),
            format!("{dev} 31457280")
        );
        assert_eq!(
            read(&blkio, "blkio.throttle.read_iops_device"),
            format!("{dev} 1000")
        );
    }
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

/// The init enters its cgroups by itself through files hull opened (see `cgroups::Entry`): that must work from inside
/// a new user namespace, and for an init forked in a new pid namespace; oomScoreAdj is inherited from hull.
#[test]
fn init_in_user_and_pid_namespace_is_placed_with_its_oom_score() {
    require_root!("init_in_user_and_pid_namespace_is_placed_with_its_oom_score");
    let env = Env::new("userns-cg");
    let mut config = base_config(&["true"]);
    common::add_user_namespace(&mut config);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    config["process"]["oomScoreAdj"] = 123.into();
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let pid = env.state()["pid"].as_i64().unwrap().to_string();
    let dirs = cgroup_dirs_named(&env.id);
    assert!(!dirs.is_empty(), "cgroup directories exist after create");
    for dir in &dirs {
        let procs = read(dir, "cgroup.procs");
        assert_eq!(procs, pid, "only the init is in {}", dir.display());
    }
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim(),
        "123"
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
}

#[test]
fn limits_are_written_to_the_kernel() {
    require_root!("limits_are_written_to_the_kernel");
    let env = Env::new("limits");
    let mut config = base_config(&["sleep", "30"]);
    config["linux"]["resources"] = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 209715200},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000},
        "pids": {"limit": 42}
    });
    env.write_config(&config);
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    if unified() {
        let dir = dir_for(&env.id, "memory");
        assert_eq!(read(&dir, "memory.max"), "209715200");
        assert_eq!(read(&dir, "cpu.max"), "20000 100000");
        assert_eq!(read(&dir, "pids.max"), "42");
        assert!(
            read(&dir, "cpu.weight").parse::<u32>().unwrap() < 100,
            "512 shares weigh less than the default"
        );
    } else {
        assert_eq!(
            read(&dir_for(&env.id, "memory"), "memory.limit_in_bytes"),
            "209715200"
        );
        assert_eq!(read(&dir_for(&env.id, "cpu"), "cpu.shares"), "512");
        assert_eq!(read(&dir_for(&env.id, "cpu"), "cpu.cfs_quota_us"), "20000");
        assert_eq!(
            read(&dir_for(&env.id, "cpu"), "cpu.cfs_period_us"),
            "100000"
        );
        assert_eq!(read(&dir_for(&env.id, "pids"), "pids.max"), "42");
        let devices = read(&dir_for(&env.id, "devices"), "devices.list");
        assert!(
            devices.contains("c 1:3 rwm") && !devices.contains("a *:* rwm"),
            "deny-all plus defaults: {devices}"
        );
    }
}

#[test]
fn pids_limit_is_enforced() {
    require_root!("pids_limit_is_enforced");
    let env = Env::new("pids");
    let mut config = base_config(&[
        "/bin/sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo done",
    ]);
    config["linux"]["resources"]["pids"] = json!({"limit": 5});
    let r = env.run(&config);
    assert!(
        r.stdout.contains("can't fork") || r.stderr.contains("can't fork"),
        "forks beyond 5 fail: {}",
        r.describe()
    );
}

/// Bad resource values: one clear error naming the value (or the file and value the kernel refused), exit 1, and no
/// state, cgroup or process left behind.
#[test]
fn bad_resources_give_a_clear_error_and_leave_nothing() {
    require_root!("bad_resources_give_a_clear_error_and_leave_nothing");
    let v2 = unified();
    let mut cases: Vec<(serde_json::Value, &str)> = vec![
        (
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit -5 is invalid",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}),
            "page size \"2M\" is invalid",
        ),
        (
            json!({"unified": {"memory.bogus": "1"}}),
            if v2 {
                "unable to set unified resource \"memory.bogus\""
            } else {
                "invalid configuration: cannot use unified on cgroup v1"
            },
        ),
        (
            json!({"memory": {"limit": 100_000_000, "swap": 50_000_000}}),
            if v2 {
                "memory+swap limit should be >= memory limit"
            } else {
                "memory.memsw.limit_in_bytes: Invalid argument"
            },
        ),
    ];
    if !v2 {
        // The kernel clamps cpu.shares silently; cgroup2 maps shares 1 to the valid weight 1.
        cases.push((
            json!({"cpu": {"shares": 1}}),
            "cpu.shares 1 is out of range: the minimum allowed is 2",
        ));
    }
    for (resources, message) in cases {
        let env = Env::new("badres");
        let mut config = base_config(&["true"]);
        for (key, value) in resources.as_object().unwrap() {
            config["linux"]["resources"][key] = value.clone();
        }
        env.write_config(&config);
        let r = env.hull(&["create", &env.id]);
        assert_eq!(r.code, 1, "{resources}: {}", r.describe());
        assert!(
            r.stderr.starts_with("error: ")
                && r.stderr.contains(message)
                && r.stderr.lines().count() == 1,
            "{resources}: expected one error line containing {message:?}, got {:?}",
            r.stderr
        );
        assert!(
            cgroup_dirs_named(&env.id).is_empty(),
            "{resources}: no cgroup left"
        );
        assert!(
            !env.root().join(&env.id).exists(),
            "{resources}: no state left"
        );
        assert!(
            common::processes_mentioning(&env.id).is_empty(),
            "{resources}: no process left"
        );
    }
}

/// hugepageLimits land in `hugetlb.<size>.max` (v2) or `hugetlb.<size>.limit_in_bytes` (v1). On a hybrid host whose
/// hugetlb controller is only in the cgroup2 mount, hull manages v1 as runc does there and fails with the file it
/// cannot write, leaving nothing behind.
#[test]
fn hugepage_limits_land_in_the_hugetlb_files() {
    require_root!("hugepage_limits_land_in_the_hugetlb_files");
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        skip!("hugepage_limits_land_in_the_hugetlb_files: the kernel has no 2 MiB huge pages");
    }
    let env = Env::new("hugetlb");
    let mut config = base_config(&["true"]);
    config["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}]);
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    if !unified() && !common::v1_mounted("hugetlb") {
        assert!(
            r.code == 1
                && r.stderr.contains(
                    "cannot write hugetlb.2MB.limit_in_bytes: the hugetlb cgroup v1 controller is not mounted"
                ),
            "{}",
            r.describe()
        );
        assert!(cgroup_dirs_named(&env.id).is_empty(), "no cgroup left");
        assert!(!env.root().join(&env.id).exists(), "no state left");
        return;
    }
    assert_eq!(r.code, 0, "{}", r.describe());
    let file = if unified() {
        "hugetlb.2MB.max"
    } else {
        "hugetlb.2MB.limit_in_bytes"
    };
    let dir = dir_for(&env.id, "hugetlb");
    assert_eq!(read(&dir, file), "4194304", "{}/{file}", dir.display());
    // The reservation limit too, where the kernel has it (5.7+), as runc since 1.1.10.
    let rsvd = file.replace("2MB.", "2MB.rsvd.");
    if dir.join(&rsvd).exists() {
        assert_eq!(
            read(&dir, &rsvd),
            "4194304",
            "expected the reservation limit {}/{rsvd} set with the limit",
            dir.display()
        );
    } else {
        eprintln!("note: this kernel has no {rsvd}");
    }
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}
