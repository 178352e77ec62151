//! Bad input: every failure exits 1 with one `error: ...` line naming what was wrong, writes exactly one JSON error
//! record with `--log-format json`, and leaves nothing behind (state directory, cgroup, host mount, process).

mod common;

use std::fs;

use common::{assert_leaves_nothing, base_config, host_has_apparmor, Env, Run};
use serde_json::{json, Value};

/// Run `create` on the env's bundle with a JSON log, and check the failure contract.
fn create_fails(env: &Env, expect_in_message: &str) -> Run {
    let log = env.dir.path().join("log.json");
    let _ = fs::remove_file(&log);
    let bundle = env.bundle();
    let r = env.hull(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        &env.id,
    ]);
    assert_eq!(
        r.code,
        1,
        "create must fail with status 1: {}",
        r.describe()
    );
    let error_lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(
        error_lines.len(),
        1,
        "exactly one error line on stderr, saw {:?}",
        r.stderr
    );
    assert!(
        error_lines[0].contains(expect_in_message),
        "the message should contain {expect_in_message:?}, saw {:?}",
        error_lines[0]
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    let records: Vec<&str> = text.lines().collect();
    assert_eq!(records.len(), 1, "exactly one log record, saw {text:?}");
    let record: Value = serde_json::from_str(records[0]).expect("the log record is JSON");
    assert_eq!(record["level"], "error");
    assert_eq!(
        record["msg"].as_str().unwrap(),
        error_lines[0].trim_start_matches("error: "),
        "the JSON msg is the same text as the stderr line"
    );
    let time = record["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339 time, saw {time}"
    );
    assert_leaves_nothing(env);
    r
}

#[test]
fn missing_config_names_the_path() {
    let env = Env::new("noconfig");
    let path = env.bundle().join("config.json");
    create_fails(
        &env,
        &format!("open {}: No such file or directory", path.display()),
    );
}

#[test]
fn garbled_config_names_the_file() {
    let env = Env::new("garbled");
    fs::write(env.bundle().join("config.json"), "{ not json").unwrap();
    create_fails(
        &env,
        &format!("parse {}", env.bundle().join("config.json").display()),
    );
}

#[test]
fn unknown_oci_major_version() {
    let env = Env::new("version");
    let mut config = base_config(&["true"]);
    config["ociVersion"] = "2.0.0".into();
    env.write_config(&config);
    create_fails(&env, "unsupported ociVersion \"2.0.0\"");
}

#[test]
fn missing_rootfs() {
    let env = Env::new("norootfs");
    let mut config = base_config(&["true"]);
    config["root"] = json!({"path": "missing"});
    env.write_config(&config);
    create_fails(
        &env,
        &format!(
            "rootfs {}: No such file or directory",
            env.bundle().join("missing").display()
        ),
    );
}

#[test]
fn invalid_id() {
    let mut env = Env::new("badid");
    env.write_config(&base_config(&["true"]));
    env.id = "../escape".to_owned();
    create_fails(&env, "invalid container ID format");
}

#[test]
fn duplicate_id() {
    require_root!("duplicate_id");
    let env = Env::new("dup");
    env.write_config(&base_config(&["sleep", "30"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let log = env.dir.path().join("dup.json");
    let r = env.hull(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        &env.id,
    ]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr.contains("container with given ID already exists"),
        "{}",
        r.describe()
    );
    assert_eq!(
        env.state()["status"],
        "created",
        "the existing container is untouched"
    );
    assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 1);
}

#[test]
fn bad_mount_source() {
    require_root!("bad_mount_source");
    let env = Env::new("badmount");
    let mut config = base_config(&["true"]);
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": "/nonexistent-hull-source", "options": ["rbind"]
    }));
    env.write_config(&config);
    create_fails(
        &env,
        "open bind mount source /nonexistent-hull-source: No such file or directory",
    );
}

