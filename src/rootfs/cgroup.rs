//! Performs a planned cgroup filesystem mount (see `plan::CgroupForm`). The cgroup namespace, if the container has
//! one, is already unshared: the mounts show the container's cgroup as their root.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use super::mount::{open_dest, remount_bind};
use super::plan::{CgroupForm, CgroupMount, HierarchyBind, HierarchyForm, HierarchyMount};
use crate::inroot::{self, fd_path};
use crate::logger;

pub(super) fn mount_cgroup(root: BorrowedFd<'_>, cgroup: &CgroupMount) -> Result<()> {
    let dest = cgroup.destination.as_path();
    inroot::mkdir_all(root, dest, 0o755)?;
    match &cgroup.form {
        CgroupForm::Cgroup2 { flags, fallback } => {
            let target = open_dest(root, dest, 0)?;
            match mount(
                Some("cgroup2"),
                fd_path(&target).as_str(),
                Some("cgroup2"),
                *flags,
                None::<&str>,
            ) {
                Ok(()) => Ok(()),
                Err(e @ (Errno::EPERM | Errno::EBUSY)) => {
                    logger::debug(format!(
                        "mount cgroup2 on {}: {e}; bind-mounting {} instead",
                        dest.display(),
                        fallback.path.display()
                    ));
                    bind_unified(root, dest, &target, fallback)
                }
                Err(e) => Err(e.into()),
            }
        }
        CgroupForm::Cgroup2Bind(bind) => bind_unified(root, dest, &open_dest(root, dest, 0)?, bind),
        CgroupForm::PerHierarchy {
            tmpfs_flags,
            hierarchies,
            readonly,
        } => mount_hierarchies(root, dest, *tmpfs_flags, hierarchies, *readonly),
    }
}

/// cgroup v2 only: a bind of the hierarchy's directory (the container's cgroup, or the host's root for a container
/// without one) onto `target`, the opened destination.
fn bind_unified(
    root: BorrowedFd<'_>,
    dest: &Path,
    target: &OwnedFd,
    bind: &HierarchyBind,
) -> Result<()> {
    mount(
        Some(&bind.path),
        fd_path(target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    let mounted = open_dest(root, dest, 0)?;
    remount_bind(&mounted, bind.remount, &dest.display().to_string())
}

/// cgroup v1 (or hybrid): a tmpfs holding one directory per hierarchy, made read-only at the end if asked.
fn mount_hierarchies(
    root: BorrowedFd<'_>,
    dest: &Path,
    tmpfs_flags: MsFlags,
    hierarchies: &[HierarchyMount],
    readonly: bool,
) -> Result<()> {
    let target = open_dest(root, dest, 0)?;
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .context("mount tmpfs for cgroup hierarchies")?;
    // The fresh tmpfs holds nothing but what is made here, so its directories are made and opened relative to
    // it, without resolving the destination again for each hierarchy.
    let tmpfs = open_dest(root, dest, 0)?;
    for hierarchy in hierarchies {
        let name = hierarchy.name.as_str();
        let sub = dest.join(name);
        nix::sys::stat::mkdirat(tmpfs.as_fd(), name, Mode::from_bits_truncate(0o755))
            .with_context(|| format!("mkdir {}", sub.display()))?;
        let sub_fd = nix::fcntl::openat(
            tmpfs.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open {}", sub.display()))?;
        let result: Result<()> = match &hierarchy.form {
            HierarchyForm::Fresh {
                fstype,
                data,
                flags,
            } => mount(
                Some(*fstype),
                fd_path(&sub_fd).as_str(),
                Some(*fstype),
                *flags,
                (!data.is_empty()).then_some(data.as_str()),
            )
            .map_err(Into::into),
            HierarchyForm::Bind(bind) => mount(
                Some(&bind.path),
                fd_path(&sub_fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(anyhow::Error::from)
            .and_then(|()| remount_bind(&open_dest(root, &sub, 0)?, bind.remount, name)),
        };
        result.with_context(|| format!("mount cgroup hierarchy {name} on {}", sub.display()))?;
    }
    if readonly {
        mount(
            None::<&str>,
            fd_path(&tmpfs).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
            Some("mode=755"),
        )
        .context("remount cgroup tmpfs read-only")?;
    }
    Ok(())
}
