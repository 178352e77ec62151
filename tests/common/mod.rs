//! Shared helpers for the kernel integration tests: each test gets its own `--root`, a unique container id, a bundle
//! whose config starts from runc's default (terminal off), and commands run with a timeout. Tests that cannot run
//! here print `SKIP <name>: <reason>` and return.

#![allow(dead_code)]

pub mod console;
pub mod loop_device;

use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const HULL: &str = env!("CARGO_BIN_EXE_hull");

/// Whether the tests run hull with the systemd cgroup driver: `HULL_TEST_CGROUP_DRIVER=systemd` (make test-host runs
/// every kernel test a second time so in its systemd guest). Every hull command then gets `--systemd-cgroup`, and a
/// container's cgroup is its `hull-<id>.scope` under system.slice.
pub fn systemd_driver() -> bool {
    std::env::var("HULL_TEST_CGROUP_DRIVER").is_ok_and(|d| d == "systemd")
}

/// A command running hull, with `--systemd-cgroup` under the systemd driver (see [`systemd_driver`]).
pub fn hull_command() -> Command {
    let mut cmd = Command::new(HULL);
    if systemd_driver() {
        cmd.arg("--systemd-cgroup");
    }
    cmd
}

/// Return from a test that sets a cgroupfs `linux.cgroupsPath` (a directory path) when the tests run with the
/// systemd driver, which takes only `slice:prefix:name`.
#[macro_export]
macro_rules! require_cgroupfs_driver {
    ($name:expr) => {
        if common::systemd_driver() {
            skip!("{}: its cgroupsPath is a cgroupfs path (the systemd driver's are tested in tests/systemd.rs)", $name);
        }
    };
}

/// The busybox rootfs the Makefile assembles (`make rootfs`), or `$HULL_TEST_ROOTFS`.
pub fn rootfs() -> PathBuf {
    let path = std::env::var_os("HULL_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("build/rootfs"));
    assert!(
        path.join("bin/busybox").exists(),
        "the test rootfs {} is missing: run `make rootfs` (or set HULL_TEST_ROOTFS)",
        path.display()
    );
    path
}

/// Return from the test, printing `SKIP <reason>` on the process's stderr: libtest captures `println!` of a passing
/// test, and a skip must stay visible in `make test`'s output.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIP {}", format_args!($($reason)*));
        return;
    }};
}

/// Skip unless running as root.
#[macro_export]
macro_rules! require_root {
    ($name:expr) => {
        if !nix::unistd::geteuid().is_root() {
            skip!("{}: needs root", $name);
        }
    };
}

