//! The cases: each edits the config template and says what the container must then show.
//!
//! Expectations follow the OCI runtime spec and, where it is silent, what runc does.

use crate::check::Checks;
use crate::host::Host;
use crate::runner::SENTINEL;
use anyhow::Result;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

/// What a case can use while configuring and verifying.
pub struct Context<'a> {
    pub host: &'a Host,
    /// An empty host directory for the case's fixtures, removed afterwards.
    pub scratch: &'a Path,
    /// The container id, unique to this run of this case.
    pub id: &'a str,
}

type Configure = fn(&mut Value, &Context) -> Result<()>;
type Verify = fn(&mut Checks, &Value, &Context);

pub enum Expect {
    /// The process (`checker facts` unless the case changes it) exits 0; its facts are verified
    /// against the final config.
    Facts(Verify),
    /// The runtime exits with the container process's exit code.
    Exit(i32),
    /// The runtime refuses the config: it exits non-zero and the process never runs.
    Rejected(Verify),
}

pub struct Case {
    pub name: &'static str,
    /// Why this machine cannot run the case, if it cannot.
    pub requires: fn(&Host) -> Option<String>,
    pub configure: Configure,
    pub expect: Expect,
}

pub fn all() -> Vec<Case> {
    let case = |name, configure, expect| Case {
        name,
        requires: needs_root,
        configure,
        expect,
    };
    vec![
        case("default", unchanged, Expect::Facts(verify_default)),
        case("user", configure_user, Expect::Facts(verify_user)),
        case(
            "cwd",
            |spec, _| set(spec, "/process/cwd", "/tmp"),
            Expect::Facts(verify_cwd),
        ),
        case("env", configure_env, Expect::Facts(verify_env)),
        case(
            "env-home-from-passwd",
            configure_env_without_home,
            Expect::Facts(verify_env_home),
        ),
        case("rlimits", configure_rlimits, Expect::Facts(verify_rlimits)),
        case(
            "capabilities",
            configure_capabilities,
            Expect::Facts(verify_capabilities),
        ),
        case(
            "capabilities-non-root",
            configure_capabilities_non_root,
            Expect::Facts(verify_capabilities),
        ),
        case(
            "no-new-privileges-false",
            configure_privileges_allowed,
            Expect::Facts(verify_no_new_privs),
        ),
        case(
            "oom-score-adj",
            |spec, _| set(spec, "/process/oomScoreAdj", 100),
            Expect::Facts(verify_oom),
        ),
        case(
            "umask",
            |spec, _| set(spec, "/process/user/umask", 0o027),
            Expect::Facts(verify_umask),
        ),
        case(
            "hostname",
            configure_hostname,
            Expect::Facts(verify_uts_names),
        ),
        case(
            "domainname",
            configure_domainname,
            Expect::Facts(verify_uts_names),
        ),
        case(
            "hostname-requires-uts-namespace",
            configure_hostname_without_uts,
            Expect::Rejected(verify_host_hostname),
        ),
        case("sysctl", configure_sysctl, Expect::Facts(verify_sysctl)),
        Case {
            name: "seccomp",
            requires: needs_seccomp,
            configure: configure_seccomp,
            expect: Expect::Facts(verify_seccomp),
        },
        case(
            "root-readonly",
            |spec, _| probe(spec, &["/"]),
            Expect::Facts(verify_root_readonly),
        ),
        case(
            "standard-mounts",
            unchanged,
            Expect::Facts(verify_standard_mounts),
        ),
        case(
            "default-devices",
            configure_default_devices,
            Expect::Facts(verify_default_devices),
        ),
        case("devices", configure_devices, Expect::Facts(verify_devices)),
        case("tmpfs-mount", configure_tmpfs, Expect::Facts(verify_tmpfs)),
        case(
            "tmpfs-mode-over-directory",
            configure_tmpfs_over_directory,
            Expect::Facts(verify_tmpfs_over_directory),
        ),
        case(
            "tmpfs-copyup",
            configure_tmpfs_copyup,
            Expect::Facts(verify_tmpfs_copyup),
        ),
        case("bind-mounts", configure_binds, Expect::Facts(verify_binds)),
        case(
            "cgroup-mount",
            configure_cgroup_mount,
            Expect::Facts(verify_cgroup_mount),
        ),
        case(
            "masked-paths",
            configure_masked,
            Expect::Facts(verify_masked),
        ),
        case(
            "readonly-paths",
            configure_readonly,
            Expect::Facts(verify_readonly),
        ),
        case("namespaces", unchanged, Expect::Facts(verify_namespaces)),
        case(
            "namespaces-host-network",
            configure_host_network,
            Expect::Facts(verify_namespaces),
        ),
        Case {
            requires: needs_cgroup_namespace,
            ..case(
                "cgroup-namespace",
                unchanged,
                Expect::Facts(verify_cgroup_ns),
            )
        },
        case(
            "cgroups-path",
            configure_cgroups_path,
            Expect::Facts(verify_cgroups_path),
        ),
        case(
            "exit-status",
            |spec, _| set(spec, "/process/args", json!(["/checker", "exit", "7"])),
            Expect::Exit(7),
        ),
    ]
}