#[test]
fn bad_executable() {
    require_root!("bad_executable");
    let env = Env::new("badexec");
    env.write_config(&base_config(&["/nope"]));
    create_fails(
        &env,
        "exec: \"/nope\": stat /nope: no such file or directory",
    );
    env.write_config(&base_config(&["nope"]));
    create_fails(&env, "exec: \"nope\": executable file not found in $PATH");
}

#[test]
fn hostname_without_uts_namespace() {
    let env = Env::new("nouts");
    let mut config = base_config(&["true"]);
    config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    env.write_config(&config);
    create_fails(
        &env,
        "unable to set hostname without a private UTS namespace",
    );
}

#[test]
fn failed_mount_inside_the_init() {
    require_root!("failed_mount_inside_the_init");
    let env = Env::new("mountfail");
    let mut config = base_config(&["true"]);
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "no-such-fs", "source": "none"
    }));
    env.write_config(&config);
    create_fails(&env, "mount none on /data: No such device");
}

#[test]
fn symlinked_proc_is_refused() {
    require_root!("symlinked_proc_is_refused");
    let env = Env::new("procsym");
    let mut config = base_config(&["true"]);
    let rootfs = env.private_rootfs(&mut config);
    fs::remove_dir(rootfs.join("proc")).unwrap();
    std::os::unix::fs::symlink("/tmp", rootfs.join("proc")).unwrap();
    env.write_config(&config);
    create_fails(&env, "mount destination /proc is a symlink");
}

#[test]
fn a_terminal_without_a_console_socket_is_refused_when_detached() {
    let env = Env::new("unsupported");
    let mut config = base_config(&["true"]);
    config["process"]["terminal"] = true.into();
    env.write_config(&config);
    create_fails(
        &env,
        "cannot allocate tty if runc will detach without setting console socket",
    );
}

/// User namespace mappings the kernel would refuse with a bare EINVAL are named before anything is made.
#[test]
fn overlapping_id_mappings_are_named() {
    let env = Env::new("overlap");
    let mut config = base_config(&["true"]);
    common::add_user_namespace(&mut config);
    config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": 100000, "size": 65536},
        {"containerID": 70000, "hostID": 165000, "size": 10}
    ]);
    env.write_config(&config);
    create_fails(
        &env,
        "linux.gidMappings[0] and [1] overlap: host ids 100000-165535 and 165000-165009",
    );
}