pub fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// runc's default spec with `terminal: false`, an absolute shared read-only rootfs and the given args.
pub fn base_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs(), "readonly": true},
        "hostname": "hull",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                           {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A bundle directory and a private `--root` for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub id: String,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A one-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {}, stdout {:?}, stderr {:?}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Env {
    pub fn new(prefix: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("hull-test-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir(dir.path().join("bundle")).unwrap();
        Env {
            dir,
            id: unique_id(prefix),
        }
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn write_config(&self, config: &Value) {
        fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    /// Give this bundle a private, writable copy of the rootfs (for tests that write into it).
    pub fn private_rootfs(&self, config: &mut Value) -> PathBuf {
        let copy = self.bundle().join("rootfs");
        let status = Command::new("cp")
            .arg("-a")
            .arg(rootfs())
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "copy rootfs");
        config["root"] = json!({"path": "rootfs", "readonly": false});
        copy
    }

    pub fn hull(&self, args: &[&str]) -> Run {
        self.hull_with(args, Duration::from_secs(30), |_| {})
    }

    /// Run hull with this env's `--root` and a timeout; `setup` may adjust the command (stdin, fds, env).
    pub fn hull_with(
        &self,
        args: &[&str],
        timeout: Duration,
        setup: impl FnOnce(&mut Command),
    ) -> Run {
        let mut cmd = hull_command();
        cmd.arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.bundle());
        cmd.stdin(Stdio::null());
        setup(&mut cmd);
        run_with_timeout(cmd, timeout)
    }

    /// `hull run` of a config, returning the container's result.
    pub fn run(&self, config: &Value) -> Run {
        self.write_config(config);
        let id = self.id.clone();
        self.hull(&["run", "--bundle", self.bundle().to_str().unwrap(), &id])
    }

    /// Poll `state` until the container's status is `want`; fail saying what it still was after `within`.
    pub fn wait_for_status(&self, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.state()["status"].as_str().unwrap_or("").to_owned();
            if status == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: expected status {want}, still {status} after {within:?}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the container's init catches `signal` (its bit in `SigCgt` of /proc/<pid>/status). A pid 1
    /// drops a default-action signal, so a test that signals a shell's `trap` must wait for the trap to exist.
    pub fn wait_for_handler(&self, signal: i32, within: Duration) {
        let pid = self.state()["pid"].as_i64().expect("state has a pid");
        let deadline = Instant::now() + within;
        loop {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let caught = status
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .unwrap_or(0);
            if caught & (1 << (signal - 1)) != 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: init {pid} does not catch signal {signal} after {within:?} (SigCgt {caught:#x})",
                self.id
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn state(&self) -> Value {
        let r = self.hull(&["state", &self.id]);
        assert_eq!(r.code, 0, "state {}: {}", self.id, r.describe());
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}): {:?}", r.stdout))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = hull_command()
            .arg("--root")
            .arg(self.root())
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Run `cmd`, capturing stdout and stderr (unless `cmd` already redirects them) into files rather than pipes: a
/// detached container keeps hull's stdio open, so a pipe would not reach EOF when hull exits.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Run {
    let mut out = tempfile::tempfile().expect("stdout file");
    let mut err = tempfile::tempfile().expect("stderr file");
    cmd.stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut child = cmd.spawn().expect("spawn hull");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{:?} did not finish within {:?}", cmd, timeout);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    out.rewind().unwrap();
    out.read_to_string(&mut stdout).unwrap();
    err.rewind().unwrap();
    err.read_to_string(&mut stderr).unwrap();
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Run {
        code,
        stdout,
        stderr,
    }
}

/// Host uid/gid that container root maps to in [`add_user_namespace`].
pub const USERNS_HOST_ID: u32 = 100000;

/// Give `config` a new user namespace mapping container ids 0..65536 to host ids from [`USERNS_HOST_ID`].
pub fn add_user_namespace(config: &mut Value) {
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": USERNS_HOST_ID, "size": 65536}]);
    config["linux"]["uidMappings"] = map.clone();
    config["linux"]["gidMappings"] = map;
}

/// Give the child of `cmd` the open fds `from` at the numbers `to`, inherited across exec (what a caller of
/// `--preserve-fds` does).
pub fn pass_fds(cmd: &mut Command, fds: Vec<(i32, i32)>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl between fork and exec touch only the child's descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            for &(from, to) in &fds {
                if from != to {
                    libc::dup2(from, to);
                }
                // dup2 onto itself keeps the close-on-exec flag, so clear it explicitly.
                libc::fcntl(to, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
}

/// Nothing of the env's container remains: state directory, cgroup, host mount, process.
pub fn assert_leaves_nothing(env: &Env) {
    assert!(
        !env.root().join(&env.id).exists(),
        "no state directory may remain for {}",
        env.id
    );
    assert_eq!(
        cgroup_dirs_named(&env.id),
        Vec::<PathBuf>::new(),
        "no cgroup may remain"
    );
    assert_eq!(
        systemd_units_named(&env.id),
        Vec::<String>::new(),
        "no systemd unit may remain"
    );
    let bundle = env.bundle().to_string_lossy().into_owned();
    assert_eq!(
        host_mounts_mentioning(&bundle),
        Vec::<String>::new(),
        "no host mount may remain"
    );
    assert_eq!(
        processes_mentioning(&env.id),
        Vec::<String>::new(),
        "no process may remain"
    );
}

/// Every cgroup directory (in any hierarchy) whose path ends with `/<id>`, or is a systemd scope of it
/// (`/<prefix>-<id>.scope`).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let scope = format!("-{id}.scope");
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let path = entry.path();
                if path
                    .file_name()
                    .is_some_and(|n| n == id || n.to_string_lossy().ends_with(&scope))
                {
                    found.push(path.clone());
                }
                stack.push(path);
            }
        }
    }
    found
}

/// The systemd units (any state, a failed one included) whose name has `-<id>.`, on a host booted with systemd.
pub fn systemd_units_named(id: &str) -> Vec<String> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Vec::new();
    }
    let out = Command::new("systemctl")
        .args(["list-units", "--all", "--plain", "--no-legend", "--full"])
        .output()
        .expect("run systemctl list-units");
    let needle = format!("-{id}.");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|unit| unit.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Host mounts that mention `needle` (a leaked mount from a failed create would).
pub fn host_mounts_mentioning(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid == std::process::id().to_string() {
            continue;
        }
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{pid}: {text}"));
            }
        }
    }
    found
}