fn needs_root(host: &Host) -> Option<String> {
    (!host.is_root())
        .then(|| "needs root (containers with new namespaces, cgroups and mounts)".to_string())
}

fn needs_seccomp(host: &Host) -> Option<String> {
    needs_root(host).or_else(|| {
        host.runtime_lacks("/linux/seccomp/enabled")
            .then(|| "the runtime's features say seccomp is not enabled".to_string())
    })
}

fn needs_cgroup_namespace(host: &Host) -> Option<String> {
    needs_root(host).or_else(|| {
        host.namespace("cgroup")
            .is_none()
            .then(|| "the kernel has no cgroup namespaces".to_string())
    })
}

// ---- config editing helpers ----

fn unchanged(_: &mut Value, _: &Context) -> Result<()> {
    Ok(())
}

/// Sets the value at a JSON pointer, creating missing objects on the way.
fn set(spec: &mut Value, pointer: &str, value: impl Into<Value>) -> Result<()> {
    let mut target = spec;
    for key in pointer[1..].split('/') {
        if !target.is_object() {
            *target = json!({});
        }
        target = target
            .as_object_mut()
            .expect("made an object above")
            .entry(key)
            .or_insert(Value::Null);
    }
    *target = value.into();
    Ok(())
}

/// Appends to the list at `pointer`, creating it when missing.
fn push(spec: &mut Value, pointer: &str, items: impl IntoIterator<Item = Value>) -> Result<()> {
    if !spec.pointer(pointer).is_some_and(Value::is_array) {
        set(spec, pointer, json!([]))?;
    }
    let list = spec
        .pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .expect("made a list above");
    list.extend(items);
    Ok(())
}

/// Asks `checker facts` to probe `paths` as well.
fn probe(spec: &mut Value, paths: &[&str]) -> Result<()> {
    push(spec, "/process/args", paths.iter().map(|path| json!(path)))
}

fn remove_namespace(spec: &mut Value, kind: &str) -> Result<()> {
    if let Some(namespaces) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    {
        namespaces.retain(|namespace| namespace["type"] != kind);
    }
    Ok(())
}

fn all_capability_sets(spec: &mut Value, capabilities: &[&str]) -> Result<()> {
    let sets = [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ];
    let value: serde_json::Map<String, Value> = sets
        .iter()
        .map(|set| (set.to_string(), json!(capabilities)))
        .collect();
    set(spec, "/process/capabilities", value)
}

// ---- process ----