/// Id-mapped mounts that cannot work are refused before anything is made, naming the mount and the reason.
#[test]
fn bad_idmapped_mounts_say_what_is_wrong() {
    require_root!("bad_idmapped_mounts_say_what_is_wrong");
    let env = Env::new("badidmap");
    let volume = env.dir.path().join("volume");
    fs::create_dir(&volume).unwrap();
    let with_mount = |userns: bool, mount: Value| {
        let mut config = base_config(&["true"]);
        if userns {
            common::add_user_namespace(&mut config);
            config["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["type"] != "cgroup");
        }
        config["mounts"].as_array_mut().unwrap().push(mount);
        env.write_config(&config);
    };
    with_mount(
        false,
        json!({"destination": "/home", "type": "bind", "source": volume, "options": ["bind", "idmap"]}),
    );
    create_fails(
        &env,
        "invalid mount on /home: id-mapped mounts must have both uid and gid mappings specified \
         (the container has no user namespace to take them from)",
    );
    with_mount(
        true,
        json!({"destination": "/home", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
    );
    create_fails(
        &env,
        "invalid mount on /home: id-mapped mounts are only supported for bind-mounts",
    );
    with_mount(
        true,
        json!({"destination": "/home", "type": "bind", "source": volume, "options": ["bind"],
               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    create_fails(
        &env,
        "invalid mount on /home: id-mapped mounts must have both uid and gid mappings specified",
    );
    // sysfs cannot be id-mapped: the kernel's refusal comes with the source and a hint.
    with_mount(
        true,
        json!({"destination": "/home", "type": "bind", "source": "/sys/kernel", "options": ["rbind", "idmap"]}),
    );
    create_fails(
        &env,
        "set MOUNT_ATTR_IDMAP on /sys/kernel (the filesystem may not support id-mapped mounts on this kernel): \
         Invalid argument",
    );
}

#[test]
fn bad_seccomp_profiles_say_what_is_wrong() {
    let env = Env::new("badseccomp");
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            "unknown variant `SCMP_ACT_BOGUS`",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}),
            "unknown variant `SCMP_ARCH_PDP11`",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_ALMOST"}]}]}),
            "unknown variant `SCMP_CMP_ALMOST`",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/nowhere"}),
            "linux.seccomp: SCMP_ACT_NOTIFY cannot be used as default action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 7, "value": 9, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp: seccomp rule for kill: argument index 7 out of range 0-5",
        ),
        // The listener is only contacted once the init has loaded its filters: the undo path runs.
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "connect to seccomp listener /nonexistent/agent.sock: No such file or directory",
        ),
    ];
    for (profile, message) in cases {
        let mut config = base_config(&["true"]);
        config["linux"]["seccomp"] = profile;
        env.write_config(&config);
        create_fails(&env, message);
    }
}

/// The runtime spec says unknown capability names are an error (runc and crun warn and go on).
#[test]
fn unknown_capability_names_are_errors() {
    let env = Env::new("badcap");
    let mut config = base_config(&["true"]);
    config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_BOGUS"]);
    env.write_config(&config);
    create_fails(&env, "no variant for CAP_BOGUS");
}

/// Without the LSM a process label is refused (it would go unapplied) and the mount label is ignored (crun; runc's
/// go-selinux returns the mount data unchanged). With AppArmor (the v2 VM), a profile that is not loaded fails the
/// create naming it, and `unconfined` is applied.
#[test]
fn lsm_labels_follow_the_host() {
    let env = Env::new("lsm");
    let mut config = base_config(&["true"]);
    config["process"]["apparmorProfile"] = "docker-default".into();
    env.write_config(&config);
    if host_has_apparmor() {
        create_fails(
            &env,
            "apply apparmor profile \"docker-default\": write \"exec docker-default\"",
        );
        let mut config = base_config(&["cat", "/proc/self/attr/current"]);
        config["process"]["apparmorProfile"] = "unconfined".into();
        let r = env.run(&config);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "unconfined\n"),
            "{}",
            r.describe()
        );
    } else {
        create_fails(
            &env,
            "apparmor profile \"docker-default\" is set, but AppArmor is not enabled on this host",
        );
    }
    let mut config = base_config(&["true"]);
    config["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into();
    env.write_config(&config);
    create_fails(
        &env,
        "selinux label is specified in config, but selinux is disabled or not supported",
    );
    let mut config = base_config(&["true"]);
    config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into();
    let r = env.run(&config);
    assert_eq!(r.code, 0, "the mount label is ignored: {}", r.describe());
}

#[test]
fn text_log_format_and_stderr_default() {
    let env = Env::new("textlog");
    let log = env.dir.path().join("log.txt");
    let r = env.hull(&["--log", log.to_str().unwrap(), "state", "nosuch"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "error: container does not exist\n");
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("time=\"")
            && text.ends_with(" level=error msg=\"container does not exist\"\n"),
        "logrus text record, saw {text:?}"
    );
    let r = env.hull(&["--log-format", "yaml", "list"]);
    assert_eq!(r.stderr, "error: invalid log-format: yaml\n");
}

