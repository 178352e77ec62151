//! `/dev` as hull makes it (see `plan::DevPlan`): device nodes (made with mknod, or the host's bind-mounted), the
//! standard links, and the container's verified `/dev/null`.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::mount::open_path_only;
use super::plan::{DevPlan, DeviceCreation};
use crate::inroot::{self, fd_path, RESOLVE_NO_SYMLINKS};

const NO_FOLLOW_PATH: OFlag = OFlag::O_PATH.union(OFlag::O_NOFOLLOW);

/// mknod each device (in a user namespace mknod is not allowed: bind-mount the host's node instead).
pub(super) fn create_devices(root: BorrowedFd<'_>, dev: &DevPlan) -> Result<()> {
    for device in &dev.devices {
        let parent = device.path.parent().unwrap_or(Path::new("/dev"));
        let name = device
            .path
            .file_name()
            .context("device path without a name")?;
        let parent_fd = inroot::mkdir_all(root, parent, 0o755)
            .with_context(|| format!("create device directory {}", parent.display()))?;
        if dev.creation == DeviceCreation::BindHost {
            let host = open_path_only(&device.path)
                .with_context(|| format!("open host device {}", device.path.display()))?;
            let target = inroot::ensure_file(root, &device.path)?;
            mount(
                Some(fd_path(&host).as_str()),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("bind device {}", device.path.display()))?;
            continue;
        }
        mknodat(
            parent_fd.as_fd(),
            name,
            device.kind,
            Mode::from_bits_truncate(device.mode),
            makedev(device.major, device.minor),
        )
        .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
        .with_context(|| format!("mknod {}", device.path.display()))?;
        fchownat(
            parent_fd.as_fd(),
            name,
            Some(Uid::from_raw(device.uid)),
            Some(Gid::from_raw(device.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .with_context(|| format!("chown {}", device.path.display()))?;
    }
    Ok(())
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/core` and `/dev/ptmx → pts/ptmx`.
pub(super) fn create_dev_links(root: BorrowedFd<'_>) -> Result<()> {
    let dev = inroot::open(
        root,
        Path::new("/dev"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        RESOLVE_NO_SYMLINKS,
    )
    .context("open /dev in the container")?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name}")),
        }
    }
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).context("remove /dev/ptmx"),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").context("symlink /dev/ptmx")?;
    Ok(())
}

/// After pivot: a standard stream that is a null device (the host's /dev/null, given by the caller) is replaced by
/// the container's own /dev/null, as runc's `reOpenDevNull` does, so that the container holds no file of the host's
/// mounts there (CRIU cannot dump one).
pub(super) fn reopen_dev_null() -> Result<()> {
    let null_streams: Vec<RawFd> = (0..3)
        .filter(|&stream| {
            // SAFETY: fstat on a descriptor number; a closed one fails with EBADF and is left alone.
            fstat(unsafe { BorrowedFd::borrow_raw(stream) }).is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
                    && st.st_rdev == makedev(1, 3)
            })
        })
        .collect();
    if null_streams.is_empty() {
        return Ok(());
    }
    let root = File::open("/").context("open /")?;
    let verified = verified_dev_null(root.as_fd())?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(fd_path(&verified))
        .context("reopen /dev/null")?;
    for stream in null_streams {
        // SAFETY: dup3 onto a standard stream number this process owns; `null` stays open for the call.
        let ret = unsafe { libc::dup3(null.as_raw_fd(), stream, 0) };
        Errno::result(ret).with_context(|| format!("reopen /dev/null as fd {stream}"))?;
    }
    Ok(())
}

/// The container's `/dev/null`, opened without following a symlink and checked to be the null device (1:3).
pub(super) fn verified_dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let fd = inroot::open(
        root,
        Path::new("/dev/null"),
        NO_FOLLOW_PATH,
        RESOLVE_NO_SYMLINKS,
    )
    .context("open /dev/null")?;
    let st = fstat(&fd).context("stat /dev/null")?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || st.st_rdev != makedev(1, 3) {
        bail!("/dev/null in the container is not the null device (1:3)");
    }
    Ok(fd)
}
