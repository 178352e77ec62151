//! What the process inside sees: rootfs, namespaces, mounts, devices, identity, environment, fds (seed experiments
//! A1-A8, A12, A14-A16, A27, A28, plus user and time namespaces and joining namespaces by path).

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::{base_config, Env};
use serde_json::json;

fn sh(script: &str) -> serde_json::Value {
    base_config(&["/bin/sh", "-c", script])
}

/// sethostname and mount need CAP_SYS_ADMIN, which runc's default capabilities leave out.
fn with_cap_sys_admin(config: &mut serde_json::Value) {
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_ADMIN".into());
    }
}

fn run_ok(env: &Env, config: &serde_json::Value) -> String {
    let r = env.run(config);
    assert_eq!(r.code, 0, "{}", r.describe());
    r.stdout
}

#[test]
fn a1_rootfs_view() {
    require_root!("a1_rootfs_view");
    let env = Env::new("a1");
    assert_eq!(run_ok(&env, &base_config(&["/bin/pwd"])), "/\n");
    let sentinel = env.dir.path().join("host-only");
    fs::write(&sentinel, "x").unwrap();
    let listing = run_ok(
        &env,
        &sh(&format!(
            "ls /; test -e {} && echo LEAK || true",
            sentinel.display()
        )),
    );
    let mut inside: Vec<&str> = listing.lines().collect();
    inside.sort();
    let mut expected: Vec<String> = fs::read_dir(common::rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    assert_eq!(
        inside, expected,
        "ls / inside equals the rootfs, and the host sentinel is invisible"
    );
}

#[test]
fn a2_a3_a4_pid_namespace_and_proc() {
    require_root!("a2_a3_a4_pid_namespace_and_proc");
    let env = Env::new("a2");
    let out = run_ok(&env, &sh("echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; true; true; /bin/true; echo ok; ps -o pid,comm; true"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the program is pid 1: {out}");
    assert!(
        lines[1].starts_with("/bin/sh -c echo"),
        "/proc/1/cmdline is the container's init: {out}"
    );
    assert_eq!(
        lines[2], "ok",
        "repeated forks work in the new pid namespace: {out}"
    );
    let rows: Vec<Vec<&str>> = lines[4..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "ps sees exactly sh (pid 1) and ps: {out}");
    assert_eq!(rows[0], ["1", "sh"], "{out}");
    assert_eq!(rows[1][1], "ps", "{out}");
}

#[test]
fn a2_host_pid_differs_and_nspid_maps_to_1() {
    require_root!("a2_host_pid_differs_and_nspid_maps_to_1");
    let env = Env::new("nspid");
    env.write_config(&base_config(&["sleep", "30"]));
    assert_eq!(env.hull(&["run", "-d", &env.id]).code, 0);
    let pid = env.state()["pid"].as_i64().unwrap();
    assert_ne!(pid, 1);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(
        nspid.split_whitespace().collect::<Vec<_>>(),
        ["NSpid:", &pid.to_string(), "1"]
    );
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe.to_str().unwrap(),
        "/bin/busybox",
        "after start the init is the container's program"
    );
}

#[test]
fn a5_uts_namespace() {
    require_root!("a5_uts_namespace");
    let env = Env::new("a5");
    let host_before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut config =
        sh("hostname; hostname changed-inside; hostname; cat /proc/sys/kernel/domainname");
    with_cap_sys_admin(&mut config);
    config["hostname"] = "my-container".into();
    config["domainname"] = "example.test".into();
    assert_eq!(
        run_ok(&env, &config),
        "my-container\nchanged-inside\nexample.test\n"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before,
        "host hostname unchanged"
    );
}

#[test]
fn a6_mounts_inside_do_not_reach_the_host() {
    require_root!("a6_mounts_inside_do_not_reach_the_host");
    let env = Env::new("a6");
    let mut config = sh("mount -t tmpfs none /tmp && touch /tmp/x && ls /tmp");
    with_cap_sys_admin(&mut config);
    let rootfs = env.private_rootfs(&mut config);
    assert_eq!(run_ok(&env, &config), "x\n");
    assert!(
        !rootfs.join("tmp/x").exists(),
        "the tmpfs was private to the container"
    );
    assert!(
        common::host_mounts_mentioning(&env.bundle().to_string_lossy()).is_empty(),
        "no mount reached the host"
    );
}

#[test]
fn a7_ipc_namespace() {
    require_root!("a7_ipc_namespace");
    // SAFETY: msgget only creates a queue; it is removed below with IPC_RMID.
    let queue = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    assert!(queue >= 0, "msgget: {}", std::io::Error::last_os_error());
    let env = Env::new("a7");
    let inside = run_ok(&env, &sh("cat /proc/sysvipc/msg | tail -n +2 | wc -l"));
    let mut shared = sh("cat /proc/sysvipc/msg | tail -n +2 | wc -l");
    shared["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}, {"type": "uts"}]);
    let host_view = run_ok(&env, &shared);
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::msgctl(queue, libc::IPC_RMID, std::ptr::null_mut()) };
    assert_eq!(inside.trim(), "0", "a new ipc namespace has no queues");
    assert_ne!(
        host_view.trim(),
        "0",
        "without an ipc namespace the host's queue is visible"
    );
}

#[test]
fn a8_network_namespace() {
    require_root!("a8_network_namespace");
    let env = Env::new("a8");
    assert_eq!(run_ok(&env, &sh("ls /sys/class/net")), "lo\n");
    let mut host = sh("ls /sys/class/net");
    host["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}, {"type": "uts"}]);
    let mut expected: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    assert_eq!(
        run_ok(&env, &host).lines().collect::<Vec<_>>(),
        expected,
        "no network namespace: the host's links"
    );
}

#[test]
fn a9_join_network_namespace_by_path() {
    require_root!("a9_join_network_namespace_by_path");
    let a = Env::new("a9a");
    a.write_config(&base_config(&["sleep", "30"]));
    assert_eq!(a.hull(&["run", "-d", &a.id]).code, 0);
    let pid = a.state()["pid"].as_i64().unwrap();
    let a_net = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let b = Env::new("a9b");
    let mut config = sh("readlink /proc/self/ns/net");
    config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid"}, {"type": "uts"}, {"type": "network", "path": format!("/proc/{pid}/ns/net")}
    ]);
    assert_eq!(
        run_ok(&b, &config).trim(),
        a_net.to_str().unwrap(),
        "B joined A's network namespace"
    );
}

/// Joining a namespace by path while creating a user namespace: hull joins first (while privileged on the host),
/// then unshares the user namespace and writes its id maps on the child's request (MapIds round trip).
#[test]
fn joined_namespace_with_a_new_user_namespace() {
    require_root!("joined_namespace_with_a_new_user_namespace");
    let a = Env::new("joinua");
    a.write_config(&base_config(&["sleep", "30"]));
    assert_eq!(a.hull(&["run", "-d", &a.id]).code, 0);
    let pid = a.state()["pid"].as_i64().unwrap();
    let a_net = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let b = Env::new("joinub");
    let mut config = sh("readlink /proc/self/ns/net; cat /proc/self/uid_map | tr -s ' '; id -u");
    config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid"}, {"type": "uts"}, {"type": "ipc"}, {"type": "user"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")}
    ]);
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 1000}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 1000}]);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup" && m["type"] != "sysfs");
    assert_eq!(
        run_ok(&b, &config),
        format!("{}\n 0 200000 1000\n0\n", a_net.to_str().unwrap()),
        "B joined A's network namespace inside its own user namespace"
    );
}