fn verify_default(checks: &mut Checks, spec: &Value, _: &Context) {
    for id in ["/uid", "/euid", "/gid", "/egid"] {
        checks.equal(id, 0);
    }
    checks.equal("/groups", json!([]));
    checks.equal("/cwd", "/");
    checks.equal("/env", spec["process"]["env"].clone());
    for set in ["bounding", "effective", "permitted"] {
        checks.same_set(
            &format!("/capabilities/{set}"),
            &spec["process"]["capabilities"][set],
        );
    }
    // Unset sets are empty: the runtime must not fill them in.
    checks.equal("/capabilities/inheritable", json!([]));
    checks.equal("/capabilities/ambient", json!([]));
    checks.equal("/no_new_privs", true);
    checks.equal("/seccomp", 0);
    checks.equal("/umask", "0022");
    // A new pid namespace: the process is its init, and its parent is outside it.
    checks.equal("/pid", 1);
    checks.equal("/ppid", 0);
    checks.equal("/stdin_tty", false);
    checks.equal("/stdout_tty", false);
    checks.equal("/hostname", spec["hostname"].clone());
}

fn configure_user(spec: &mut Value, _: &Context) -> Result<()> {
    set(
        spec,
        "/process/user",
        json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] }),
    )
}

fn verify_user(checks: &mut Checks, spec: &Value, _: &Context) {
    checks.equal("/uid", 1000);
    checks.equal("/euid", 1000);
    checks.equal("/gid", 1000);
    checks.equal("/egid", 1000);
    checks.same_set("/groups", &json!([10, 20]));
    checks.same_set(
        "/capabilities/bounding",
        &spec["process"]["capabilities"]["bounding"],
    );
}

fn verify_cwd(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/cwd", "/tmp");
}

fn configure_env(spec: &mut Value, _: &Context) -> Result<()> {
    let env = [
        "PATH=/bin",
        "HOME=/home/conformance",
        "EMPTY=",
        "SPACES=a b  c",
        "EQUALS=k=v=w",
        "UTF8=grüße",
    ];
    set(spec, "/process/env", json!(env))
}

fn verify_env(checks: &mut Checks, spec: &Value, _: &Context) {
    checks.equal("/env", spec["process"]["env"].clone());
    let leaked: Vec<Value> = checks.fact("/env").as_array().map_or(vec![], |env| {
        env.iter()
            .filter(|entry| {
                entry
                    .as_str()
                    .is_some_and(|entry| entry.starts_with(SENTINEL))
            })
            .cloned()
            .collect()
    });
    if !leaked.is_empty() {
        checks.fail(
            "env",
            "nothing from the runtime's own environment",
            json!(leaked),
        );
    }
}

fn configure_env_without_home(spec: &mut Value, _: &Context) -> Result<()> {
    set(spec, "/process/env", json!(["PATH=/bin", "LANG=C"]))
}

/// Like runc, a runtime appends HOME from the rootfs's /etc/passwd when the config has none.
fn verify_env_home(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/env", json!(["PATH=/bin", "LANG=C", "HOME=/root"]));
}

fn configure_rlimits(spec: &mut Value, _: &Context) -> Result<()> {
    let rlimits = json!([
        { "type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048 },
        { "type": "RLIMIT_NPROC", "soft": 512, "hard": 1024 },
        { "type": "RLIMIT_CORE", "soft": 4096, "hard": u64::MAX },
    ]);
    set(spec, "/process/rlimits", rlimits)
}

fn verify_rlimits(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal(
        "/rlimits/RLIMIT_NOFILE",
        json!({ "soft": 1024, "hard": 2048 }),
    );
    checks.equal(
        "/rlimits/RLIMIT_NPROC",
        json!({ "soft": 512, "hard": 1024 }),
    );
    checks.equal(
        "/rlimits/RLIMIT_CORE",
        json!({ "soft": 4096, "hard": "unlimited" }),
    );
}

fn configure_capabilities(spec: &mut Value, _: &Context) -> Result<()> {
    all_capability_sets(spec, &["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT"])
}

/// A non-root process keeps capabilities across execve only through the ambient set.
fn configure_capabilities_non_root(spec: &mut Value, _: &Context) -> Result<()> {
    set(spec, "/process/user", json!({ "uid": 1000, "gid": 1000 }))?;
    all_capability_sets(spec, &["CAP_KILL", "CAP_NET_BIND_SERVICE"])
}

fn verify_capabilities(checks: &mut Checks, spec: &Value, _: &Context) {
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        checks.same_set(
            &format!("/capabilities/{set}"),
            &spec["process"]["capabilities"][set],
        );
    }
}

