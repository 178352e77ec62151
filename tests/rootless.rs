//! hull run by an unprivileged user (`hullrl`, made here with useradd when missing): the default `--root` under
//! `$XDG_RUNTIME_DIR`, a user namespace that maps the user to root (one id written by hull itself, more through
//! newuidmap/newgidmap and /etc/subuid), no cgroup of its own when it may not make one, and clear refusals for what
//! an unprivileged user cannot have.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{rootfs, run_with_timeout, Run};
use serde_json::{json, Value};

const USER: &str = "hullrl";

/// The test user's uid and gid, creating it (with subordinate ids, as useradd does for normal users) if needed.
fn test_user() -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, USER]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    // One useradd even when tests run in parallel.
    static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    if id("-u").is_none() {
        match Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", USER])
            .status()
        {
            Ok(status) => assert!(status.success(), "useradd {USER}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => add_user_by_hand(),
            Err(e) => panic!("run useradd: {e}"),
        }
    }
    (id("-u").unwrap(), id("-g").unwrap())
}

/// Where there is no useradd (the v2 VM's busybox userland): the lines useradd would write.
fn add_user_by_hand() {
    let append = |file: &str, line: String| {
        let mut text = fs::read_to_string(file).unwrap_or_default();
        text.push_str(&line);
        fs::write(file, text).unwrap_or_else(|e| panic!("write {file}: {e}"));
    };
    append(
        "/etc/passwd",
        format!("{USER}:x:61000:61000::/nonexistent:/sbin/nologin\n"),
    );
    append("/etc/group", format!("{USER}:x:61000:\n"));
    append("/etc/subuid", format!("{USER}:200000:65536\n"));
    append("/etc/subgid", format!("{USER}:200000:65536\n"));
}

/// A directory tree the test user owns: the bundle and its `$XDG_RUNTIME_DIR`.
struct UserEnv {
    dir: tempfile::TempDir,
    uid: u32,
    gid: u32,
    id: String,
}

impl UserEnv {
    fn new(prefix: &str) -> UserEnv {
        let (uid, gid) = test_user();
        let dir = tempfile::Builder::new()
            .prefix("hull-rootless-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["bundle", "xdg"] {
            let path = dir.path().join(sub);
            fs::create_dir(&path).unwrap();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        fs::set_permissions(dir.path().join("xdg"), fs::Permissions::from_mode(0o700)).unwrap();
        UserEnv {
            dir,
            uid,
            gid,
            id: common::unique_id(prefix),
        }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    /// hull in the bundle, with no `--root` (the default must be under `$XDG_RUNTIME_DIR`), still as root.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = common::hull_command();
        cmd.args(args)
            .current_dir(self.bundle())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", self.xdg());
        cmd
    }

    /// hull as the test user.
    fn hull(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.uid(self.uid).gid(self.gid);
        run_with_timeout(cmd, Duration::from_secs(30))
    }

    /// hull as the test user, started in the cgroup whose `cgroup.procs` is `procs` (as a user's session is placed
    /// in its delegated subtree): the process moves itself there while still root, then drops to the user.
    fn hull_from_cgroup(&self, args: &[&str], procs: &Path) -> Run {
        let mut cmd = self.command(args);
        let procs = CString::new(procs.as_os_str().as_bytes()).unwrap();
        let (uid, gid) = (self.uid, self.gid);
        let join_then_drop = move || -> std::io::Result<()> {
            let check = |ok: bool| {
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            };
            // SAFETY: between fork and exec only async-signal-safe calls on memory prepared before the fork: open,
            // write and close on a C string, then setgroups/setgid/setuid.
            unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                check(fd >= 0)?;
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                check(written == 1)?;
                check(libc::setgroups(0, std::ptr::null()) == 0)?;
                check(libc::setgid(gid) == 0)?;
                check(libc::setuid(uid) == 0)
            }
        };
        // SAFETY: the closure is async-signal-safe (see above).
        unsafe { cmd.pre_exec(join_then_drop) };
        run_with_timeout(cmd, Duration::from_secs(30))
    }

