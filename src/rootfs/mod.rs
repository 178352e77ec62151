//! The container's filesystem view, built inside its new mount namespace: root propagation, every `mounts[]` entry,
//! `/dev` (default and configured devices, symlinks, ptmx), `pivot_root` (or `MS_MOVE` + chroot with `--no-pivot`,
//! or a chroot alone in hull's mount namespace when the container has none of its own), then read-only root,
//! `readonlyPaths` and `maskedPaths`.
//!
//! What is done is planned first, as data (`plan`); `Rootfs` performs the plan step by step, each step called by the
//! init in its turn. Every path inside the rootfs is resolved in-root through fds (see `inroot`); mount(2) is always
//! aimed at `/proc/self/fd/N`, never at a re-resolved path string.

mod cgroup;
mod devices;
mod mount;
mod plan;
mod switch;

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use oci_spec::runtime::Spec;

use self::mount::{open_dest, remount_bind};
use self::plan::{MountPlan, Plan, Remount, Switch};
use crate::inroot::{self, fd_path, RESOLVE_NO_SYMLINKS};
use crate::{idmap, mountinfo};

pub use self::plan::{device_paths, Facts};

/// The rootfs at `path` and the plan of its setup.
pub struct Rootfs<'a> {
    path: &'a Path,
    /// The bind mounts hull prepared as host root: the id-mapped ones, and in a user namespace all (see `idmap`).
    idmapped: &'a idmap::Trees,
    plan: Plan,
}

impl<'a> Rootfs<'a> {
    /// Plans the setup of the rootfs at `path` for `spec`.
    pub fn new(spec: &Spec, path: &'a Path, idmapped: &'a idmap::Trees, facts: &Facts) -> Self {
        let mount_count = spec.mounts().as_ref().map_or(0, Vec::len);
        let prepared_trees: Vec<usize> = (0..mount_count)
            .filter(|&index| idmapped.get(index).is_some())
            .collect();
        Rootfs {
            path,
            idmapped,
            plan: plan::plan(spec, facts, &prepared_trees),
        }
    }

    /// Whether a cgroup filesystem is mounted: the process must be in its cgroups (and cgroup namespace) before
    /// [`Rootfs::mount_all`].
    pub fn mounts_cgroup_filesystem(&self) -> bool {
        self.plan
            .mounts
            .iter()
            .any(|entry| matches!(entry.plan, Ok(MountPlan::Cgroup(_))))
    }