/// sysfs cannot be mounted from a user namespace that does not own the network namespace; like runc, hull then
/// bind-mounts the host's /sys (read-only, as configured) instead of failing.
#[test]
fn sysfs_in_a_user_namespace_sharing_the_host_network() {
    require_root!("sysfs_in_a_user_namespace_sharing_the_host_network");
    let env = Env::new("sysfsbind");
    let mut config = sh("test -d /sys/kernel && echo kernel; touch /sys/x 2>/dev/null || echo ro");
    config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid"}, {"type": "uts"}, {"type": "ipc"}, {"type": "user"}
    ]);
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "cgroup");
    assert_eq!(run_ok(&env, &config), "kernel\nro\n");
}

/// A container gets its own session keyring, named `_ses.<id>`, unless `--no-new-keyring`.
#[test]
fn session_keyring_is_new_unless_no_new_keyring() {
    require_root!("session_keyring_is_new_unless_no_new_keyring");
    let env = Env::new("keyring");
    let mut config = sh(&format!("grep -c ' _ses.{}: ' /proc/keys; true", env.id));
    config["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p != "/proc/keys");
    // --no-new-keyring first: a keyring once made outlives its container until the kernel collects it.
    env.write_config(&config);
    let r = env.hull(&["run", "--no-new-keyring", &env.id]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "0\n"),
        "--no-new-keyring keeps the caller's: {}",
        r.describe()
    );
    assert_eq!(run_ok(&env, &config), "1\n", "a new keyring _ses.<id>");
}

