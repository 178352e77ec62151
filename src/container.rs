//! Operations on an existing container, shared by the commands: load, status, signal, wait, destroy, and the OCI
//! state document.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::Serialize;

use crate::hooks::{self, Kind};
use crate::logger;
use crate::oci::SpecState;
use crate::state::{self, ContainerError, Root, State, Status};
use crate::sys;

pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

/// The OCI state document in runc's field order (`annotations` before `owner`).
#[derive(Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a std::path::Path,
    pub rootfs: &'a std::path::Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: &'a std::collections::BTreeMap<String, String>,
    pub owner: String,
}

impl Container {
    pub fn load(root: &Root, id: &str) -> Result<Container> {
        state::validate_id(id)?;
        let dir = root.container_dir(id);
        let state = State::load(&dir)?;
        Ok(Container { dir, state })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn status(&self) -> Status {
        self.state.status(&self.dir)
    }

    /// The OCI state; `owner` is empty as in `runc state`, filled by `list`.
    pub fn oci_state(&self, status: Status, owner: String) -> OciState<'_> {
        OciState {
            oci_version: &self.state.oci_version,
            id: &self.state.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.state.init_pid
            },
            status: status.as_str(),
            bundle: &self.state.bundle,
            rootfs: &self.state.rootfs,
            created: &self.state.created,
            annotations: &self.state.annotations,
            owner,
        }
    }

    pub fn owner(&self) -> String {
        fs::metadata(&self.dir)
            .map(|m| state::owner_name(m.uid()))
            .unwrap_or_default()
    }

    /// Signal the init, through a pidfd taken only after checking that the pid still names the same process.
    pub fn signal_init(&self, sig: i32) -> Result<()> {
        let pid = Pid::from_raw(self.state.init_pid);
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(Errno::ESRCH) => bail!(ContainerError::NotRunning),
            Err(e) => return Err(e).with_context(|| format!("pidfd_open {pid}")),
        };
        if self.status() == Status::Stopped {
            bail!(ContainerError::NotRunning);
        }
        match sys::pidfd_send_signal(pidfd.as_fd(), sig) {
            // It exited (and was reaped) since the check above.
            Err(Errno::ESRCH) => bail!(ContainerError::NotRunning),
            other => other.with_context(|| format!("unable to signal init {pid}")),
        }
    }

    /// Signal every process in the container's cgroup.
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        let signal = Signal::try_from(sig).with_context(|| format!("invalid signal {sig}"))?;
        self.state
            .cgroup
            .signal_all(signal)
            .context("unable to signal all processes")
    }

    /// Poll until the init is gone, for up to about 10 s as runc does, starting with short intervals: a killed init
    /// is usually gone within a millisecond or two.
    pub fn wait_stopped(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut pause = Duration::from_millis(1);
        while self.status() != Status::Stopped {
            if Instant::now() >= deadline {
                bail!("container init still running");
            }
            sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        Ok(())
    }

    /// SIGKILL the container and wait for the init to go: with a pid namespace of its own, its init (the kernel
    /// kills the rest of the namespace), else every process in its cgroup (runc's `Signal(SIGKILL)`). A process that
    /// was put into the cgroup from outside the container's pid namespace is not the container's and lives on. A
    /// paused container is thawed after the signals, since a process frozen by the v1 freezer cannot die (runc thaws
    /// for SIGKILL too).
    pub fn kill_all(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Stopped {
            match self.signal_init(libc::SIGKILL) {
                Ok(()) => {}
                Err(e) if e.downcast_ref() == Some(&ContainerError::NotRunning) => {}
                Err(e) => return Err(e),
            }
        }
        if !self.state.private_pid_ns {
            self.signal_all(libc::SIGKILL)?;
        }
        if status == Status::Paused {
            self.state.cgroup.set_frozen(false)?;
        }
        self.wait_stopped()
    }

    /// Remove what `create` made: leftover processes, the cgroup, the mounts in hull's mount namespace (when the
    /// container has none of its own), the resctrl group, the state directory (CRIU's root first, when a restore was
    /// killed before it took it away); then run the poststop hooks (failures are warnings, as
    /// the runtime spec wants; the container is gone either way).
    pub fn destroy(&self) -> Result<()> {
        if !self.state.private_pid_ns {
            self.signal_all(libc::SIGKILL)?;
        }
        if self.state.init_pid == 0 {
            self.state.cgroup.destroy_unfinished()?;
        } else {
            self.state.cgroup.destroy()?;
        }
        if let Some(mounts) = &self.state.host_mounts {
            mounts.remove()?;
        }
        if let Some(rdt) = &self.state.intel_rdt {
            rdt.group.destroy()?;
        }
        state::detach_leftover_root(&self.dir)?;
        state::remove_dir(&self.dir)?;
        let state = SpecState {
            pid: 0,
            ..self.state.spec_state("stopped")
        };
        hooks::run_warning(
            Kind::Poststop,
            self.state.hooks.as_ref(),
            state,
            Some(&self.state.bundle),
        );
        Ok(())
    }

    /// Run the poststart hooks once the program runs. The first failure stops them and the container, and is the
    /// error (runtime-spec 1.3, runc 1.5's `postStart`); the container is left stopped for `delete`.
    pub fn run_poststart_hooks(&self) -> Result<()> {
        let ran = hooks::run(
            Kind::Poststart,
            self.state.hooks.as_ref(),
            self.state.spec_state("running"),
            Some(&self.state.bundle),
        );
        if ran.is_err() {
            if let Err(e) = self.kill_all() {
                logger::log(
                    logger::Level::Warning,
                    &format!("kill after failed poststart: {e:#}"),
                );
            }
        }
        ran
    }
}