/// An init error larger than one sync message (a 10 MB hostname, 70,000 additional gids) arrives shortened, with
/// its cause (the kernel's answer) intact; each cause says how much of it was left out.
///
/// Sent whole, such an error does not fit in a datagram (EMSGSIZE) and the user learns only that the init "exited
/// unexpectedly".
#[test]
fn an_init_error_too_large_for_one_message_arrives_shortened() {
    require_root!("an_init_error_too_large_for_one_message_arrives_shortened");
    let env = Env::new("bigerr");
    let mut config = base_config(&["true"]);
    config["hostname"] = json!("h".repeat(10_000_000));
    env.write_config(&config);
    let r = create_fails(&env, "set hostname \"hhhh");
    assert!(
        r.stderr.contains(" bytes ...] hhhh")
            && r.stderr.trim_end().ends_with("\": Invalid argument"),
        "expected the hostname shortened around a byte count, then the kernel's EINVAL: {}",
        &r.stderr[..r.stderr.len().min(3000)]
    );
    assert_leaves_nothing(&env);

    let mut config = base_config(&["true"]);
    config["process"]["user"]["additionalGids"] = json!((1000..71000).collect::<Vec<u32>>());
    env.write_config(&config);
    let r = create_fails(&env, "setgroups");
    assert!(
        r.stderr.contains(" bytes ...] ") && r.stderr.trim_end().ends_with(": Invalid argument"),
        "expected the gid list shortened, then the kernel's EINVAL: {}",
        &r.stderr[..r.stderr.len().min(3000)]
    );
    assert_leaves_nothing(&env);
}

/// An init killed by the OOM killer during its setup (a 1-byte memory limit) is reported as runc reports it, with
/// the limit and the peak usage named.
///
/// Without the check the user reads only that the init exited unexpectedly.
#[test]
fn an_init_oom_killed_during_setup_says_so() {
    require_root!("an_init_oom_killed_during_setup_says_so");
    let env = Env::new("oominit");
    let mut config = base_config(&["true"]);
    config["linux"]["resources"]["memory"] = json!({"limit": 1});
    env.write_config(&config);
    if common::systemd_driver() {
        // systemd removes a scope, and its cgroup with the OOM count, when its last process is gone, which races with
        // hull's look at that count: the OOM is named when hull looks first, else runc's message there too is left.
        let r = create_fails(&env, "unable to start container process: ");
        assert!(
            r.stderr
                .contains("container init was OOM-killed (memory limit too low?)")
                || r.stderr
                    .contains("error during container init: container init exited unexpectedly"),
            "expected the OOM or the init's unexpected exit: {}",
            r.describe()
        );
        assert_leaves_nothing(&env);
        return;
    }
    let r = create_fails(
        &env,
        "unable to start container process: container init was OOM-killed (memory limit too low?)",
    );
    assert!(
        r.stderr.contains(": memory limit ") && r.stderr.contains(", peak usage "),
        "expected the limit and the peak usage to be named: {}",
        r.describe()
    );
    assert!(
        !r.stderr.contains("exited unexpectedly"),
        "{}",
        r.describe()
    );
    assert_leaves_nothing(&env);
}

/// A bad `linux.devices` entry is reported under its own name, and FIFO (`p`) and unbuffered (`u`) entries make
/// their nodes.
///
/// hull used to turn each entry into a device cgroup rule and report the rule: `linux.resources.devices[1]`, an
/// index the user's config does not have, and refused `p` as no type the devices cgroup knows.
#[test]
fn linux_devices_entries_are_named_and_fifos_are_made() {
    require_root!("linux_devices_entries_are_named_and_fifos_are_made");
    let env = Env::new("devname");
    let mut config = base_config(&["true"]);
    config["linux"]["devices"] =
        json!([{"path": "/dev/bad", "type": "c", "major": -5, "minor": 1}]);
    env.write_config(&config);
    create_fails(
        &env,
        "linux.devices[0] (/dev/bad): major -5 is out of range",
    );
    assert_leaves_nothing(&env);

    let mut config = base_config(&["ls", "-l", "/dev/fifo", "/dev/unbuffered"]);
    config["linux"]["devices"] = json!([
        {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0},
        {"path": "/dev/unbuffered", "type": "u", "major": 1, "minor": 3}
    ]);
    let r = env.run(&config);
    assert_eq!(
        r.code,
        0,
        "expected p and u devices to be made: {}",
        r.describe()
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with('p') && l.ends_with("/dev/fifo"))
            && r.stdout
                .lines()
                .any(|l| l.starts_with('c') && l.ends_with("/dev/unbuffered")),
        "expected /dev/fifo to be a FIFO and /dev/unbuffered a character device: {}",
        r.stdout
    );
}
