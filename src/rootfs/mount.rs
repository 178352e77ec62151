//! Performs one planned `mounts[]` entry inside the rootfs (see `plan`), and the mount helpers the other steps share.
//! Every path inside the rootfs is resolved in-root through fds (see `inroot`); mount(2) is always aimed at
//! `/proc/self/fd/N`, never at a re-resolved path string.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use super::plan::{Attributes, BindMount, DestinationRule, Fallback, FsMount, MountPlan, Remount};
use super::{cgroup, plan};
use crate::inroot::{self, fd_path, RESOLVE_NO_SYMLINKS};
use crate::{copyup, sys};

/// Performs `plan`; `tree` is the tree hull prepared for the entry, if any.
pub(super) fn perform(
    root: BorrowedFd<'_>,
    plan: &MountPlan,
    tree: Option<BorrowedFd<'_>>,
) -> Result<()> {
    match plan {
        MountPlan::Bind(bind) => bind_mount(root, bind, tree),
        MountPlan::Cgroup(cgroup) => cgroup::mount_cgroup(root, cgroup),
        MountPlan::Filesystem(fs) => mount_filesystem(root, fs),
    }
}

fn mount_filesystem(root: BorrowedFd<'_>, fs: &FsMount) -> Result<()> {
    let dest = fs.destination.as_path();
    let extra = match &fs.destination_rule {
        DestinationRule::InRoot => 0,
        DestinationRule::OrdinaryDirectory { lead } => {
            match inroot::open(root, dest, OFlag::O_PATH, RESOLVE_NO_SYMLINKS) {
                Err(Errno::ELOOP) => {
                    bail!("{lead}mount destination {} is a symlink", dest.display())
                }
                Ok(fd)
                    if !fstat(&fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) =>
                {
                    bail!(
                        "{lead}mount destination {} is not a directory",
                        dest.display()
                    )
                }
                _ => {}
            }
            RESOLVE_NO_SYMLINKS
        }
    };
    let covered_mode = match fs.covered_dir {
        Some(_) => existing_dir_mode(root, dest)?,
        None => None,
    };
    inroot::mkdir_all(root, dest, 0o755)?;
    let target = open_dest(root, dest, extra)?;
    let data = fs.data.text(covered_mode);
    let result = mount(
        Some(fs.source.as_str()),
        fd_path(&target).as_str(),
        Some(fs.fstype.as_str()),
        fs.flags,
        (!data.is_empty()).then_some(data.as_str()),
    );
    match (result, fs.fallback) {
        (Ok(()), _) => {}
        (Err(Errno::EPERM), Some(Fallback::BindHostSys(remount))) => {
            mount(
                Some("/sys"),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .context("bind /sys (sysfs mount not permitted)")?;
            let mounted = open_dest(root, dest, extra)?;
            remount_bind(&mounted, remount, "/sys")?;
        }
        (Err(e), _) => return Err(e.into()),
    }
    let mounted = open_dest(root, dest, extra)?;
    if fs.covered_dir.is_some_and(|c| c.copy_up) && covered_mode.is_some() {
        copyup::copy_tree(target.as_fd(), mounted.as_fd(), &dest.display().to_string())?;
    }
    apply_attributes(&mounted, &fs.attributes)
}

/// A bind mount; `tree` is the tree hull prepared for it (attached instead of binding the source).
fn bind_mount(root: BorrowedFd<'_>, bind: &BindMount, tree: Option<BorrowedFd<'_>>) -> Result<()> {
    let src = bind.source.as_path();
    if bind.source_must_be_procfs && !is_procfs(src) {
        bail!("{}", plan::not_of_type_proc());
    }
    let source: OwnedFd = if bind.prepared_tree {
        tree.context("no prepared tree for this bind mount")?
            .try_clone_to_owned()
            .context("duplicate a prepared bind mount tree")?
    } else {
        open_path_only(src)
            .with_context(|| format!("open bind mount source {}", src.display()))?
            .into()
    };
    let is_dir = fstat(&source)
        .with_context(|| format!("stat {}", src.display()))
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)?;
    let dest = bind.destination.as_path();
    if is_dir {
        inroot::mkdir_all(root, dest, 0o755)?;
    } else {
        inroot::ensure_file(root, dest)?;
    }
    let target = open_dest(root, dest, 0)?;
    if bind.prepared_tree {
        sys::move_mount_onto(source.as_fd(), target.as_fd())
            .with_context(|| format!("attach the prepared {} with move_mount", src.display()))?;
    } else {
        let recursive = if bind.recursive {
            MsFlags::MS_REC
        } else {
            MsFlags::empty()
        };
        mount(
            Some(fd_path(&source).as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | recursive,
            None::<&str>,
        )?;
    }
    let mounted = open_dest(root, dest, 0)?;
    if let Some(remount) = bind.remount {
        remount_bind(&mounted, remount, &dest.display().to_string())?;
    }
    apply_attributes(&mounted, &bind.attributes)
}

fn is_procfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Mount flags that the kernel locks on a bind mount (and that a remount must therefore repeat).
fn current_flags(fd: BorrowedFd<'_>) -> Result<MsFlags> {
    let st = fstatvfs(fd).context("statvfs mount")?;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    Ok(out)
}

/// Remount a bind mount with the remount's flags, keeping the locked flags it already has unless explicitly cleared.
pub(super) fn remount_bind(fd: &OwnedFd, remount: Remount, what: &str) -> Result<()> {
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    let mut keep = current_flags(fd.as_fd())? & !remount.cleared & !MsFlags::MS_RDONLY;
    if remount.flags.intersects(atime) {
        keep &= !atime;
    }
    // `difference`, not `& !`: the complement of nix's flags drops bits nix does not name (MS_NOSYMFOLLOW).
    let flags = remount
        .flags
        .difference(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
        | keep
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND;
    mount(
        None::<&str>,
        fd_path(fd).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .with_context(|| format!("remount {what} with {flags:?}"))
}

/// Open a mount destination inside the root; `extra` adds `RESOLVE_*` bits (a refused symlink is named so).
pub(super) fn open_dest(root: BorrowedFd<'_>, dest: &Path, extra: u64) -> Result<OwnedFd> {
    inroot::open(root, dest, OFlag::O_PATH, extra).map_err(|e| match e {
        Errno::ELOOP if extra & RESOLVE_NO_SYMLINKS != 0 => {
            anyhow::anyhow!("mount destination {} is a symlink", dest.display())
        }
        e => anyhow::Error::new(e).context(format!("open mount destination {}", dest.display())),
    })
}

/// Open a host path with `O_PATH`: it is only ever mounted from, never read.
pub(super) fn open_path_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
}

/// The permission bits of the directory at `dest`, when there is one before hull creates anything.
fn existing_dir_mode(root: BorrowedFd<'_>, dest: &Path) -> Result<Option<u32>> {
    match inroot::open(root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
        Ok(dir) => {
            let st = fstat(&dir).with_context(|| format!("stat {}", dest.display()))?;
            Ok(Some(st.st_mode & 0o7777))
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {}", dest.display())),
    }
}

/// Propagation changes and recursive attributes (`rro`, ...) on a fresh mount.
fn apply_attributes(mounted: &OwnedFd, attributes: &Attributes) -> Result<()> {
    for flag in &attributes.propagation {
        mount(
            None::<&str>,
            fd_path(mounted).as_str(),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .with_context(|| format!("set propagation {flag:?}"))?;
    }
    if attributes.recursive_set != 0 || attributes.recursive_clear != 0 {
        sys::mount_setattr(
            mounted.as_fd(),
            true,
            attributes.recursive_set,
            attributes.recursive_clear,
        )
        .context("set recursive mount attributes")?;
    }
    Ok(())
}