/// This host's cgroup mounts from the mount table: `(mountpoint, v2, super options)`. Directory names prove nothing:
/// `/sys/fs/cgroup/hugetlb` may be a plain directory some cgroupfs manager made in the cgroup2 root.
fn cgroup_mounts() -> Vec<(PathBuf, bool, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut fields = right.split_whitespace();
            let fstype = fields.next()?;
            let options = fields.nth(1).unwrap_or_default().to_owned();
            let mountpoint = PathBuf::from(left.split_whitespace().nth(4)?);
            match fstype {
                "cgroup" => Some((mountpoint, false, options)),
                "cgroup2" => Some((mountpoint, true, options)),
                _ => None,
            }
        })
        .collect()
}

/// True on a pure cgroup v2 host: a cgroup2 mount and no v1 hierarchy.
pub fn unified() -> bool {
    let mounts = cgroup_mounts();
    mounts.iter().any(|m| m.1) && mounts.iter().all(|m| m.1)
}

/// Whether a cgroup v1 hierarchy is mounted with `controller`.
pub fn v1_mounted(controller: &str) -> bool {
    cgroup_mounts()
        .iter()
        .any(|(_, v2, options)| !v2 && options.split(',').any(|o| o == controller))
}

/// Where the hierarchy that has `controller` is mounted: the v1 hierarchy mounted with it, else the cgroup2
/// hierarchy when its root lists it.
pub fn controller_mount(controller: &str) -> Option<PathBuf> {
    let mounts = cgroup_mounts();
    if let Some((path, _, _)) = mounts
        .iter()
        .find(|(_, v2, options)| !v2 && options.split(',').any(|o| o == controller))
    {
        return Some(path.clone());
    }
    let v2 = mounts.into_iter().find(|m| m.1)?.0;
    fs::read_to_string(v2.join("cgroup.controllers"))
        .ok()?
        .split_whitespace()
        .any(|c| c == controller)
        .then_some(v2)
}

/// The container's directory in the hierarchy that has `controller`.
pub fn dir_for(id: &str, controller: &str) -> PathBuf {
    let mount = controller_mount(controller)
        .unwrap_or_else(|| panic!("no cgroup hierarchy has the {controller} controller"));
    cgroup_dirs_named(id)
        .into_iter()
        .find(|d| d.starts_with(&mount))
        .unwrap_or_else(|| panic!("no {controller} cgroup for {id} under {}", mount.display()))
}

/// A cgroup file's content, trimmed.
pub fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_owned()
}

/// Whether this host has AppArmor enabled (hull's own check): the v2 VM's Debian kernel does, this host does not.
pub fn host_has_apparmor() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.starts_with('Y'))
}

/// Where this host mounts its cgroup2 hierarchy, read from the mount table (not guessed from directory names).
pub fn cgroup2_mount() -> Option<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mountpoint = left.split_whitespace().nth(4)?;
            (right.split_whitespace().next() == Some("cgroup2")).then(|| PathBuf::from(mountpoint))
        })
}

/// A host cgroup at the root of the cgroup2 hierarchy holding one sleeping host process: what an escape from the
/// container must not reach (writing its `cgroup.kill` kills the process). Removed on drop.
pub struct Canary {
    pub name: String,
    pub dir: PathBuf,
    child: std::process::Child,
}

impl Canary {
    pub fn new(prefix: &str) -> Option<Canary> {
        let name = unique_id(prefix);
        let dir = cgroup2_mount()?.join(&name);
        fs::create_dir(&dir).ok()?;
        let child = Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep");
        fs::write(dir.join("cgroup.procs"), child.id().to_string())
            .unwrap_or_else(|e| panic!("move the canary into {}: {e}", dir.display()));
        Some(Canary { name, dir, child })
    }

    /// Whether the canary process is still alive (not killed through the cgroup).
    pub fn alive(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("wait for the canary")
            .is_none()
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir(&self.dir);
    }
}
