//! Entering the container's root (see `plan::Switch`): `pivot_root`, or `MS_MOVE` + chroot with `--no-pivot`, or a
//! chroot alone in hull's mount namespace when the container has none of its own.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use super::open_rootfs;
use crate::mountinfo;

pub(super) fn pivot(rootfs: &Path) -> Result<()> {
    let old_root = File::open("/").context("open old root")?;
    let new_root = open_rootfs(rootfs)?;
    fchdir(&new_root).context("chdir into rootfs")?;
    pivot_root(".", ".").with_context(|| format!("pivot_root into {}", rootfs.display()))?;
    // The old root is now mounted on top of the new one; make it a slave so the unmount does not propagate to
    // the host, then detach it.
    fchdir(&old_root).context("chdir into old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("unmount old root")?;
    chdir("/").context("chdir /")?;
    Ok(())
}

/// Without a mount namespace of its own: chroot into the rootfs bind, in hull's mount namespace (runc's `chroot`).
pub(super) fn change_root(rootfs: &Path) -> Result<()> {
    fchdir(&open_rootfs(rootfs)?).context("chdir into rootfs")?;
    chroot(".").with_context(|| format!("chroot into {}", rootfs.display()))?;
    chdir("/").context("chdir /")
}

/// `--no-pivot`: move the rootfs mount onto / and chroot into it (for roots on ramfs, where pivot_root fails).
/// The old root stays in the mount namespace, below the chroot: first its procfs and sysfs mounts are taken away
/// (covered with a tmpfs where they cannot be unmounted), as runc's `msMoveRoot` does. Otherwise the kernel, which
/// lets a user namespace mount a fresh procfs or sysfs only where one is already fully visible in its mount
/// namespace, would let a nested user namespace mount an unmasked /proc beside the container's masked one.
pub(super) fn move_root(rootfs: &Path) -> Result<()> {
    for mount_point in host_proc_and_sys(&mountinfo::read()?, rootfs) {
        hide_mount(&mount_point)?;
    }
    chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .context("move rootfs onto /")?;
    chroot(".").context("chroot into rootfs")?;
    chdir("/").context("chdir /")?;
    Ok(())
}

/// The whole procfs and sysfs mounts outside the rootfs (bind mounts of a part of one, and those the container's own
/// mounts made inside the rootfs, are left alone), as runc's `msMoveRoot` picks them.
fn host_proc_and_sys(mounts: &[mountinfo::Mount], rootfs: &Path) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| {
            matches!(m.fstype.as_str(), "proc" | "sysfs")
                && m.root == Path::new("/")
                && !m.mountpoint.starts_with(rootfs)
        })
        .map(|m| m.mountpoint.clone())
        .collect()
}

/// Takes a host mount out of the container's mount namespace: made a slave first so that the unmount cannot reach the
/// host, then detached; where it cannot be unmounted (locked in a user namespace), covered with an empty tmpfs. A
/// mount point already gone with an earlier, enclosing mount is skipped.
fn hide_mount(mount_point: &Path) -> Result<()> {
    match mount(
        None::<&str>,
        mount_point,
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(Errno::ENOENT) => return Ok(()),
        result => result.with_context(|| format!("make {} a slave", mount_point.display()))?,
    }
    match umount2(mount_point, MntFlags::MNT_DETACH) {
        Err(Errno::EINVAL | Errno::EPERM) => mount(
            Some("tmpfs"),
            mount_point,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .with_context(|| format!("cover {} with a tmpfs", mount_point.display())),
        result => result.with_context(|| format!("unmount {}", mount_point.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pivot_hides_whole_proc_and_sys_mounts_outside_the_rootfs() {
        let mounts = mountinfo::parse(
            "22 1 0:21 / /proc rw - proc proc rw\n\
             23 1 0:22 / /sys rw - sysfs sysfs rw\n\
             24 23 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
             25 1 0:21 /sys /mnt/procsys rw - proc proc rw\n\
             26 1 0:24 / /run/c/rootfs/proc rw - proc proc rw\n\
             27 1 0:25 / /run/c/rootfs/sys ro - sysfs sysfs ro\n",
        )
        .unwrap();
        assert_eq!(
            host_proc_and_sys(&mounts, Path::new("/run/c/rootfs")),
            [Path::new("/proc"), Path::new("/sys")]
        );
    }
}
