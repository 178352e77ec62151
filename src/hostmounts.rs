//! A container that lists no mount namespace inherits hull's (runtime-spec: an unlisted namespace is inherited), so
//! its rootfs bind and every configured mount go into the host's mount table, where no namespace's end takes them
//! away. runc leaves them there for good; hull records, before anything is mounted, which mount the rootfs path
//! showed (`statx`'s mount id), and whoever ends the container (a failed `create`, `delete`) detaches what was
//! stacked on it since: the rootfs bind, and with it every mount below it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use serde::{Deserialize, Serialize};

/// More stacked mounts than any create makes at the rootfs path: the bound on the detach loop.
const MAX_STACKED: usize = 16;

/// The rootfs of a container without a mount namespace, and the mount its path showed before hull mounted anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostMounts {
    pub rootfs: PathBuf,
    pub mount_id_before: u64,
}

impl HostMounts {
    /// Before the rootfs is bound onto itself: remember the mount its path shows now.
    pub fn record(rootfs: &Path) -> Result<HostMounts> {
        let mount_id_before = mount_id(rootfs)?
            .with_context(|| format!("rootfs {} does not exist", rootfs.display()))?;
        Ok(HostMounts {
            rootfs: rootfs.to_owned(),
            mount_id_before,
        })
    }

    /// Detach every mount stacked on the rootfs path since `record` (lazily: one still in use by a process that
    /// escaped the kill goes once that process does). Nothing is touched below the recorded mount, so the bundle's
    /// own rootfs mount, if it is one, stays.
    pub fn remove(&self) -> Result<()> {
        for _ in 0..MAX_STACKED {
            match mount_id(&self.rootfs)? {
                Some(id) if id != self.mount_id_before => {}
                _ => return Ok(()),
            }
            match umount2(
                &self.rootfs,
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            ) {
                // The path shows another mount without being a mount point: nothing of hull's is stacked there.
                Err(Errno::EINVAL) => return Ok(()),
                result => result.with_context(|| {
                    format!("unmount the rootfs bind at {}", self.rootfs.display())
                })?,
            }
        }
        anyhow::bail!(
            "{} still shows a mount other than the one before create after {MAX_STACKED} unmounts",
            self.rootfs.display()
        )
    }
}

/// The id of the mount `path` resolves to (the topmost at a mount point), or None when the path is gone.
fn mount_id(path: &Path) -> Result<Option<u64>> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", path.display()))?;
    // SAFETY: an all-zero statx is a valid value of this plain C struct; the kernel overwrites what it reports.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a NUL-terminated string and stx a valid, writable statx buffer for the duration of the call.
    let ret = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    match Errno::result(ret) {
        Ok(_) if stx.stx_mask & libc::STATX_MNT_ID != 0 => Ok(Some(stx.stx_mnt_id)),
        Ok(_) => anyhow::bail!(
            "statx {}: this kernel reports no mount id (Linux 5.8 or later is needed)",
            path.display()
        ),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("statx {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_is_gone_has_nothing_to_remove() {
        let gone = HostMounts {
            rootfs: PathBuf::from("/nonexistent/hull-rootfs"),
            mount_id_before: 1,
        };
        gone.remove().expect("nothing to remove");
        assert!(HostMounts::record(Path::new("/nonexistent/hull-rootfs"))
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }

    #[test]
    fn nothing_is_unmounted_while_the_path_shows_the_recorded_mount() {
        let dir = tempfile::tempdir().unwrap();
        let recorded = HostMounts::record(dir.path()).unwrap();
        recorded.remove().expect("the recorded mount is left alone");
        assert_eq!(
            mount_id(dir.path()).unwrap(),
            Some(recorded.mount_id_before)
        );
    }
}
