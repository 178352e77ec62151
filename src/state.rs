//! The state directory `<root>/<id>/`: `state.json` (written atomically), `exec.fifo` (present while the container is
//! created and not yet started), and a lock on the directory itself. Status is derived from the kernel every time, never
//! trusted from disk: the init alive with the recorded start time is paused when its cgroup is frozen, else created while the exec fifo exists, else running;
//! otherwise stopped. The start time defeats PID reuse.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::hostmounts::HostMounts;
use crate::oci::SpecState;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// runc's sentinel texts; callers (containerd, podman) match on them.
pub const ERR_EXIST: &str = "container with given ID already exists";
pub const ERR_INVALID_ID: &str = "invalid container ID format";

/// The failures a command tells apart by kind, with `downcast_ref` (their messages are runc's sentinel texts too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerError {
    /// No state directory for the id, or no record in it.
    NotExist,
    /// The init has exited.
    NotRunning,
}

impl std::fmt::Display for ContainerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerError::NotExist => "container does not exist",
            ContainerError::NotRunning => "container not running",
        })
    }
}

impl std::error::Error for ContainerError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub init_pid: i32,
    /// Field 22 of `/proc/<pid>/stat` of the init when it was created.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub cgroup: Cgroup,
    /// Whether the container has a pid namespace of its own (if not, killing the init does not kill the rest).
    pub private_pid_ns: bool,
    /// `linux.seccomp` as it was at create: `exec` loads it into every new process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// `hooks` as they were at create: `start` runs startContainer's wait and poststart, `delete` poststop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// `linux.personality` as it was at create: `exec` sets it in every new process, as runc does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// `process.execCPUAffinity` as it was at create: the affinity of an exec'd process whose own says none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_cpu_affinity: Option<oci_spec::runtime::ExecCPUAffinity>,
    /// `linux.memoryPolicy` as it was at create: `exec` sets it in every new process, as runc does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
    /// Without a mount namespace of its own, where the container's mounts sit in hull's: `delete` detaches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_mounts: Option<HostMounts>,
    /// `linux.intelRdt` and the container's resctrl groups: `exec` adds its processes, `update` rewrites the schemas,
    /// `delete` removes what was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<crate::resctrl::Assignment>,
}

/// CRIU's root in the state directory during a restore (`criu::restore`).
pub const CRIU_ROOT: &str = "criu-root";

/// What a restore killed before its end leaves in the state directory: CRIU's root, still a bind of the rootfs. It is
/// detached before the directory is removed, which would otherwise go down into the rootfs and empty it.
pub fn detach_leftover_root(dir: &Path) -> Result<()> {
    let path = dir.join(CRIU_ROOT);
    if !path.exists() {
        return Ok(());
    }
    loop {
        match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("detach {}", path.display())),
        }
    }
}

/// A container id as runc accepts it: `[A-Za-z0-9_+.-]+`, and not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let valid_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if id.is_empty() || id == "." || id == ".." || !valid_chars {
        bail!("{ERR_INVALID_ID}: {id:?}");
    }
    Ok(())
}

/// `<root>` holding every container's directory.
pub struct Root {
    pub path: PathBuf,
}

impl Root {
    pub fn new(path: PathBuf) -> Root {
        Root { path }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Make `<root>` (0700) if missing.
    pub fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .with_context(|| format!("create state root {}", self.path.display()))
    }

    /// Create `<root>/<id>` for a new container and lock it; fails with runc's sentinel if it exists.
    pub fn create_container_dir(&self, id: &str) -> Result<Lock> {
        self.ensure()?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Lock::acquire(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(anyhow!(ERR_EXIST)),
            Err(e) => Err(e).with_context(|| format!("create state directory {}", dir.display())),
        }
    }

    /// Every container id under `<root>`, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("read state root {}", self.path.display()))
            }
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("read state root {}", self.path.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if let Some(name) = entry.file_name().to_str() {
                    ids.push(name.to_owned());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// An exclusive `flock` on a container's directory, held until dropped; serialises commands on one id.
pub struct Lock {
    dir: File,
}

impl AsRawFd for Lock {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.dir.as_raw_fd()
    }
}

impl Lock {
    /// Lock `dir`; a directory that is gone (removed by a concurrent `delete`) is runc's "container does not exist".
    pub fn acquire(dir: &Path) -> Result<Lock> {
        let file = match File::open(dir) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(ContainerError::NotExist),
            Err(e) => {
                return Err(e).with_context(|| format!("open state directory {}", dir.display()))
            }
        };
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let ret = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            match Errno::result(ret) {
                Ok(_) => return Ok(Lock { dir: file }),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("lock state directory {}", dir.display()))
                }
            }
        }
    }
}