#[test]
fn a12_kernel_is_shared() {
    require_root!("a12_kernel_is_shared");
    let env = Env::new("a12");
    let host = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(run_ok(&env, &base_config(&["uname", "-r"])), host);
}

#[test]
fn a14_a15_bind_mounts() {
    require_root!("a14_a15_bind_mounts");
    let env = Env::new("a14");
    let host_dir = env.dir.path().join("htdocs");
    fs::create_dir(&host_dir).unwrap();
    fs::write(host_dir.join("index.html"), "v1\n").unwrap();
    let mut config = sh("cat /www/index.html; touch /www/x 2>&1 | grep -c 'Read-only' ; cat /www2/index.html; touch /www2/rw && echo rw-ok; test -f /single.html && cat /single.html; ls /etc | grep -c passwd");
    config["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/www", "type": "bind", "source": host_dir, "options": ["rbind", "ro"]}),
        json!({"destination": "/www2", "type": "bind", "source": host_dir, "options": ["bind"]}),
        json!({"destination": "/single.html", "type": "bind", "source": host_dir.join("index.html"), "options": ["bind", "ro"]}),
    ]);
    assert_eq!(run_ok(&env, &config), "v1\n1\nv1\nrw-ok\nv1\n1\n");
    assert!(
        host_dir.join("rw").exists(),
        "a rw bind writes through to the host"
    );
    assert!(
        host_dir.join("index.html").exists(),
        "the host file survives the container"
    );
}

#[test]
fn a14_host_change_is_visible_while_running() {
    require_root!("a14_host_change_is_visible_while_running");
    let env = Env::new("a14live");
    let host_dir = env.dir.path().join("data");
    fs::create_dir(&host_dir).unwrap();
    fs::write(host_dir.join("f"), "v1").unwrap();
    let mut config = sh("while [ \"$(cat /data/f)\" != v2 ]; do sleep 0.05; done; echo saw-v2");
    config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro"]}));
    env.write_config(&config);
    let out = env.dir.path().join("out");
    let mut cmd = common::hull_command();
    cmd.arg("--root")
        .arg(env.root())
        .args(["run", &env.id])
        .current_dir(env.bundle());
    cmd.stdout(fs::File::create(&out).unwrap());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    fs::write(host_dir.join("f"), "v2").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(fs::read_to_string(out).unwrap(), "saw-v2\n");
}

#[test]
fn a16_scratch_rootfs_with_one_static_binary() {
    require_root!("a16_scratch_rootfs_with_one_static_binary");
    let env = Env::new("a16");
    let rootfs = env.bundle().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    fs::copy(common::rootfs().join("bin/busybox"), rootfs.join("echo")).unwrap();
    let mut config = base_config(&["/echo", "hello from scratch"]);
    config["root"] = json!({"path": "rootfs", "readonly": false});
    assert_eq!(run_ok(&env, &config), "hello from scratch\n");
    for dir in ["proc", "dev", "sys"] {
        assert!(
            rootfs.join(dir).is_dir(),
            "/{dir} was created as a mount point"
        );
    }
}

#[test]
fn a27_env_and_args_are_literal() {
    require_root!("a27_env_and_args_are_literal");
    let env = Env::new("a27");
    let mut config = base_config(&["/bin/echo", "Hello,$name"]);
    config["process"]["env"] = json!(["name=Cloud Man", "PATH=/bin"]);
    assert_eq!(run_ok(&env, &config), "Hello,$name\n");
    let mut config = sh("echo Hello,$name; env | sort");
    config["process"]["env"] = json!(["name=Cloud Man", "PATH=/bin"]);
    let out = run_ok(&env, &config);
    // Exactly the configured variables, plus HOME from the container's /etc/passwd as runc adds it; sh adds PWD/SHLVL.
    assert_eq!(
        out,
        "Hello,Cloud Man\nHOME=/root\nPATH=/bin\nPWD=/\nSHLVL=1\nname=Cloud Man\n"
    );
}

#[test]
fn a28_cwd_is_used_and_created() {
    require_root!("a28_cwd_is_used_and_created");
    let env = Env::new("a28");
    let mut config = base_config(&["pwd"]);
    let rootfs = env.private_rootfs(&mut config);
    config["process"]["cwd"] = "/app/sub".into();
    assert_eq!(run_ok(&env, &config), "/app/sub\n");
    assert!(
        rootfs.join("app/sub").is_dir(),
        "a missing cwd is created, as runc does"
    );
}