fn configure_privileges_allowed(spec: &mut Value, _: &Context) -> Result<()> {
    set(spec, "/process/noNewPrivileges", false)
}

fn verify_no_new_privs(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/no_new_privs", false);
}

fn verify_oom(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/oom_score_adj", 100);
}

fn verify_umask(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/umask", "0027");
}

fn configure_seccomp(spec: &mut Value, _: &Context) -> Result<()> {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }],
    });
    set(spec, "/linux/seccomp", profile)
}

/// Mode 2 is SECCOMP_MODE_FILTER.
fn verify_seccomp(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/seccomp", 2);
    checks.equal("/no_new_privs", true);
}

// ---- UTS names and sysctls ----

fn configure_hostname(spec: &mut Value, _: &Context) -> Result<()> {
    set(spec, "/hostname", "conformance-host")
}

fn configure_domainname(spec: &mut Value, _: &Context) -> Result<()> {
    set(spec, "/domainname", "conformance.example")
}

fn verify_uts_names(checks: &mut Checks, spec: &Value, _: &Context) {
    checks.equal("/hostname", spec["hostname"].clone());
    if let Some(domainname) = spec.get("domainname") {
        checks.equal("/domainname", domainname.clone());
    }
}

fn configure_hostname_without_uts(spec: &mut Value, _: &Context) -> Result<()> {
    set(spec, "/hostname", "must-not-reach-the-host")?;
    remove_namespace(spec, "uts")
}

fn verify_host_hostname(checks: &mut Checks, _: &Value, context: &Context) {
    let now = fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|err| err.to_string(), |name| name.trim().to_string());
    if context.host.hostname() != now.as_str() {
        checks.fail("host hostname", context.host.hostname(), json!(now));
    }
}

fn configure_sysctl(spec: &mut Value, _: &Context) -> Result<()> {
    let sysctl = json!({ "kernel.domainname": "sysctl.example", "net.ipv4.ip_forward": "1" });
    set(spec, "/linux/sysctl", sysctl)?;
    probe(spec, &["/proc/sys/net/ipv4/ip_forward"])
}

fn verify_sysctl(checks: &mut Checks, _: &Value, _: &Context) {
    checks.equal("/domainname", "sysctl.example");
    checks.probed("/proc/sys/net/ipv4/ip_forward", "/read/content", "1\n");
}

// ---- filesystem ----

fn verify_root_readonly(checks: &mut Checks, _: &Value, _: &Context) {
    checks.mount_options("/", &["ro"]);
    checks.probed("/", "/write_access", "EROFS");
}

fn verify_standard_mounts(checks: &mut Checks, _: &Value, _: &Context) {
    checks.mounted("/proc", "proc", &[]);
    checks.mounted("/dev", "tmpfs", &["nosuid", "mode=755"]);
    checks.mounted(
        "/dev/pts",
        "devpts",
        &["nosuid", "noexec", "mode=620", "ptmxmode=666", "gid=5"],
    );
    checks.mounted("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev"]);
    checks.mounted("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]);
    checks.mounted("/sys", "sysfs", &["ro", "nosuid", "noexec", "nodev"]);
}

/// The devices and links runtime-linux.md requires in every container.
const DEFAULT_DEVICES: [(&str, &str); 6] = [
    ("/dev/null", "1:3"),
    ("/dev/zero", "1:5"),
    ("/dev/full", "1:7"),
    ("/dev/random", "1:8"),
    ("/dev/urandom", "1:9"),
    ("/dev/tty", "5:0"),
];
const DEFAULT_LINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
];

fn configure_default_devices(spec: &mut Value, _: &Context) -> Result<()> {
    let paths = DEFAULT_DEVICES
        .iter()
        .chain(&DEFAULT_LINKS)
        .map(|(path, _)| *path);
    probe(spec, &paths.collect::<Vec<_>>())
}