    /// `hull spec --rootless`, as the user, with the test rootfs and `args`.
    fn rootless_spec(&self, args: &[&str]) -> Value {
        let r = self.hull(&["spec", "--rootless"]);
        assert_eq!(r.code, 0, "spec --rootless: {}", r.describe());
        let path = self.bundle().join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        fs::remove_file(&path).unwrap();
        config["root"]["path"] = json!(rootfs());
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        config
    }

    fn write_config(&self, config: &Value) {
        let path = self.bundle().join("config.json");
        fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        std::os::unix::fs::chown(&path, Some(self.uid), Some(self.gid)).unwrap();
    }
}

fn state_dir(env: &UserEnv) -> PathBuf {
    env.xdg().join("hull").join(&env.id)
}

#[test]
fn rootless_spec_runs_the_lifecycle_as_an_unprivileged_user() {
    require_root!("rootless_spec_runs_the_lifecycle_as_an_unprivileged_user");
    let env = UserEnv::new("rootless");
    let config = env.rootless_spec(&["sleep", "600"]);
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let dir = state_dir(&env);
    let meta = fs::metadata(&dir).unwrap_or_else(|e| {
        panic!(
            "the default root is $XDG_RUNTIME_DIR/hull: {}: {e}",
            dir.display()
        )
    });
    assert_eq!(meta.uid(), env.uid, "the state belongs to the user");
    let state: Value = serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().unwrap();
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let host_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:\t"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        host_uid,
        env.uid.to_string(),
        "seen from the host, the container runs as the user"
    );
    let r = env.hull(&["kill", &env.id, "KILL"]);
    assert_eq!(r.code, 0, "kill: {}", r.describe());
    for _ in 0..100 {
        if Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let r = env.hull(&["delete", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    assert!(!dir.exists(), "delete removes {}", dir.display());
}

#[test]
fn rootless_container_is_root_of_a_single_id_mapping() {
    require_root!("rootless_container_is_root_of_a_single_id_mapping");
    let env = UserEnv::new("rootlessid");
    let config = env.rootless_spec(&[
        "sh",
        "-c",
        "id -u; id -g; tr -s ' ' < /proc/self/uid_map; tr -s ' ' < /proc/self/gid_map; cat /proc/self/setgroups; \
         touch /dev/null && echo devices-bound",
    ]);
    env.write_config(&config);
    let r = env.hull(&["run", &env.id]);
    assert_eq!(r.code, 0, "run: {}", r.describe());
    assert_eq!(
        r.stdout,
        format!(
            "0\n0\n 0 {} 1\n 0 {} 1\ndeny\ndevices-bound\n",
            env.uid, env.gid
        ),
        "root inside, the user outside; setgroups denied as the kernel requires for an unprivileged gid map"
    );
    assert!(!state_dir(&env).exists());
}

/// Without a cgroup of its own (an unprivileged user may not make one here), limits cannot be kept: refused as runc
/// refuses them, before anything is left behind.
#[test]
fn rootless_limits_without_a_cgroup_are_refused() {
    require_root!("rootless_limits_without_a_cgroup_are_refused");
    let env = UserEnv::new("rootlesslim");
    let mut config = env.rootless_spec(&["true"]);
    config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    env.write_config(&config);
    let r = env.hull(&["run", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr.contains(
            "rootless needs no limits + no cgrouppath when no permission is granted for cgroups"
        ),
        "{}",
        r.describe()
    );
    assert!(!state_dir(&env).exists(), "nothing left behind");
}

/// Without a cgroup of its own and without a cgroup namespace, a cgroup mount shows the host's hierarchies,
/// read-only whatever its options say (runc binds the host's /sys/fs/cgroup there), not an empty directory.
#[test]
fn rootless_cgroup_mount_without_a_cgroup_shows_the_hosts_hierarchies_read_only() {
    require_root!("rootless_cgroup_mount_without_a_cgroup_shows_the_hosts_hierarchies_read_only");
    let env = UserEnv::new("rootlesscg");
    let mut config = env.rootless_spec(&[
        "sh",
        "-c",
        "d=/sys/fs/cgroup; [ -d $d/unified ] && d=$d/unified; cat $d/cgroup.controllers; \
         mkdir $d/probe 2>&1 | grep -o 'Read-only file system'",
    ]);
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/sys"));
    mounts.push(json!({"destination": "/sys", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime"]}),
    );
    let namespaces = config["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|ns| ns["type"] != "cgroup");
    env.write_config(&config);
    let host_unified = if Path::new("/sys/fs/cgroup/unified").is_dir() {
        "/sys/fs/cgroup/unified/cgroup.controllers"
    } else {
        "/sys/fs/cgroup/cgroup.controllers"
    };
    let r = env.hull(&["run", &env.id]);
    assert_eq!(r.code, 0, "run: {}", r.describe());
    assert_eq!(
        r.stdout,
        format!(
            "{}Read-only file system\n",
            fs::read_to_string(host_unified).unwrap()
        ),
        "the host's cgroup2 root (its controllers), mounted read-only"
    );
    assert!(!state_dir(&env).exists());
}

/// What an unprivileged user cannot have is named: id-mapped mounts.
#[test]
fn rootless_idmapped_mounts_are_refused() {
    require_root!("rootless_idmapped_mounts_are_refused");
    let env = UserEnv::new("rootlessidmap");
    let mut config = env.rootless_spec(&["true"]);
    config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/tmp", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}),
    );
    env.write_config(&config);
    let r = env.hull(&["run", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    assert!(
        r.stderr
            .contains("id-mapped mounts are not supported for rootless containers"),
        "{}",
        r.describe()
    );
}

/// The first subordinate range /etc/subuid (or subgid) gives the test user.
fn subordinate_range(file: &str) -> (u32, u32) {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{USER}:")))
        .filter_map(|rest| rest.split_once(':'))
        .map(|(start, count)| (start.parse().unwrap(), count.trim().parse().unwrap()))
        .next()
        .unwrap_or_else(|| panic!("{file} has no range for {USER} (useradd adds one)"))
}

/// More than the user's own id: newuidmap/newgidmap (Debian's uidmap, installed by `make deps`) write the maps from
/// the user's subordinate ranges.
#[test]
fn rootless_multiple_ranges_go_through_newuidmap() {
    require_root!("rootless_multiple_ranges_go_through_newuidmap");
    if Command::new("newuidmap").arg("--help").output().is_err() {
        skip!("rootless_multiple_ranges_go_through_newuidmap: newuidmap is not installed (package uidmap)");
    }
    let env = UserEnv::new("rootlesssub");
    let (sub_uid, uid_count) = subordinate_range("/etc/subuid");
    let (sub_gid, gid_count) = subordinate_range("/etc/subgid");
    let mut config = env.rootless_spec(&[
        "sh",
        "-c",
        "tr -s ' ' < /proc/self/uid_map; tr -s ' ' < /proc/self/gid_map; cat /proc/self/setgroups",
    ]);
    config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": env.uid, "size": 1},
        {"containerID": 1, "hostID": sub_uid, "size": uid_count}
    ]);
    config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": env.gid, "size": 1},
        {"containerID": 1, "hostID": sub_gid, "size": gid_count}
    ]);
    env.write_config(&config);
    let r = env.hull(&["run", &env.id]);
    assert_eq!(r.code, 0, "run: {}", r.describe());
    assert_eq!(
        r.stdout,
        format!(
            " 0 {} 1\n 1 {sub_uid} {uid_count}\n 0 {} 1\n 1 {sub_gid} {gid_count}\nallow\n",
            env.uid, env.gid
        )
    );
}

/// Host ids outside the user's subordinate ranges (here host root) are refused before anything is made, naming what
/// /etc/subuid grants (newuidmap would refuse them only once the container's state and init existed).
#[test]
fn rootless_mappings_beyond_the_subordinate_range_are_refused() {
    require_root!("rootless_mappings_beyond_the_subordinate_range_are_refused");
    let env = UserEnv::new("rootlessrange");
    let (sub_uid, _) = subordinate_range("/etc/subuid");
    let mut config = env.rootless_spec(&["true"]);
    config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": env.uid, "size": 1},
        {"containerID": 1, "hostID": 0, "size": 1}
    ]);
    env.write_config(&config);
    let r = env.hull(&["run", &env.id]);
    assert_eq!(r.code, 1, "{}", r.describe());
    let want = format!(
        "linux.uidMappings[1]: host ids 0-0 are not {USER}'s to map: besides its own id {}, /etc/subuid grants \
         {USER} {sub_uid}-",
        env.uid
    );
    assert!(
        r.stderr.contains(&want),
        "want {want:?} in: {}",
        r.describe()
    );
    assert!(!state_dir(&env).exists(), "nothing left behind");
    assert!(common::processes_mentioning(&env.id).is_empty());
}

/// exec and kill work for the user; pause, which needs a cgroup the user does not have here, is refused clearly.
#[test]
fn rootless_exec_kill_and_pause_without_a_cgroup() {
    require_root!("rootless_exec_kill_and_pause_without_a_cgroup");
    let env = UserEnv::new("rootlessexec");
    let config = env.rootless_spec(&["sleep", "600"]);
    env.write_config(&config);
    let r = env.hull(&["run", "-d", &env.id]);
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    let r = env.hull(&["exec", &env.id, "sh", "-c", "id -u; cat /proc/1/comm"]);
    assert_eq!(r.code, 0, "exec: {}", r.describe());
    assert_eq!(
        r.stdout, "0\nsleep\n",
        "exec joins the container as its root"
    );
    let r = env.hull(&["pause", &env.id]);
    assert_ne!(r.code, 0, "pause without a cgroup: {}", r.describe());
    assert!(
        r.stderr.contains("the container has no cgroup to freeze"),
        "the refusal names the missing cgroup: {}",
        r.describe()
    );
    let r = env.hull(&["kill", &env.id, "KILL"]);
    assert_eq!(r.code, 0, "kill: {}", r.describe());
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    assert!(!state_dir(&env).exists());
    assert!(common::processes_mentioning(&env.id).is_empty());
}

/// The user can exec into a created, not yet started container (as with runc): its parked init is dumpable for its
/// user, and holds nothing of hull's but the exec fifo beside the container's stdio.
#[test]
fn rootless_exec_into_a_created_container() {
    require_root!("rootless_exec_into_a_created_container");
    let env = UserEnv::new("rootlesscreated");
    let mut config = env.rootless_spec(&["sleep", "600"]);
    // The kernel makes a process non-dumpable again when its credentials change: both orders of the capability
    // and filter steps (see `become_process`) must leave the init dumpable.
    config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mknodat"], "action": "SCMP_ACT_ERRNO"}]});
    for no_new_privileges in [false, true] {
        config["process"]["noNewPrivileges"] = no_new_privileges.into();
        env.write_config(&config);
        let r = env.hull(&["create", &env.id]);
        assert_eq!(r.code, 0, "create: {}", r.describe());
        let r = env.hull(&["exec", &env.id, "sh", "-c", "id -u; ls /proc/1/fd | wc -l"]);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "0\n4\n"),
            "noNewPrivileges {no_new_privileges}: exec before start joins the container as its root; the parked init \
             holds stdio and the fifo only: {}",
            r.describe()
        );
        let state: Value = serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
        assert_eq!(
            state["status"], "created",
            "the exec did not start the container"
        );
        let r = env.hull(&["start", &env.id]);
        assert_eq!(r.code, 0, "start: {}", r.describe());
        let r = env.hull(&["exec", &env.id, "cat", "/proc/1/comm"]);
        assert_eq!(r.stdout, "sleep\n", "{}", r.describe());
        let r = env.hull(&["delete", "--force", &env.id]);
        assert_eq!(r.code, 0, "delete: {}", r.describe());
        assert!(!state_dir(&env).exists());
    }
}