#[test]
fn identity_caps_rlimits_umask_oom() {
    require_root!("identity_caps_rlimits_umask_oom");
    let env = Env::new("identity");
    let mut config = sh("id; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Umask)' /proc/self/status; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj");
    config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 23});
    config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
    });
    config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048}]);
    config["process"]["oomScoreAdj"] = 100.into();
    let out = run_ok(&env, &config);
    let expected = "uid=1000 gid=1000 groups=10,20\n\
                    Umask:\t0027\nCapInh:\t0000000000000020\nCapPrm:\t0000000000000020\nCapEff:\t0000000000000020\n\
                    CapBnd:\t0000000000000420\nCapAmb:\t0000000000000020\nNoNewPrivs:\t1\n512\n2048\n100\n";
    assert_eq!(out, expected);
}

#[test]
fn masked_readonly_paths_sysctl_and_readonly_root() {
    require_root!("masked_readonly_paths_sysctl_and_readonly_root");
    let env = Env::new("paths");
    let mut config = sh("cat /proc/keys | wc -c; stat -c %t:%T /proc/keys; ls /sys/firmware | wc -l; \
                         echo 1 > /proc/sys/kernel/shmmni 2>/dev/null || echo sys-ro; cat /proc/sys/kernel/shmmax; \
                         touch /x 2>/dev/null || echo root-ro; ls -l /dev/ptmx /dev/fd /dev/stdin | cut -c1 | tr -d '\\n'; echo; \
                         stat -c %t:%T /dev/null /dev/zero /dev/fuse");
    config["linux"]["sysctl"] = json!({"kernel.shmmax": "65536"});
    config["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    assert_eq!(
        run_ok(&env, &config),
        "0\n1:3\n0\nsys-ro\n65536\nroot-ro\nlll\n1:3\n1:5\na:e5\n"
    );
}

#[test]
fn user_namespace_maps_root() {
    require_root!("user_namespace_maps_root");
    let env = Env::new("userns");
    let host_dir = env.dir.path().join("shared");
    fs::create_dir(&host_dir).unwrap();
    std::os::unix::fs::chown(&host_dir, Some(100000), Some(100000)).unwrap();
    let mut config = sh("id -u; cat /proc/self/uid_map | tr -s ' '; touch /home/made; echo hi > /etc/hostname 2>/dev/null || echo denied");
    common::add_user_namespace(&mut config);
    config["root"]["readonly"] = false.into();
    let mounts = config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["type"] != "cgroup");
    mounts.push(
        json!({"destination": "/home", "type": "bind", "source": host_dir, "options": ["rbind"]}),
    );
    assert_eq!(run_ok(&env, &config), "0\n 0 100000 65536\ndenied\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(host_dir.join("made")).unwrap().uid(),
        100000,
        "files made inside belong to the mapped uid"
    );
}

#[test]
fn time_namespace_offsets() {
    require_root!("time_namespace_offsets");
    let env = Env::new("timens");
    let mut config = sh("cut -d. -f1 /proc/uptime");
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    config["linux"]["timeOffsets"] =
        json!({"boottime": {"secs": 86400}, "monotonic": {"secs": 86400}});
    let inside: u64 = run_ok(&env, &config).trim().parse().unwrap();
    let host: u64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside >= host + 86_390 && inside <= host + 86_410,
        "uptime inside {inside}, host {host}: one day ahead"
    );
}

#[test]
fn no_pivot_and_rootfs_propagation() {
    require_root!("no_pivot_and_rootfs_propagation");
    let env = Env::new("nopivot");
    let mut config = sh("awk '$5 == \"/\"' /proc/self/mountinfo | grep -c shared");
    config["linux"]["rootfsPropagation"] = "shared".into();
    assert_eq!(
        run_ok(&env, &config),
        "1\n",
        "rootfsPropagation shared makes / shared"
    );
    // The rootfs' parent mount is made private first, so that an unbindable / can still be bound (runc 1.5).
    config["linux"]["rootfsPropagation"] = "unbindable".into();
    config["process"]["args"] = json!([
        "sh",
        "-c",
        "awk '$5 == \"/\"' /proc/self/mountinfo | grep -c unbindable"
    ]);
    assert_eq!(
        run_ok(&env, &config),
        "1\n",
        "rootfsPropagation unbindable makes / unbindable"
    );
    env.write_config(&base_config(&["ls", "/bin/busybox"]));
    let r = env.hull(&["run", "--no-pivot", &env.id]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "/bin/busybox\n"),
        "{}",
        r.describe()
    );
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().expect("run ip")
}