    /// Everything before the switch of root: the root's propagation, the rootfs bound onto itself, every `mounts[]`
    /// entry, `/dev` and the cwd.
    pub fn mount_all(&self) -> Result<()> {
        let plan = &self.plan;
        if let Some(flag) = plan.root.propagation_before {
            mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
                .with_context(|| format!("set propagation {flag:?} on /"))?;
        }
        if plan.root.private_parent {
            self.make_parent_mount_private()?;
        }
        mount(
            Some(self.path),
            self.path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind mount rootfs {} onto itself", self.path.display()))?;
        let root = open_rootfs(self.path)?;
        for (index, entry) in plan.mounts.iter().enumerate() {
            match &entry.plan {
                Ok(mount_plan) => {
                    mount::perform(root.as_fd(), mount_plan, self.idmapped.get(index))
                }
                Err(refusal) => Err(anyhow!("{refusal}")),
            }
            .with_context(|| entry.context.clone())?;
        }
        if let Some(dev) = &plan.dev {
            devices::create_devices(root.as_fd(), dev)?;
            devices::create_dev_links(root.as_fd())?;
        }
        if let Some(cwd) = &plan.cwd {
            inroot::mkdir_all(root.as_fd(), cwd, 0o755)
                .with_context(|| format!("create cwd {}", cwd.display()))?;
        }
        Ok(())
    }

    /// pivot_root needs the rootfs' parent mount not to be shared, and the rootfs bind needs it not to be unbindable.
    fn make_parent_mount_private(&self) -> Result<()> {
        let parent = mountinfo::read()?
            .into_iter()
            .map(|m| m.mountpoint)
            .filter(|mp| self.path.starts_with(mp))
            .max_by_key(|mp| mp.as_os_str().len())
            .unwrap_or_else(|| PathBuf::from("/"));
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_context(|| format!("make {} private", parent.display()))
    }

    /// After the create-time hooks: `pivot_root` (or the move or chroot of the plan), then `rootfsPropagation` on the
    /// new root.
    pub fn switch_root(&self) -> Result<()> {
        match self.plan.root.switch {
            Switch::Chroot => switch::change_root(self.path),
            Switch::MoveRoot => switch::move_root(self.path),
            Switch::PivotRoot => switch::pivot(self.path),
        }?;
        if let Some(flag) = self.plan.root.propagation_after {
            mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
                .with_context(|| format!("set rootfsPropagation {flag:?} on /"))?;
        }
        Ok(())
    }

    /// After pivot, when hull made `/dev`: the standard streams that are the host's null device get the container's
    /// (see `devices::reopen_dev_null`).
    pub fn reopen_dev_null(&self) -> Result<()> {
        if self.plan.dev.is_none() {
            return Ok(());
        }
        devices::reopen_dev_null()
    }

    /// After pivot, before `root.readonly`: the tmpfs mounts the config wants read-only, mounted writable so far
    /// (see `plan::FsMount::flags`), are remounted read-only with their other flags.
    pub fn make_tmpfs_readonly(&self) -> Result<()> {
        let mut root = None;
        for tmpfs in &self.plan.readonly_tmpfs {
            let root = match &root {
                Some(root) => root,
                None => root.insert(File::open("/").context("open /")?),
            };
            let dest = tmpfs.destination.as_path();
            let mounted = open_dest(root.as_fd(), dest, 0)?;
            mount(
                None::<&str>,
                fd_path(&mounted).as_str(),
                None::<&str>,
                tmpfs.flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .with_context(|| format!("remount tmpfs {} read-only", dest.display()))?;
        }
        Ok(())
    }

    /// After pivot: `root.readonly`.
    pub fn make_root_readonly(&self) -> Result<()> {
        if !self.plan.root.readonly {
            return Ok(());
        }
        let root = File::open("/").context("open /")?;
        let fd: OwnedFd = root.into();
        let read_only = Remount {
            flags: MsFlags::MS_RDONLY,
            cleared: MsFlags::empty(),
        };
        remount_bind(&fd, read_only, "/")
    }

    /// After pivot and sysctl: `readonlyPaths`, bind-mounted onto themselves and remounted read-only.
    pub fn apply_readonly_paths(&self) -> Result<()> {
        let root = File::open("/").context("open /")?;
        let read_only = Remount {
            flags: MsFlags::MS_RDONLY,
            cleared: MsFlags::empty(),
        };
        for path in &self.plan.readonly_paths {
            let Some(fd) = open_existing(root.as_fd(), Path::new(path))? else {
                continue;
            };
            mount(
                Some(fd_path(&fd).as_str()),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind readonly path {path}"))?;
            let mounted = open_dest(root.as_fd(), Path::new(path), 0)?;
            remount_bind(&mounted, read_only, path)?;
        }
        Ok(())
    }

    /// After pivot: `maskedPaths`; directories get a read-only tmpfs, files the container's `/dev/null`, verified to
    /// really be the null device before it is mounted (CVE-2025-31133).
    pub fn apply_masked_paths(&self) -> Result<()> {
        let paths = &self.plan.masked_paths;
        if paths.is_empty() {
            return Ok(());
        }
        let root = File::open("/").context("open /")?;
        let mut dev_null: Option<OwnedFd> = None;
        for path in paths {
            // Never through a symlink: masking its target would mount over whatever the image points it at, such
            // as a volume's host file (CVE-2025-31133).
            let fd = match inroot::open(
                root.as_fd(),
                Path::new(path),
                OFlag::O_PATH,
                RESOLVE_NO_SYMLINKS,
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(Errno::ELOOP) => bail!("masked path {path} is a symlink"),
                Err(e) => return Err(e).with_context(|| format!("open masked path {path}")),
            };
            let st = fstat(&fd).with_context(|| format!("stat masked path {path}"))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                mount(
                    Some("tmpfs"),
                    fd_path(&fd).as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .with_context(|| format!("mask directory {path}"))?;
                continue;
            }
            let null = match &dev_null {
                Some(null) => null,
                None => dev_null.insert(devices::verified_dev_null(root.as_fd())?),
            };
            mount(
                Some(fd_path(null).as_str()),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("mask file {path}"))?;
        }
        Ok(())
    }
}

/// The rootfs directory, opened for the fd-relative resolution of every path inside it.
fn open_rootfs(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("open rootfs {}", path.display()))
}

fn open_existing(root: BorrowedFd<'_>, path: &Path) -> Result<Option<OwnedFd>> {
    match inroot::open(root, path, OFlag::O_PATH, 0) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {}", path.display())),
    }
}