fn verify_default_devices(checks: &mut Checks, _: &Value, _: &Context) {
    for (path, rdev) in DEFAULT_DEVICES {
        checks.probed(path, "/type", "char");
        checks.probed(path, "/rdev", rdev);
        checks.probed(path, "/mode", "0666");
    }
    for (path, target) in DEFAULT_LINKS {
        checks.probed(path, "/type", "symlink");
        checks.probed(path, "/target", target);
    }
}

fn configure_devices(spec: &mut Value, _: &Context) -> Result<()> {
    let device = |path: &str, minor: u32, mode: u32, owner: u32| {
        json!({
            "path": path,
            "type": "c",
            "major": 1,
            "minor": minor,
            "fileMode": mode,
            "uid": owner,
            "gid": owner,
        })
    };
    let devices = [
        device("/dev/conformance-null", 3, 0o640, 0),
        device("/dev/conformance/zero", 5, 0o600, 1000),
    ];
    set(spec, "/linux/devices", json!(devices))?;
    probe(spec, &["/dev/conformance-null", "/dev/conformance/zero"])
}

fn verify_devices(checks: &mut Checks, _: &Value, _: &Context) {
    for (path, rdev, mode, owner) in [
        ("/dev/conformance-null", "1:3", "0640", 0),
        ("/dev/conformance/zero", "1:5", "0600", 1000),
    ] {
        checks.probed(path, "/type", "char");
        checks.probed(path, "/rdev", rdev);
        checks.probed(path, "/mode", mode);
        checks.probed(path, "/uid", owner);
        checks.probed(path, "/gid", owner);
    }
}

fn configure_tmpfs(spec: &mut Value, _: &Context) -> Result<()> {
    let mount = json!({
        "destination": "/data",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=700", "size=1m"],
    });
    push(spec, "/mounts", [mount])?;
    probe(spec, &["/data"])
}

/// /data may or may not exist in the rootfs (the runtime creates it on first use), so the mode
/// of the tmpfs root itself is checked by `tmpfs-mode-over-directory`.
fn verify_tmpfs(checks: &mut Checks, _: &Value, _: &Context) {
    let options = ["rw", "nosuid", "nodev", "noexec", "mode=700", "size=1024k"];
    checks.mounted("/data", "tmpfs", &options);
    checks.probed("/data", "/type", "dir");
}

/// mkrootfs.sh makes /home with mode 0755; the tmpfs mounted over it has the mode its options
/// ask for (runc before 1.1.8 copied the directory's mode over it: runc issue #3911).
fn configure_tmpfs_over_directory(spec: &mut Value, _: &Context) -> Result<()> {
    let mount = json!({
        "destination": "/home",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["mode=1770"],
    });
    push(spec, "/mounts", [mount])?;
    probe(spec, &["/home"])
}

fn verify_tmpfs_over_directory(checks: &mut Checks, _: &Value, _: &Context) {
    checks.mounted("/home", "tmpfs", &["mode=1770"]);
    checks.probed("/home", "/mode", "1770");
}

/// `tmpcopyup` over /etc: the tmpfs holds the image's files and keeps the directory's mode.
fn configure_tmpfs_copyup(spec: &mut Value, _: &Context) -> Result<()> {
    let mount = json!({
        "destination": "/etc",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "tmpcopyup"],
    });
    push(spec, "/mounts", [mount])?;
    probe(spec, &["/etc", "/etc/passwd"])
}

/// /etc/passwd as bundles/mkrootfs.sh writes it.
const ROOTFS_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                             daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

fn verify_tmpfs_copyup(checks: &mut Checks, _: &Value, _: &Context) {
    checks.mounted("/etc", "tmpfs", &["nosuid", "nodev"]);
    checks.probed("/etc", "/mode", "0755");
    checks.probed("/etc/passwd", "/read/content", ROOTFS_PASSWD);
}

const BIND_CONTENT: &str = "written on the host\n";