/// `linux.netDevices` (runc 1.5): a host interface moves into the container's network namespace under its new name,
/// with its permanent global addresses (not the others) and up. The kernel deletes a virtual one with the namespace.
#[test]
fn net_devices_move_into_the_container_renamed_with_their_addresses() {
    require_root!("net_devices_move_into_the_container_renamed_with_their_addresses");
    let tag = std::process::id() % 100_000;
    let (moved, peer) = (format!("hd{tag}a"), format!("hd{tag}b"));
    let made = ip(&["link", "add", &moved, "type", "veth", "peer", "name", &peer]);
    if !made.status.success() {
        skip!(
            "net_devices_move_into_the_container_renamed_with_their_addresses: no veth on this kernel: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    for address in [
        &["10.213.7.1/24"][..],
        &["10.213.8.1/24", "valid_lft", "300", "preferred_lft", "300"],
        &["169.254.7.1/16", "scope", "link"],
    ] {
        let out = ip(&[&["addr", "add"][..], address, &["dev", &moved]].concat());
        assert!(out.status.success(), "ip addr add {address:?}: {out:?}");
    }
    let env = Env::new("netdev");
    let mut config = sh("ls /sys/class/net | sort | tr '\\n' ' '; echo; \
         busybox ip addr show dev ctr0 | awk '$1 == \"inet\" {print $2, $NF}'; \
         busybox ip link show dev ctr0 | grep -o ',UP'");
    config["linux"]["netDevices"] = json!({ &moved: {"name": "ctr0"} });
    let r = env.run(&config);
    // The kernel tears a network namespace down asynchronously, after its last process is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut host_peer_left = true;
    while host_peer_left && std::time::Instant::now() < deadline {
        host_peer_left = ip(&["link", "show", &peer]).status.success();
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = ip(&["link", "del", &moved]);
    let _ = ip(&["link", "del", &peer]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "ctr0 lo \n10.213.7.1/24 ctr0\n,UP\n"),
        "only the permanent global address moves along, and the link is up: {}",
        r.describe()
    );
    assert!(
        !host_peer_left,
        "the veth pair goes with the container's network namespace"
    );

    config["linux"]["netDevices"] = json!({"hdnosuch0": {}});
    let r = env.run(&config);
    assert!(
        r.code != 0
            && r.stderr
                .contains("move netDevice hdnosuch0 to namespace /proc/")
            && r.stderr
                .contains("link not found for interface hdnosuch0 on runtime namespace"),
        "a missing device is named: {}",
        r.describe()
    );
    common::assert_leaves_nothing(&env);
}

/// The line of this process's mountinfo for `/`: its propagation is in the optional fields.
fn host_root_mount() -> String {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap()
        .to_owned()
}

/// runtime-spec: a namespace type that is not listed is inherited. Without a mount namespace the container's mounts
/// go into the host's and its init chroots into the rootfs (runc 1.5); hull changes nothing else of the host's mounts
/// (runc makes the host's / a recursive slave), an exec'd process gets the container's root too (runc's sees the
/// host's), and what was mounted is taken away at delete and when create fails.
#[test]
fn a_config_without_a_mount_namespace_mounts_into_the_hosts_and_leaves_nothing() {
    require_root!("a_config_without_a_mount_namespace_mounts_into_the_hosts_and_leaves_nothing");
    let env = Env::new("nomntns");
    let mut config =
        sh("readlink /proc/self/ns/mnt; cat /marker; touch /written 2>/dev/null || echo read-only");
    let rootfs = env.private_rootfs(&mut config);
    fs::write(rootfs.join("marker"), "in the rootfs\n").unwrap();
    config["root"]["readonly"] = true.into();
    config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "cgroup"}]);
    let linux = config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    let host_ns = fs::read_link("/proc/self/ns/mnt").unwrap();
    let root_before = host_root_mount();
    assert_eq!(
        run_ok(&env, &config),
        format!("{}\nin the rootfs\nread-only\n", host_ns.display()),
        "the host's mount namespace, the rootfs as /, made read-only"
    );
    let below_rootfs = format!(" {}/", rootfs.display());
    assert_eq!(
        common::host_mounts_mentioning(&below_rootfs),
        Vec::<String>::new(),
        "run took its mounts away"
    );

    config["process"]["args"] = json!(["sleep", "100"]);
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    // Once, or more where the host's mount is shared with a peer that receives a copy.
    let proc_mount = format!(" {}/proc ", rootfs.display());
    assert_ne!(
        common::host_mounts_mentioning(&proc_mount),
        Vec::<String>::new(),
        "the container's procfs is in the host's mount table below the rootfs"
    );
    assert_eq!(
        host_root_mount(),
        root_before,
        "the host's / keeps its propagation"
    );
    let r = env.hull(&["exec", &env.id, "cat", "/marker"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "in the rootfs\n"),
        "exec runs in the container's root: {}",
        r.describe()
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
    common::assert_leaves_nothing(&env);

    // A create that fails after its first mounts takes them away too.
    config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent/source", "options": ["bind"]}));
    env.write_config(&config);
    let r = env.hull(&["create", &env.id]);
    assert_ne!(
        r.code,
        0,
        "create with a missing bind source: {}",
        r.describe()
    );
    assert!(r.stderr.contains("/nonexistent/source"), "{}", r.describe());
    common::assert_leaves_nothing(&env);

    let r = env.hull(&["run", "--no-pivot", &env.id]);
    assert!(
        r.code != 0
            && r.stderr
                .contains("--no-pivot needs a mount namespace of its own"),
        "--no-pivot would move the rootfs onto the host's /: {}",
        r.describe()
    );
    common::assert_leaves_nothing(&env);
}

