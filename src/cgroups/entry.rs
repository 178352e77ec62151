//! How a new process of the container gets into its cgroups: the init's [`Placement`], and the [`Entry`] every new
//! process makes itself (cloned into its cgroup2 directory, or writing "0" to the `tasks` files hull opened).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Cgroup, Hierarchy};

/// Where a container's init goes in the cgroup tree, as `create` made it.
pub struct Placement {
    /// The container's cgroup (`Cgroup::none()` for a rootless container that may not have one).
    pub cgroup: Cgroup,
    /// The host's hierarchies, for a container without a cgroup of its own (see `rootfs::Facts::host_cgroups`).
    pub host_hierarchies: Vec<Hierarchy>,
    /// How the init enters its cgroups (first thing, before it forks or unshares).
    pub entry: Entry,
}

/// How a process new to the container enters its cgroups without anyone migrating it by pid.
///
/// Migrating another process (writing its pid to `cgroup.procs`) write-locks the kernel's global threadgroup
/// rwsem, which first waits for an RCU grace period: 5-15 ms here, the largest single cost of `create`. A
/// single-threaded process moving *itself* through a `tasks` file (writing "0") skips that lock, and on cgroup2
/// the process is cloned straight into its cgroup (`CLONE_INTO_CGROUP`). The files are opened by hull before the
/// clone; the kernel checks the credentials they were opened with, so the move works from inside a new user
/// namespace too.
pub struct Entry {
    /// The cgroup2 directory to clone the process into.
    pub(super) clone_into: Option<(PathBuf, OwnedFd)>,
    /// `tasks` (v1) or `cgroup.procs` (cgroup2 without CLONE_INTO_CGROUP) files the new process writes "0" to.
    pub(super) files: Vec<(PathBuf, OwnedFd)>,
}

impl Entry {
    /// No cgroup to enter: the process stays in hull's own cgroups.
    pub fn outside() -> Entry {
        Entry {
            clone_into: None,
            files: Vec::new(),
        }
    }

    /// The cgroup2 directory for `CLONE_INTO_CGROUP`, if the host has a cgroup2 hierarchy.
    pub fn clone_into(&self) -> Option<(&Path, BorrowedFd<'_>)> {
        self.clone_into
            .as_ref()
            .map(|(path, fd)| (path.as_path(), fd.as_fd()))
    }

    /// For kernels without `CLONE_INTO_CGROUP` (before 5.7): the new process joins the cgroup2 hierarchy by
    /// writing "0" to its `cgroup.procs` instead.
    pub fn without_clone_into(&mut self) -> Result<()> {
        if let Some((path, _)) = self.clone_into.take() {
            self.files.push(open_for_write(&path.join("cgroup.procs"))?);
        }
        Ok(())
    }

    /// In the new (single-threaded) process: move itself into the cgroups not entered by the clone, then close every
    /// fd of this entry. A cgroup directory fd (or a `tasks` file) held by a process that becomes visible inside the
    /// container would let a process there with CAP_SYS_PTRACE open `/proc/<pid>/fd/N/..` and walk the host's
    /// cgroup tree; none may outlive this step.
    pub fn enter(&self) -> Result<()> {
        for (path, fd) in &self.files {
            let written = nix::unistd::write(fd, b"0")
                .with_context(|| format!("join cgroup: write 0 to {}", path.display()))?;
            if written != 1 {
                bail!("join cgroup: short write to {}", path.display());
            }
        }
        for fd in self.raw_fds() {
            crate::sys::close_in_child(fd);
        }
        Ok(())
    }

    /// The fds this entry holds.
    fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        let dir = self.clone_into.as_ref().map(|(_, fd)| fd.as_raw_fd());
        dir.into_iter()
            .chain(self.files.iter().map(|(_, fd)| fd.as_raw_fd()))
    }
}

pub(super) fn open_for_write(path: &Path) -> Result<(PathBuf, OwnedFd)> {
    let file = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    Ok((path.to_owned(), file.into()))
}
