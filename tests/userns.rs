//! User namespaces and id-mapped mounts against the real kernel: what the container sees of host-owned files
//! through `idmap`/`ridmap` bind mounts (the container's mapping, or a mount's own), and who owns what it creates.

mod common;

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};

use common::{base_config, Env, USERNS_HOST_ID};
use serde_json::{json, Value};

/// Skip when the kernel cannot id-map the test volume's filesystem (tmpfs before Linux 6.3, as in the cgroup v2 VM):
/// hull's refusal then names it.
macro_rules! skip_without_idmap_support {
    ($name:expr, $run:expr) => {
        if $run.code != 0 && $run.stderr.contains("may not support id-mapped mounts") {
            skip!(
                "{}: this kernel cannot id-map the test volume: {}",
                $name,
                $run.stderr.trim()
            );
        }
    };
}

/// A config running `script` in a user namespace mapping 0 → USERNS_HOST_ID (65536 ids), without the cgroup mount
/// (a v1 cgroup hierarchy cannot be mounted from a user namespace).
fn in_user_namespace(script: &str) -> Value {
    let mut config = base_config(&["/bin/sh", "-c", script]);
    common::add_user_namespace(&mut config);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    config
}

fn bind(
    config: &mut Value,
    source: &std::path::Path,
    destination: &str,
    options: &[&str],
) -> usize {
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": destination, "type": "bind", "source": source, "options": options}),
    );
    mounts.len() - 1
}

/// A host directory owned by root, holding `root-file` (0:0) and `user-file` (1000:1000).
fn host_volume(env: &Env) -> std::path::PathBuf {
    let dir = env.dir.path().join("volume");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("root-file"), "r").unwrap();
    fs::write(dir.join("user-file"), "u").unwrap();
    chown(dir.join("user-file"), Some(1000), Some(1000)).unwrap();
    dir
}

#[test]
fn idmap_shows_host_files_with_the_containers_ids() {
    require_root!("idmap_shows_host_files_with_the_containers_ids");
    let env = Env::new("idmap");
    let volume = host_volume(&env);
    let mut config = in_user_namespace(
        "stat -c %u:%g /home/root-file /home/user-file /tmp/root-file; \
         touch /home/made && stat -c %u:%g /home/made; \
         touch /tmp/made 2>/dev/null || echo plain-denied",
    );
    bind(&mut config, &volume, "/home", &["rbind", "idmap"]);
    bind(&mut config, &volume, "/tmp", &["rbind"]);
    let r = env.run(&config);
    skip_without_idmap_support!("idmap_shows_host_files_with_the_containers_ids", r);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout, "0:0\n1000:1000\n65534:65534\n0:0\nplain-denied\n",
        "through idmap host-owned files keep their ids inside (0:0 is the container's root); \
         without it they are the overflow id"
    );
    let made = fs::metadata(volume.join("made")).unwrap();
    assert_eq!(
        (made.uid(), made.gid()),
        (0, 0),
        "what container root creates through the id-mapped mount belongs to host root, not {USERNS_HOST_ID}"
    );
}

#[test]
fn a_mounts_own_mapping_wins_and_ridmap_maps_submounts() {
    require_root!("a_mounts_own_mapping_wins_and_ridmap_maps_submounts");
    let env = Env::new("idmapown");
    let volume = host_volume(&env);
    // A tmpfs mounted below the volume, holding a file owned by 1000: only ridmap maps it.
    let sub = volume.join("sub");
    fs::create_dir(&sub).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(status.success(), "mount a tmpfs below the volume");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(sub.clone());
    fs::write(sub.join("deep"), "d").unwrap();
    chown(sub.join("deep"), Some(1000), Some(1000)).unwrap();

    let mut config = in_user_namespace(
        "stat -c %u:%g /home/user-file /home/root-file /home/sub/deep /tmp/sub/deep",
    );
    // Host id 1000 becomes container root: the mount's mapping says 1000 is USERNS_HOST_ID, which the
    // container's user namespace shows as 0.
    let own = json!([{"containerID": 1000, "hostID": USERNS_HOST_ID, "size": 1}]);
    let home = bind(&mut config, &volume, "/home", &["rbind", "ridmap"]);
    config["mounts"][home]["uidMappings"] = own.clone();
    config["mounts"][home]["gidMappings"] = own.clone();
    let tmp = bind(&mut config, &volume, "/tmp", &["rbind", "idmap"]);
    config["mounts"][tmp]["uidMappings"] = own.clone();
    config["mounts"][tmp]["gidMappings"] = own;
    let r = env.run(&config);
    skip_without_idmap_support!("a_mounts_own_mapping_wins_and_ridmap_maps_submounts", r);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout, "0:0\n65534:65534\n0:0\n65534:65534\n",
        "the mount's mapping (1000 → root) applies, to the submount only with ridmap"
    );
}