/// runc's `reOpenDevNull`: a standard stream that is the host's /dev/null (here stdin, as `env.hull` gives it)
/// becomes the container's own /dev/null, on one of the container's mounts, so nothing of the host's mounts is held
/// (and CRIU can dump the container).
#[test]
fn a_host_dev_null_stream_is_reopened_inside_the_container() {
    require_root!("a_host_dev_null_stream_is_reopened_inside_the_container");
    let env = Env::new("devnull");
    let script = "id=$(awk '/^mnt_id/ {print $2}' /proc/self/fdinfo/0); \
                  awk -v id=$id '$1 == id {found=1} END {print found ? \"inside\" : \"outside \" id}' /proc/self/mountinfo";
    assert_eq!(run_ok(&env, &sh(script)), "inside\n");
    let mut config = sh(script);
    common::add_user_namespace(&mut config);
    assert_eq!(
        run_ok(&env, &config),
        "inside\n",
        "with a user namespace, /dev/null is a bind of the host's node"
    );
}

#[test]
fn preserved_and_stray_fds() {
    require_root!("preserved_and_stray_fds");
    let env = Env::new("fds");
    let passed = fs::File::open("/etc/hostname").unwrap();
    let stray = fs::File::open("/etc/passwd").unwrap();
    let (passed_fd, stray_fd) = (passed.as_raw_fd(), stray.as_raw_fd());
    // Ask for the two descriptors by number (a pipeline would make the shell open fds of its own).
    env.write_config(&sh(
        "for fd in 3 4; do readlink /proc/$$/fd/$fd || echo closed; done 2>/dev/null",
    ));
    let run = |preserve: &str| {
        let mut cmd = common::hull_command();
        cmd.arg("--root")
            .arg(env.root())
            .args(["run", "--preserve-fds", preserve, &env.id])
            .current_dir(env.bundle());
        common::pass_fds(&mut cmd, vec![(passed_fd, 3), (stray_fd, 4)]);
        common::run_with_timeout(cmd, Duration::from_secs(30))
    };
    let r = run("1");
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout, "/etc/hostname\nclosed\n",
        "fd 3 is passed, the stray fd 4 is not"
    );
    let r = run("0");
    assert_eq!(
        r.stdout, "closed\nclosed\n",
        "nothing beyond stdio without --preserve-fds"
    );
}

/// Socket activation: with LISTEN_PID naming hull and LISTEN_FDS=1, fd 3 goes to the container (before the
/// preserved fds) and the process sees LISTEN_FDS=1, LISTEN_PID=1, as runc passes them.
#[test]
fn socket_activation_fds_are_passed() {
    require_root!("socket_activation_fds_are_passed");
    let env = Env::new("listen");
    env.write_config(&sh(
        "echo $LISTEN_FDS $LISTEN_PID; for fd in 3 4 5; do readlink /proc/$$/fd/$fd || echo closed; done 2>/dev/null",
    ));
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "exec 3</etc/hostname 4</etc/passwd 5</etc/group; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"",
        common::HULL,
        "--root",
        env.root().to_str().unwrap(),
        "run",
        "--preserve-fds",
        "1",
        &env.id,
    ])
    .current_dir(env.bundle());
    let r = common::run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(r.stdout, "1 1\n/etc/hostname\n/etc/passwd\nclosed\n");
}

