//! Host root's write access to a user-namespaced container's root directory while CRIU restores it. CRIU's first
//! mount engine makes its mount yard (`.criu.mntns.XXXXXX`) in the root from inside the restored task, and that task
//! can get there before CRIU has written its id maps: it is then host root without any capability over the root
//! directory (owned by the container's root, not yet mapped), and only the directory's "other" bits apply (`mnt:
//! Unable to create a temporary directory: Permission denied`, seen in the systemd guest under load). A POSIX ACL
//! entry for uid 0 lets it in: it grants nothing host root does not already have, and is taken away, with the mode it
//! changed, at CRIU's `setup-namespaces` notification (the yard exists by then; CRIU later checks the root's mode,
//! which the ACL's mask changes).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

use crate::logger;

const ACL_XATTR: &std::ffi::CStr = c"system.posix_acl_access";
const ACL_XATTR_VERSION: u32 = 2;
const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// The grant, withdrawn when dropped.
pub struct HostRootMayWrite {
    dir: File,
    mode: u32,
}

impl HostRootMayWrite {
    /// Grant it on `rootfs`, unless the directory has an ACL already (left as it is) or its filesystem takes none.
    pub fn grant(rootfs: &Path) -> Result<Option<HostRootMayWrite>> {
        let dir = File::open(rootfs).with_context(|| format!("open {}", rootfs.display()))?;
        let mode = dir
            .metadata()
            .with_context(|| format!("stat {}", rootfs.display()))?
            .mode()
            & 0o7777;
        // SAFETY: a size query (null buffer, length 0) of an attribute of a descriptor we own.
        let existing = unsafe {
            libc::fgetxattr(dir.as_raw_fd(), ACL_XATTR.as_ptr(), std::ptr::null_mut(), 0)
        };
        if existing >= 0 {
            logger::debug(format!("{} has an ACL: left as it is", rootfs.display()));
            return Ok(None);
        }
        let acl = access_acl(mode);
        // SAFETY: acl is a live buffer of acl.len() bytes that the kernel only reads; the descriptor is ours.
        let set = unsafe {
            libc::fsetxattr(
                dir.as_raw_fd(),
                ACL_XATTR.as_ptr(),
                acl.as_ptr().cast(),
                acl.len(),
                0,
            )
        };
        if set != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EOPNOTSUPP) {
                logger::debug(format!("{}: no ACLs on this filesystem", rootfs.display()));
                return Ok(None);
            }
            return Err(err).with_context(|| format!("set an ACL on {}", rootfs.display()));
        }
        Ok(Some(HostRootMayWrite { dir, mode }))
    }
}

impl Drop for HostRootMayWrite {
    fn drop(&mut self) {
        // SAFETY: removes one attribute of a descriptor we own.
        let removed = unsafe { libc::fremovexattr(self.dir.as_raw_fd(), ACL_XATTR.as_ptr()) };
        // Setting the ACL made the mode's group bits its mask: the mode goes back as it was.
        let chmod = self
            .dir
            .set_permissions(std::fs::Permissions::from_mode(self.mode));
        if removed != 0 || chmod.is_err() {
            logger::log(
                logger::Level::Warning,
                "cleanup: could not take back the ACL on the container's root directory",
            );
        }
    }
}

/// The access ACL of a directory with `mode`, plus rwx for uid 0: user_obj, user 0, group_obj, mask, other, in the
/// kernel's `posix_acl_xattr` layout (little-endian, entries ordered by tag).
fn access_acl(mode: u32) -> Vec<u8> {
    let bits = |shift: u32| ((mode >> shift) & 7) as u16;
    let entries = [
        (ACL_USER_OBJ, bits(6), ACL_UNDEFINED_ID),
        (ACL_USER, 7, 0),
        (ACL_GROUP_OBJ, bits(3), ACL_UNDEFINED_ID),
        (ACL_MASK, 7, ACL_UNDEFINED_ID),
        (ACL_OTHER, bits(0), ACL_UNDEFINED_ID),
    ];
    let mut acl = ACL_XATTR_VERSION.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        acl.extend(tag.to_le_bytes());
        acl.extend(perm.to_le_bytes());
        acl.extend(id.to_le_bytes());
    }
    acl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_keeps_the_mode_and_adds_uid_0() {
        let acl = access_acl(0o751);
        assert_eq!(acl.len(), 4 + 5 * 8);
        let entry = |n: usize| {
            let e = &acl[4 + n * 8..4 + (n + 1) * 8];
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        };
        assert_eq!(entry(0), (ACL_USER_OBJ, 7, ACL_UNDEFINED_ID));
        assert_eq!(entry(1), (ACL_USER, 7, 0));
        assert_eq!(entry(2), (ACL_GROUP_OBJ, 5, ACL_UNDEFINED_ID));
        assert_eq!(entry(3), (ACL_MASK, 7, ACL_UNDEFINED_ID));
        assert_eq!(entry(4), (ACL_OTHER, 1, ACL_UNDEFINED_ID));
    }

    #[test]
    fn the_grant_is_taken_back_with_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let Some(grant) = HostRootMayWrite::grant(dir.path()).unwrap() else {
            return; // a filesystem without ACLs: nothing to take back
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(dir.path()), 0o775, "the mask shows as the group bits");
        drop(grant);
        assert_eq!(mode(dir.path()), 0o755);
        let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a size query (null buffer, length 0) of an attribute of a NUL-terminated path we own.
        let size =
            unsafe { libc::getxattr(path.as_ptr(), ACL_XATTR.as_ptr(), std::ptr::null_mut(), 0) };
        assert!(size < 0, "no ACL remains");
    }
}
