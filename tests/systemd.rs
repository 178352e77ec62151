//! The systemd cgroup driver (`--systemd-cgroup`): on a host booted with systemd and only cgroup v2 (`make
//! test-host` runs these in such a guest), the container's cgroup is a transient scope systemd made, with the
//! config's limits in its files, and `delete` makes systemd remove it. Elsewhere the driver is refused by name.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_leaves_nothing, base_config, Env};
use serde_json::json;

/// Whether this host runs systemd as its init (sd_booted) on a pure cgroup v2 hierarchy.
fn systemd_v2_host() -> bool {
    Path::new("/run/systemd/system").is_dir() && common::unified()
}

/// `systemctl show -p NAME --value UNIT`.
fn unit_property(unit: &str, name: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", name, "--value", unit])
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn systemd_hull(env: &Env, args: &[&str]) -> common::Run {
    let mut all = vec!["--systemd-cgroup"];
    all.extend_from_slice(args);
    env.hull(&all)
}

/// The engines' form `slice:prefix:name` gives the scope `prefix-name.scope` in that slice, made by systemd with
/// `Delegate=yes` and the init in it; the memory and pids limits are in its cgroup files; `delete --force` makes
/// systemd remove the unit and its cgroup.
#[test]
fn the_container_is_a_transient_scope_systemd_made() {
    require_root!("the_container_is_a_transient_scope_systemd_made");
    if !systemd_v2_host() {
        skip!("the_container_is_a_transient_scope_systemd_made: this host is not booted with systemd on pure cgroup v2 (make test-host runs it)");
    }
    let env = Env::new("sdscope");
    let mut config = base_config(&["sleep", "600"]);
    config["linux"]["cgroupsPath"] = json!(format!("machine.slice:hull-test:{}", env.id));
    config["linux"]["resources"]["memory"] = json!({"limit": 104857600});
    config["linux"]["resources"]["pids"] = json!({"limit": 42});
    env.write_config(&config);
    let r = systemd_hull(&env, &["run", "-d", &env.id]);
    assert_eq!(
        r.code,
        0,
        "expected run -d to work with --systemd-cgroup: {}",
        r.describe()
    );
    let unit = format!("hull-test-{}.scope", env.id);
    let cgroup = format!("/machine.slice/{unit}");
    for (name, want) in [
        ("ActiveState", "active"),
        ("Slice", "machine.slice"),
        ("Delegate", "yes"),
        ("CollectMode", "inactive-or-failed"),
        ("ControlGroup", cgroup.as_str()),
    ] {
        assert_eq!(
            unit_property(&unit, name),
            want,
            "systemctl show -p {name} {unit}"
        );
    }
    let dir = Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/'));
    assert_eq!(common::read(&dir, "memory.max"), "104857600");
    assert_eq!(common::read(&dir, "pids.max"), "42");
    // The limits are the unit's own properties too: systemd re-applying them (a daemon-reload) keeps them.
    assert_eq!(unit_property(&unit, "MemoryMax"), "104857600");
    assert_eq!(unit_property(&unit, "TasksMax"), "42");
    let reload = Command::new("systemctl")
        .arg("daemon-reload")
        .status()
        .unwrap();
    assert!(reload.success(), "systemctl daemon-reload");
    assert_eq!(
        common::read(&dir, "memory.max"),
        "104857600",
        "expected the memory limit to survive a daemon-reload"
    );
    let r = env.hull(&[
        "update",
        "--memory",
        "209715200",
        "--pids-limit",
        "50",
        &env.id,
    ]);
    assert_eq!(r.code, 0, "update: {}", r.describe());
    assert_eq!(
        unit_property(&unit, "MemoryMax"),
        "209715200",
        "update changes the unit's property"
    );
    assert_eq!(unit_property(&unit, "TasksMax"), "50");
    assert_eq!(common::read(&dir, "memory.max"), "209715200");
    assert_eq!(common::read(&dir, "pids.max"), "50");
    let pid = env.state()["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .trim(),
        format!("0::{cgroup}"),
        "expected the init in the unit's cgroup"
    );

    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete --force: {}", r.describe());
    assert_eq!(
        unit_property(&unit, "LoadState"),
        "not-found",
        "expected systemd to have forgotten {unit}"
    );
    assert!(
        !dir.exists(),
        "expected the unit's cgroup {} to be gone",
        dir.display()
    );
    assert_leaves_nothing(&env);
}

/// A slice with dashes is nested by them, and systemd makes the missing parents: a Kubernetes pod's container goes
/// to `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<x>.slice/<prefix>-<id>.scope`.
#[test]
fn a_nested_slice_is_expanded_by_its_dashes() {
    require_root!("a_nested_slice_is_expanded_by_its_dashes");
    if !systemd_v2_host() {
        skip!("a_nested_slice_is_expanded_by_its_dashes: this host is not booted with systemd on pure cgroup v2 (make test-host runs it)");
    }
    let env = Env::new("sdslice");
    let mut config = base_config(&["sleep", "600"]);
    let pod = "kubepods-besteffort-podhulltest.slice";
    config["linux"]["cgroupsPath"] = json!(format!("{pod}:cri-containerd:{}", env.id));
    env.write_config(&config);
    let r = systemd_hull(&env, &["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let unit = format!("cri-containerd-{}.scope", env.id);
    assert_eq!(
        unit_property(&unit, "ControlGroup"),
        format!("/kubepods.slice/kubepods-besteffort.slice/{pod}/{unit}")
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    let _ = Command::new("systemctl")
        .args(["stop", pod, "kubepods.slice"])
        .status();
}

/// Bad input: a cgroupsPath that is not `slice:prefix:name` gets runc's error; on a host without systemd on pure
/// cgroup v2 the driver is refused by name. Nothing is left behind either way.
#[test]
fn bad_systemd_paths_and_hosts_are_refused_by_name() {
    require_root!("bad_systemd_paths_and_hosts_are_refused_by_name");
    let env = Env::new("sdbad");
    let mut config = base_config(&["true"]);
    config["linux"]["cgroupsPath"] = json!("/not/a/systemd/path");
    env.write_config(&config);
    let r = systemd_hull(&env, &["create", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    if systemd_v2_host() {
        assert!(
            r.stderr.contains(
                "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"/not/a/systemd/path\" instead"
            ),
            "{}",
            r.describe()
        );
    } else {
        assert!(
            r.stderr.contains("expected cgroupsPath to be of format")
                || r.stderr
                    .contains("the systemd cgroup driver needs a pure cgroup v2 host"),
            "{}",
            r.describe()
        );
        config["linux"]["cgroupsPath"] = json!(format!("system.slice:hull:{}", env.id));
        env.write_config(&config);
        let r = systemd_hull(&env, &["create", &env.id]);
        assert!(
            r.code == 1
                && r.stderr
                    .contains("the systemd cgroup driver needs a pure cgroup v2 host"),
            "expected the driver to be refused by name on this host: {}",
            r.describe()
        );
    }
    assert_leaves_nothing(&env);
}

/// Everything systemd has a property for is given to it, as runc gives it: the CPU set, the CPU quota (rounded up
/// to whole percents, in the file too), the device allow list under `DevicePolicy=strict`, and the
/// `org.systemd.property.*` annotations (a `...Sec` one in microseconds). After a daemon-reload, which makes systemd
/// re-apply all of them to the cgroup, the container still has its devices and its quota.
#[test]
fn systemd_is_given_the_properties_runc_gives_it() {
    require_root!("systemd_is_given_the_properties_runc_gives_it");
    if !systemd_v2_host() {
        skip!("systemd_is_given_the_properties_runc_gives_it: this host is not booted with systemd on pure cgroup v2 (make test-host runs it)");
    }
    let env = Env::new("sdprops");
    let mut config = base_config(&["sleep", "600"]);
    config["linux"]["cgroupsPath"] = json!(format!("system.slice:hull-test:{}", env.id));
    config["linux"]["resources"]["cpu"] = json!({"cpus": "0", "quota": 1500, "period": 100000});
    config["annotations"] = json!({
        "org.systemd.property.TimeoutStopSec": "uint64 7",
        "org.systemd.property.CollectMode": "'inactive'"
    });
    env.write_config(&config);
    let r = systemd_hull(&env, &["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    let unit = format!("hull-test-{}.scope", env.id);
    for (name, want) in [
        ("AllowedCPUs", "0"),
        ("CPUQuotaPerSecUSec", "20ms"),
        ("DevicePolicy", "strict"),
        ("TimeoutStopUSec", "7s"),
        // hull's own CollectMode (inactive-or-failed) gives way to the annotation's.
        ("CollectMode", "inactive"),
    ] {
        assert_eq!(
            unit_property(&unit, name),
            want,
            "systemctl show -p {name} {unit}"
        );
    }
    let allowed = unit_property(&unit, "DeviceAllow");
    for rule in ["/dev/char/1:3 rwm", "char-136 rwm", "char-* m"] {
        assert!(
            allowed.contains(rule),
            "expected {rule:?} in the unit's DeviceAllow, got {allowed:?}"
        );
    }
    let dir = Path::new("/sys/fs/cgroup/system.slice").join(&unit);
    assert_eq!(
        common::read(&dir, "cpu.max"),
        "2000 100000",
        "expected the quota rounded up as systemd rounds it"
    );
    let reload = Command::new("systemctl")
        .arg("daemon-reload")
        .status()
        .unwrap();
    assert!(reload.success(), "systemctl daemon-reload");
    let r = env.hull(&[
        "exec",
        &env.id,
        "sh",
        "-c",
        "echo x > /dev/null && head -c 1 /dev/zero | wc -c",
    ]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "1"),
        "expected /dev/null and /dev/zero usable after a daemon-reload: {}",
        r.describe()
    );
    assert_eq!(common::read(&dir, "cpu.max"), "2000 100000");
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete --force: {}", r.describe());
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
}

/// A bad `org.systemd.property.*` annotation is refused with runc's message, before any unit exists.
#[test]
fn a_bad_systemd_annotation_is_refused_by_name() {
    require_root!("a_bad_systemd_annotation_is_refused_by_name");
    if !systemd_v2_host() {
        skip!("a_bad_systemd_annotation_is_refused_by_name: this host is not booted with systemd on pure cgroup v2 (make test-host runs it)");
    }
    let env = Env::new("sdbadprop");
    let mut config = base_config(&["true"]);
    config["linux"]["cgroupsPath"] = json!(format!("system.slice:hull-test:{}", env.id));
    config["annotations"] = json!({"org.systemd.property.Timeout_Sec": "5"});
    env.write_config(&config);
    let r = systemd_hull(&env, &["create", &env.id]);
    assert!(
        r.code == 1
            && r.stderr.contains(
                "annotation org.systemd.property.Timeout_Sec name incorrect: contains non-alphabetic character"
            ),
        "expected the annotation refused by name: {}",
        r.describe()
    );
    let unit = format!("hull-test-{}.scope", env.id);
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    assert_leaves_nothing(&env);

    // A well-formed annotation systemd refuses: the error names the unit and carries systemd's own text.
    config["annotations"] = json!({"org.systemd.property.NoSuchSetting": "true"});
    env.write_config(&config);
    let r = systemd_hull(&env, &["create", &env.id]);
    assert!(
        r.code == 1
            && r.stderr
                .contains(&format!("unable to start unit \"{unit}\""))
            && r.stderr
                .contains("Cannot set property NoSuchSetting, or unknown property."),
        "expected systemd's refusal, naming the unit: {}",
        r.describe()
    );
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    assert_leaves_nothing(&env);
}