impl State {
    /// Read `<dir>/state.json`; a missing file or directory is runc's "container does not exist".
    pub fn load(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(ContainerError::NotExist),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        // Empty: a `create` killed between making the file and writing it, before it made anything else.
        if bytes.is_empty() {
            bail!(ContainerError::NotExist);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
    }

    /// What `create` is about to make, written to `<dir>/state.json` before it makes it (the file must not exist;
    /// one create and one write, so a killed `create` leaves the record whole or empty). `delete` of a container
    /// whose `create` never finished finds its cgroup there; the init's pid 0 makes its status stopped.
    pub fn save_intent(
        dir: &Path,
        id: &str,
        bundle: &Path,
        cgroup: &Cgroup,
        host_mounts: Option<&HostMounts>,
        intel_rdt: Option<&crate::resctrl::Assignment>,
    ) -> Result<()> {
        let intent = State {
            oci_version: String::new(),
            id: id.to_owned(),
            init_pid: 0,
            init_start_time: 0,
            bundle: bundle.to_owned(),
            rootfs: PathBuf::new(),
            created: String::new(),
            annotations: BTreeMap::new(),
            cgroup: cgroup.clone(),
            // Whatever is in the cgroup is killed by `delete`: the init's pid is not known yet.
            private_pid_ns: false,
            seccomp: None,
            hooks: None,
            personality: None,
            exec_cpu_affinity: None,
            memory_policy: None,
            host_mounts: host_mounts.cloned(),
            intel_rdt: intel_rdt.cloned(),
        };
        let bytes = serde_json::to_vec(&intent).context("encode state")?;
        let path = dir.join(STATE_FILE);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        file.write_all(&bytes)
            .with_context(|| format!("write {}", path.display()))
    }

    /// The record of a container whose init is `init_pid`, now (made by `create`, or by `restore`): what the later
    /// commands keep from the bundle's config. `host_mounts` and `intel_rdt` are the caller's to fill in.
    pub fn of_new_container(
        id: &str,
        bundle: &crate::spec::Bundle,
        cgroup: &Cgroup,
        private_pid_ns: bool,
        init_pid: i32,
        init_start_time: u64,
    ) -> State {
        let spec = &bundle.spec;
        let linux = spec.linux().as_ref();
        State {
            oci_version: crate::oci::OCI_VERSION.to_owned(),
            id: id.to_owned(),
            init_pid,
            init_start_time,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: crate::timefmt::rfc3339_nano(std::time::SystemTime::now()),
            annotations: bundle.annotations(),
            cgroup: cgroup.clone(),
            private_pid_ns,
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            hooks: spec.hooks().clone(),
            personality: linux.and_then(|l| l.personality().clone()),
            exec_cpu_affinity: spec
                .process()
                .as_ref()
                .and_then(|p| p.exec_cpu_affinity().clone()),
            memory_policy: linux.and_then(|l| l.memory_policy().clone()),
            host_mounts: None,
            intel_rdt: None,
        }
    }

    /// Write `<dir>/state.json` atomically (temporary file + rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).context("encode state")?;
        write_atomic(&dir.join(STATE_FILE), &bytes, 0o600)
    }

    /// The status, derived from the kernel (see the module comment).
    /// The state a hook or seccomp agent is told about, with `status`.
    pub fn spec_state<'a>(&'a self, status: &'a str) -> SpecState<'a> {
        SpecState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid: self.init_pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }

    pub fn status(&self, dir: &Path) -> Status {
        match proc_stat(self.init_pid) {
            Some(stat) if stat.start_time == self.init_start_time && !stat.is_dead() => {
                if self.cgroup.is_frozen().unwrap_or(false) {
                    Status::Paused
                } else if dir.join(EXEC_FIFO).exists() {
                    Status::Created
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }
}

/// Remove a container's state directory; one that a concurrent `delete` removed first is gone all the same.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove state directory {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Write `path` by writing `.<name>` beside it then renaming (runc's pid-file and state-file discipline). No sync:
/// the state is meaningless after a reboot, and runc does not sync it either.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}", name.to_string_lossy()));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("write {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// The two fields of `/proc/<pid>/stat` that tell whether a recorded process is still the same and alive.
#[derive(Debug, PartialEq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

impl ProcStat {
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse `/proc/<pid>/stat` text: the command name may contain spaces and parentheses, so split after the last ')'.
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state come fields 4..; starttime is field 22, i.e. the 19th after the state.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    parse_proc_stat(&crate::sys::read_proc_file(format!("/proc/{pid}/stat")).ok()?)
}

/// The owner of a state directory as `list` prints it: a user name from the host's /etc/passwd, else `#<uid>`.
pub fn owner_name(uid: u32) -> String {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    crate::credentials::passwd_name(&passwd, uid).map_or_else(|| format!("#{uid}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_container_is_told_by_kind_with_runcs_text() {
        let dir = tempfile::tempdir().unwrap();
        for err in [
            Lock::acquire(&dir.path().join("gone"))
                .map(drop)
                .unwrap_err(),
            State::load(dir.path()).map(drop).unwrap_err(),
        ] {
            assert_eq!(err.to_string(), "container does not exist");
            assert_eq!(err.downcast_ref(), Some(&ContainerError::NotExist));
        }
        let not_running = anyhow::Error::from(ContainerError::NotRunning);
        assert_eq!(format!("{not_running:#}"), "container not running");
    }

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["c1", "a.b", "A_b+c-d", "...x"] {
            assert!(validate_id(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", "../x"] {
            let err = validate_id(bad).unwrap_err().to_string();
            assert!(err.starts_with(ERR_INVALID_ID), "{bad}: {err}");
        }
    }

    #[test]
    fn proc_stat_handles_odd_command_names() {
        let text = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_proc_stat(text),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn own_process_stat_is_readable_and_alive() {
        let me = proc_stat(std::process::id() as i32).expect("own stat");
        assert!(!me.is_dead());
        assert!(me.start_time > 0);
    }

    #[test]
    fn atomic_write_leaves_only_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("pid");
        write_atomic(&target, b"42", 0o644).unwrap();
        write_atomic(&target, b"43", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "43");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pid"]);
    }

    #[test]
    fn owner_name_falls_back_to_hash_uid() {
        assert_eq!(owner_name(0), "root");
        assert_eq!(owner_name(4_000_000_000), "#4000000000");
    }
}