/// A cgroup v2 subtree given to the test user as systemd's `Delegate=yes` gives one, removed at the end.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn new(name: &str, uid: u32, gid: u32) -> Delegated {
        let dir = Path::new("/sys/fs/cgroup").join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        for file in [
            "",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
        ] {
            let path = dir.join(file);
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
        fs::create_dir(dir.join("launcher")).unwrap();
        Delegated { dir }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let children: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        for dir in children.iter().chain([&self.dir]) {
            let _ = fs::write(dir.join("cgroup.kill"), "1");
            for _ in 0..100 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// With a delegated cgroup (cgroup v2, as systemd gives each user), the user's container gets its limits, and pause,
/// resume and ps work: runc's `--rootless auto` uses a cgroup wherever the user may write one.
#[test]
fn rootless_delegated_cgroup_keeps_limits_and_pauses() {
    require_root!("rootless_delegated_cgroup_keeps_limits_and_pauses");
    require_cgroupfs_driver!("rootless_delegated_cgroup_keeps_limits_and_pauses");
    if !common::unified() {
        skip!(
            "rootless_delegated_cgroup_keeps_limits_and_pauses: delegation is tested on a pure cgroup v2 host \
             (make test-host)"
        );
    }
    let env = UserEnv::new("rootlessdeleg");
    let delegated = Delegated::new(&env.id, env.uid, env.gid);
    let mut config = env.rootless_spec(&["sleep", "600"]);
    config["linux"]["cgroupsPath"] = json!(format!("/{}/ctr", env.id));
    config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
    env.write_config(&config);
    let r = env.hull_from_cgroup(
        &["run", "-d", &env.id],
        &delegated.dir.join("launcher/cgroup.procs"),
    );
    assert_eq!(r.code, 0, "run -d: {}", r.describe());
    let ctr = delegated.dir.join("ctr");
    assert_eq!(common::read(&ctr, "memory.max"), "67108864");
    assert_eq!(common::read(&ctr, "pids.max"), "20");
    let state: Value = serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(
        common::read(&ctr, "cgroup.procs"),
        pid.to_string(),
        "the init is in the delegated cgroup"
    );
    let launcher = delegated.dir.join("launcher/cgroup.procs");
    let r = env.hull_from_cgroup(
        &[
            "exec",
            &env.id,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max /proc/self/cgroup",
        ],
        &launcher,
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "67108864\n0::/\n"),
        "from inside the delegated subtree, exec joins the container's cgroup, which it sees at /sys/fs/cgroup: {}",
        r.describe()
    );
    // From outside the subtree the user may not move a process into it: as runc, the exec runs outside it.
    let r = env.hull(&["exec", &env.id, "cat", "/sys/fs/cgroup/memory.max"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "67108864\n"),
        "exec from outside the delegated subtree: {}",
        r.describe()
    );

    let r = env.hull(&["pause", &env.id]);
    assert_eq!(r.code, 0, "pause: {}", r.describe());
    assert_eq!(common::read(&ctr, "cgroup.freeze"), "1");
    let state: Value = serde_json::from_str(&env.hull(&["state", &env.id]).stdout).unwrap();
    assert_eq!(state["status"], "paused");
    let r = env.hull(&["resume", &env.id]);
    assert_eq!(r.code, 0, "resume: {}", r.describe());
    assert_eq!(common::read(&ctr, "cgroup.freeze"), "0");
    let r = env.hull(&["ps", "--format", "json", &env.id]);
    assert_eq!(r.code, 0, "ps: {}", r.describe());
    assert_eq!(r.stdout.trim(), format!("[{pid}]"));

    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete --force: {}", r.describe());
    assert!(!ctr.exists(), "delete removes {}", ctr.display());
    assert!(!state_dir(&env).exists());
}