/// A container joins another's user and network namespaces by path while creating its own mount, pid, ipc and uts
/// namespaces: the user namespace is joined first, so the new ones belong to it and the joined network namespace
/// (owned by it) can be entered; the second container sees the first one's mapping.
#[test]
fn joining_a_user_namespace_by_path_with_other_namespaces() {
    require_root!("joining_a_user_namespace_by_path_with_other_namespaces");
    let first = Env::new("usernsa");
    first.write_config(&in_user_namespace("sleep 600"));
    let r = first.hull(&["run", "-d", &first.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    let pid = first.state()["pid"].as_i64().unwrap();

    let second = Env::new("usernsb");
    let mut config = base_config(&[
        "/bin/sh",
        "-c",
        "id -u; tr -s ' ' < /proc/self/uid_map; readlink /proc/self/ns/user; readlink /proc/self/ns/net",
    ]);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "user", "path": format!("/proc/{pid}/ns/user")},
    ]);
    let r = second.run(&config);
    let links = |ns: &str| {
        fs::read_link(format!("/proc/{pid}/ns/{ns}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let expected = format!(
        "0\n 0 {USERNS_HOST_ID} 65536\n{}\n{}\n",
        links("user"),
        links("net")
    );
    let _ = first.hull(&["delete", "--force", &first.id]);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout, expected,
        "root of the joined user namespace, in the joined network namespace"
    );
}

/// In a user namespace the init cannot raise its own hard limits, so hull sets `process.rlimits` from outside with
/// prlimit (the `SetRlimits` round trip, `init::RlimitsBy::Parent`); without one the init sets them itself.
#[test]
fn rlimits_apply_in_a_user_namespace() {
    require_root!("rlimits_apply_in_a_user_namespace");
    let env = Env::new("usernsrlimit");
    let mut config = in_user_namespace("ulimit -n; ulimit -Hn");
    config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 600}]);
    let r = env.run(&config);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout, "300\n600\n",
        "the soft and hard RLIMIT_NOFILE the config asks for"
    );
}

/// runc 1.5: `user.*` sysctls (the ucounts limits of the container's own user namespace) are allowed when the
/// container has a user namespace, and a name in slash form (`kernel/shmmax`) is a sysctl like its dot form. Both
/// land in the container's /proc/sys; hull used to refuse both as "not in a separate kernel namespace".
#[test]
fn user_sysctls_and_slash_names_are_written_in_a_user_namespace() {
    require_root!("user_sysctls_and_slash_names_are_written_in_a_user_namespace");
    let env = Env::new("usernssysctl");
    let mut config =
        in_user_namespace("cat /proc/sys/user/max_ipc_namespaces /proc/sys/kernel/shmmax");
    config["linux"]["sysctl"] = json!({"user.max_ipc_namespaces": "77", "kernel/shmmax": "65536"});
    let r = env.run(&config);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "77\n65536\n"),
        "expected both sysctls written: {}",
        r.describe()
    );
}

/// runc 1.2+: in a user-namespaced container, a bind source below a host directory only host root may enter (mode
/// 0700) is still mounted, since the source is opened as host root before the user namespace. The container reads the
/// file through the mount. hull opened the source from inside the user namespace and failed with EACCES.
#[test]
fn a_bind_source_below_a_root_only_directory_works_in_a_user_namespace() {
    require_root!("a_bind_source_below_a_root_only_directory_works_in_a_user_namespace");
    let env = Env::new("usernsprivate");
    let private = env.dir.path().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let data = private.join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("hello"), "through the bind\n").unwrap();
    fs::set_permissions(data.join("hello"), fs::Permissions::from_mode(0o644)).unwrap();
    let mut config = in_user_namespace("cat /mnt/hello");
    bind(&mut config, &data, "/mnt", &["rbind", "ro"]);
    let r = env.run(&config);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "through the bind\n"),
        "expected the bind below a 0700 directory to work: {}",
        r.describe()
    );
}