fn configure_binds(spec: &mut Value, context: &Context) -> Result<()> {
    let (ro, rw) = (context.scratch.join("ro"), context.scratch.join("rw"));
    fs::create_dir(&ro)?;
    fs::create_dir(&rw)?;
    fs::write(ro.join("file"), BIND_CONTENT)?;
    fs::write(rw.join("file"), BIND_CONTENT)?;
    let bind = |destination: &str, source: &Path, access: &str| {
        json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", access],
        })
    };
    let mounts = [bind("/mnt/ro", &ro, "ro"), bind("/mnt/rw", &rw, "rw")];
    push(spec, "/mounts", mounts)?;
    probe(spec, &["/mnt/ro/file", "/mnt/rw/file"])
}

fn verify_binds(checks: &mut Checks, _: &Value, _: &Context) {
    checks.mount_options("/mnt/ro", &["ro"]);
    checks.mount_options("/mnt/rw", &["rw"]);
    for path in ["/mnt/ro/file", "/mnt/rw/file"] {
        checks.probed(path, "/read/content", BIND_CONTENT);
    }
    checks.probed("/mnt/ro/file", "/write_access", "EROFS");
    checks.probed("/mnt/rw/file", "/write_access", "ok");
}

fn configure_cgroup_mount(spec: &mut Value, _: &Context) -> Result<()> {
    let mount = json!({
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
    });
    push(spec, "/mounts", [mount])
}

/// On a cgroup v2 host the container gets cgroup2 at /sys/fs/cgroup; on a v1 or hybrid host
/// it gets each v1 hierarchy the host has, at the same place (as runc does).
fn verify_cgroup_mount(checks: &mut Checks, _: &Value, context: &Context) {
    let host_mounts = context.host.mounts();
    let is_v2 = host_mounts
        .iter()
        .any(|mount| mount["destination"] == "/sys/fs/cgroup" && mount["fstype"] == "cgroup2");
    if is_v2 {
        return checks.mounted(
            "/sys/fs/cgroup",
            "cgroup2",
            &["ro", "nosuid", "noexec", "nodev"],
        );
    }
    let hierarchies = host_mounts
        .iter()
        .filter(|mount| mount["fstype"] == "cgroup")
        .filter_map(|mount| mount["destination"].as_str())
        .filter(|destination| Path::new(destination).parent() == Some(Path::new("/sys/fs/cgroup")));
    let mut any = false;
    for destination in hierarchies {
        any = true;
        checks.mounted(destination, "cgroup", &["ro", "nosuid", "noexec", "nodev"]);
    }
    if !any {
        checks.fail(
            "host cgroup mounts",
            "cgroup2 at /sys/fs/cgroup or v1 hierarchies under it",
            "neither",
        );
    }
}

/// Paths to mask, including some a kernel may not have (the runtime must skip those).
const MASKED_FILES: [&str; 3] = ["/proc/kcore", "/proc/keys", "/proc/timer_list"];
const MASKED_DIRS: [&str; 1] = ["/proc/acpi"];

fn configure_masked(spec: &mut Value, _: &Context) -> Result<()> {
    let paths: Vec<&str> = MASKED_FILES.iter().chain(&MASKED_DIRS).copied().collect();
    set(spec, "/linux/maskedPaths", json!(paths))?;
    probe(spec, &paths)
}

/// A masked file reads as /dev/null (or cannot be read); a masked directory is empty (or cannot
/// be read).
fn verify_masked(checks: &mut Checks, _: &Value, _: &Context) {
    for path in MASKED_FILES
        .into_iter()
        .filter(|path| Path::new(path).exists())
    {
        let probe = checks.probe(path).clone();
        let unreadable = probe.get("error").is_some() || probe["read"].get("error").is_some();
        let null_device =
            probe["type"] == "char" && probe["rdev"] == "1:3" && probe["read"]["content"] == "";
        if !unreadable && !null_device {
            checks.fail(
                &format!("masked {path}"),
                "a /dev/null bind (char 1:3) or unreadable",
                probe,
            );
        }
    }
    for path in MASKED_DIRS
        .into_iter()
        .filter(|path| Path::new(path).exists())
    {
        let probe = checks.probe(path).clone();
        let unreadable = probe.get("error").is_some() || probe["read"].get("error").is_some();
        if !unreadable && probe["read"]["entries"] != json!([]) {
            checks.fail(
                &format!("masked {path}"),
                "an empty or unreadable directory",
                probe,
            );
        }
    }
}