/// A created-then-started init has nothing of hull's either: its fd table, read from the host, is stdio only.
#[test]
fn created_init_has_only_stdio() {
    require_root!("created_init_has_only_stdio");
    let env = Env::new("fdcreate");
    env.write_config(&base_config(&["sleep", "600"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let r = env.hull(&["start", &env.id]);
    assert_eq!(r.code, 0, "start: {}", r.describe());
    let pid = env.state()["pid"].as_i64().unwrap();
    let cmdline = format!("/proc/{pid}/cmdline");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(&cmdline).unwrap_or_default() != "sleep\u{0}600\u{0}" {
        assert!(
            std::time::Instant::now() < deadline,
            "the init never ran sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut fds: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "the started init's fds");
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

#[test]
fn create_runs_from_a_sealed_view_of_hull() {
    require_root!("create_runs_from_a_sealed_view_of_hull");
    use std::os::unix::fs::MetadataExt;
    let env = Env::new("sealed");
    env.write_config(&base_config(&["sleep", "30"]));
    let r = env.hull(&["create", &env.id]);
    assert_eq!(r.code, 0, "create: {}", r.describe());
    let pid = env.state()["pid"].as_i64().unwrap();
    // CVE-2019-5736: what the init runs is an unwritable view of hull, not the host binary itself.
    let exe = fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let host = fs::metadata(common::HULL).unwrap();
    assert_ne!(
        (exe.dev(), exe.ino()),
        (host.dev(), host.ino()),
        "the init must not run the host binary itself"
    );
    let write = fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(write.is_err(), "the init's executable must not be writable");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("State:\tS"),
        "parked init sleeps on the exec fifo"
    );
    let mem = fs::metadata(format!("/proc/{pid}/mem")).unwrap();
    assert_eq!(
        mem.uid(),
        0,
        "a non-dumpable init's /proc files belong to root"
    );
}

/// The syscalls hull's first process makes among execve, execveat and arch_prctl (the C library's first call
/// sets up TLS with arch_prctl), as strace reports them, names only.
fn startup_syscalls(env: &Env, args: &[&str]) -> Vec<String> {
    let trace = env.bundle().join("startup.strace");
    let mut cmd = Command::new("strace");
    cmd.arg("-o")
        .arg(&trace)
        .args(["-e", "trace=execve,execveat,arch_prctl", common::HULL])
        .arg("--root")
        .arg(env.root())
        .args(args)
        .current_dir(env.bundle());
    let r = common::run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(r.code, 0, "strace hull {args:?}: {}", r.describe());
    fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| l.split('(').next())
        .filter(|name| ["execve", "execveat", "arch_prctl"].contains(name))
        .take(3)
        .map(str::to_owned)
        .collect()
}

/// The CVE-2019-5736 re-exec happens before the C library starts (src/preseal.rs), so only the sealed image pays for
/// libc's and Rust's start-up; where the overlay view cannot be made, the fast path declines and the complete path
/// re-execs from a sealed memfd copy after start-up (2.2 MB copied per container). The overlay view must work on
/// every host the tests run on: this one (Linux 6.18) and the Debian 12 guest of `make test-host` (Linux 6.1, which
/// refused the view's former detached-tmpfs layer, so every Debian 12 host paid the copy). Commands that do not
/// enter a container never re-exec.
#[test]
fn sealing_reexec_comes_before_the_c_library_and_only_for_commands_that_enter() {
    require_root!("sealing_reexec_comes_before_the_c_library_and_only_for_commands_that_enter");
    let env = Env::new("preseal");
    env.write_config(&base_config(&["sleep", "30"]));
    let create = startup_syscalls(&env, &["create", &env.id]);
    let pid = env.state()["pid"].as_i64().unwrap();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        !exe.to_string_lossy().starts_with("/memfd:"),
        "expected the init to run from the overlay view of hull, not from the memfd copy {}",
        exe.display()
    );
    let expected = ["execve", "execveat", "arch_prctl"];
    assert_eq!(
        create,
        expected,
        "create (the init runs {}): exec of hull, then the re-exec of its sealed view and the C library's start",
        exe.display()
    );
    assert_eq!(
        startup_syscalls(&env, &["exec", &env.id, "true"]),
        expected,
        "exec: as create"
    );
    assert_eq!(
        startup_syscalls(&env, &["state", &env.id]),
        ["execve", "arch_prctl"],
        "state: no re-exec"
    );
    let r = env.hull(&["delete", "--force", &env.id]);
    assert_eq!(r.code, 0, "delete: {}", r.describe());
}

/// `tmpcopyup` (podman's `--read-only` asks for it on /tmp, /var/tmp and /run): the tmpfs starts with the covered
/// directory's contents — modes regardless of umask, owners, symlinks as links — and the image is left untouched.
#[test]
fn tmpcopyup_fills_the_tmpfs_with_the_covered_directory() {
    require_root!("tmpcopyup_fills_the_tmpfs_with_the_covered_directory");
    use std::os::unix::fs::{symlink, PermissionsExt};
    let env = Env::new("copyup");
    let mut config = base_config(&[
        "/bin/sh",
        "-c",
        "stat -c '%n %a %u:%g %F' /srv /srv/open /srv/open/file /srv/link; readlink /srv/link; \
         cat /srv/open/file; grep ' /srv ' /proc/self/mounts | cut -d' ' -f3,4 | cut -d, -f1; \
         touch /srv/new 2>&1 | sed 's/.*: //'",
    ]);
    let rootfs = env.private_rootfs(&mut config);
    let srv = rootfs.join("srv");
    fs::create_dir_all(srv.join("open")).unwrap();
    fs::write(srv.join("open/file"), "from the image\n").unwrap();
    std::os::unix::fs::chown(srv.join("open/file"), Some(1), Some(65534)).unwrap();
    fs::set_permissions(srv.join("open"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(srv.join("open/file"), fs::Permissions::from_mode(0o604)).unwrap();
    fs::set_permissions(&srv, fs::Permissions::from_mode(0o750)).unwrap();
    symlink("/etc/passwd", srv.join("link")).unwrap();
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/srv", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "ro", "tmpcopyup"],
    }));
    let r = env.run(&config);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout,
        "/srv 750 0:0 directory\n\
         /srv/open 777 0:0 directory\n\
         /srv/open/file 604 1:65534 regular file\n\
         /srv/link 777 0:0 symbolic link\n\
         /etc/passwd\n\
         from the image\n\
         tmpfs ro\n\
         Read-only file system\n",
        "{}",
        r.describe()
    );
    assert!(
        !srv.join("new").exists(),
        "the image's /srv was not written"
    );
}

/// Without `mode=` a tmpfs over an existing directory keeps that directory's mode (runc ≥ 1.1.8, crun).
#[test]
fn a_tmpfs_over_a_directory_keeps_its_mode() {
    require_root!("a_tmpfs_over_a_directory_keeps_its_mode");
    let env = Env::new("tmpfsmode");
    let mut config = base_config(&["stat", "-c", "%a", "/home", "/fresh"]);
    env.private_rootfs(&mut config);
    for dest in ["/home", "/fresh"] {
        config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"],
        }));
    }
    let r = env.run(&config);
    assert_eq!(r.code, 0, "{}", r.describe());
    assert_eq!(
        r.stdout, "755\n1777\n",
        "/home (0755 in the image), then a new /fresh"
    );
}