fn configure_readonly(spec: &mut Value, _: &Context) -> Result<()> {
    set(
        spec,
        "/linux/readonlyPaths",
        json!(["/proc/sys", "/proc/sysrq-trigger", "/proc/bus"]),
    )?;
    probe(spec, &["/proc/sys/kernel/hostname"])
}

fn verify_readonly(checks: &mut Checks, _: &Value, _: &Context) {
    checks.mounted("/proc/sys", "proc", &["ro"]);
    checks.probed("/proc/sys/kernel/hostname", "/write_access", "EROFS");
}

// ---- namespaces and cgroups ----

/// Namespace types in the config and the names of their /proc/self/ns links.
const NAMESPACE_LINKS: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

fn configure_host_network(spec: &mut Value, _: &Context) -> Result<()> {
    remove_namespace(spec, "network")
}

/// A type in the config gets a namespace of its own; any other stays the runtime's (the host's).
fn verify_namespaces(checks: &mut Checks, spec: &Value, context: &Context) {
    let configured = |kind: &str| {
        spec["linux"]["namespaces"]
            .as_array()
            .is_some_and(|namespaces| namespaces.iter().any(|namespace| namespace["type"] == kind))
    };
    for (kind, link) in NAMESPACE_LINKS {
        let Some(host) = context.host.namespace(link) else {
            continue;
        };
        let seen = checks.fact(&format!("/namespaces/{link}")).clone();
        let fact = format!("{kind} namespace");
        if configured(kind) && seen == host {
            checks.fail(&fact, format!("a new one, not the host's {host}"), seen);
        } else if !configured(kind) && seen != host {
            checks.fail(
                &fact,
                format!("the host's {host} (not in the config)"),
                seen,
            );
        }
    }
}

/// The cgroup path of each /proc/self/cgroup line (`hierarchy-id:controllers:path`).
fn cgroup_paths(checks: &Checks) -> Vec<(String, String)> {
    let lines = checks
        .fact("/cgroup")
        .as_array()
        .cloned()
        .unwrap_or_default();
    lines
        .iter()
        .filter_map(Value::as_str)
        .map(|line| {
            let mut fields = line.splitn(3, ':');
            let hierarchy = format!(
                "{}:{}",
                fields.next().unwrap_or(""),
                fields.next().unwrap_or("")
            );
            (hierarchy, fields.next().unwrap_or("").to_string())
        })
        .collect()
}

/// Every hierarchy's path is the given one (the container's cgroup, in every hierarchy).
fn verify_cgroup_paths(checks: &mut Checks, expected: &str) {
    let paths = cgroup_paths(checks);
    if paths.is_empty() {
        checks.fail(
            "cgroup",
            "/proc/self/cgroup lines",
            checks.fact("/cgroup").clone(),
        );
    }
    for (hierarchy, path) in paths {
        if path != expected {
            checks.fail(&format!("cgroup {hierarchy}"), json!(expected), json!(path));
        }
    }
}

/// In a new cgroup namespace the container's own cgroup is the root ("0::/" on v2).
fn verify_cgroup_ns(checks: &mut Checks, _: &Value, _: &Context) {
    verify_cgroup_paths(checks, "/");
}

fn configure_cgroups_path(spec: &mut Value, context: &Context) -> Result<()> {
    remove_namespace(spec, "cgroup")?;
    set(spec, "/linux/cgroupsPath", format!("/{}", context.id))
}

fn verify_cgroups_path(checks: &mut Checks, spec: &Value, _: &Context) {
    verify_cgroup_paths(checks, spec["linux"]["cgroupsPath"].as_str().unwrap_or("?"));
}