/// Mount behaviour of runc 1.5 that hull lacked:
/// - a read-only `/dev` tmpfs still gets its sub-mounts (`/dev/pts`, `/dev/shm`) and device nodes, and is read-only
///   afterwards (runc remounts read-only tmpfs mounts last); hull failed creating `/dev/pts`;
/// - `nosymfollow` on a bind mount is applied (a symlink there is not followed); hull dropped the flag;
/// - a bind mount with filesystem data options (`size=10k`) is refused, as runc 1.2+ refuses it; hull ignored them.
#[test]
fn read_only_dev_nosymfollow_binds_and_bind_data_options() {
    require_root!("read_only_dev_nosymfollow_binds_and_bind_data_options");
    let env = Env::new("mountopts");
    let mut config = sh(
        "ls /dev/pts/ptmx /dev/null /dev/shm >/dev/null && echo nodes; \
                         touch /dev/x 2>/dev/null || echo dev-ro; \
                         cat /mnt/link 2>/dev/null || echo not-followed; cat /mnt/target",
    );
    for m in config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let host = env.dir.path().join("linked");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("target"), "target\n").unwrap();
    std::os::unix::fs::symlink("target", host.join("link")).unwrap();
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt", "type": "bind", "source": host, "options": ["rbind", "nosymfollow"]
    }));
    assert_eq!(
        run_ok(&env, &config),
        "nodes\ndev-ro\nnot-followed\ntarget\n",
        "expected /dev's nodes under a read-only /dev, and /mnt/link not followed"
    );
    let last = config["mounts"].as_array().unwrap().len() - 1;
    config["mounts"][last]["options"] = json!(["rbind", "size=10k"]);
    let r = env.run(&config);
    assert!(
        r.code == 1
            && r.stderr.contains(
                "invalid mount /mnt (size=10k): bind mounts cannot have any filesystem-specific options applied"
            ),
        "expected the bind with a data option refused: {}",
        r.describe()
    );
}
