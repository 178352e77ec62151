//! CVE-2019-5736: a container whose entrypoint is `#!/proc/self/exe` would run hull's own executable inside the
//! container, where it could reopen the host binary for writing. Commands that enter containers (`create`, `run`)
//! therefore re-exec once from an unwritable view of hull before doing anything else:
//! - preferred (runc >= 1.2's approach, no copy): the binary opened through a private, detached, read-only
//!   overlayfs whose top lower layer is hull's directory; every write through it fails with EROFS;
//! - fallback (kernels or setups without overlayfs): a sealed memfd copy (`F_SEAL_WRITE` and friends).
//!
//! A process already running from either view is left alone, so the re-exec happens once. On x86_64 the overlay
//! re-exec is normally done already, before the C library starts (`preseal`); this is the complete path, with the
//! memfd fallback and the error messages.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::statfs::fstatfs;
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::sys;

pub const REQUIRED_SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
pub const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Whether `exe` is already an unwritable view: a sealed memfd, or a file on a read-only overlayfs mount.
fn is_sealed(exe: &File) -> bool {
    // SAFETY: F_GET_SEALS only reads the seal bits of a descriptor we hold; it fails (-1) on non-memfds.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 {
        return seals & REQUIRED_SEALS == REQUIRED_SEALS;
    }
    let on_overlay = fstatfs(exe).is_ok_and(|fs| fs.filesystem_type().0 == OVERLAYFS_SUPER_MAGIC);
    on_overlay && fstatvfs(exe).is_ok_and(|vfs| vfs.flags().contains(FsFlags::ST_RDONLY))
}

fn c_string(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).context("path contains a NUL byte")
}

/// The second lower layer of the overlay view. overlayfs takes no fewer than two lower layers without an upper one,
/// and the view only ever opens hull's own name, which the first layer (hull's directory) has: any directory
/// attached to this mount namespace and apart from hull's does. An empty detached tmpfs would be tidier, but Linux
/// before 6.5 (Debian 12's 6.1 among them) refuses a detached mount as a layer ("failed to clone lowerpath"). The
/// view is mounted nodev, never attached, and its fd is close-on-exec.
pub const SECOND_LAYER: &str = "/dev";

/// hull opened through a detached read-only overlayfs (lower layers: its directory, then [`SECOND_LAYER`]).
fn overlay_view(exe_path: &Path) -> Result<OwnedFd> {
    let dir = exe_path.parent().context("hull's path has no directory")?;
    let name = exe_path
        .file_name()
        .context("hull's path has no file name")?;
    let overlay = sys::fsopen(c"overlay").context("fsopen overlay")?;
    // overlayfs separates layers with ':' and options with ','; escape them in hull's directory.
    let mut lower = Vec::new();
    for &b in dir.as_os_str().as_bytes() {
        if matches!(b, b':' | b',' | b'\\') {
            lower.push(b'\\');
        }
        lower.push(b);
    }
    lower.push(b':');
    lower.extend_from_slice(SECOND_LAYER.as_bytes());
    sys::fsconfig_set_string(overlay.as_fd(), c"lowerdir", &c_string(&lower)?)
        .context("configure overlay")?;
    sys::fsconfig_create(overlay.as_fd()).context("create overlay")?;
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
    let mount = sys::fsmount(overlay.as_fd(), attrs).context("fsmount overlay")?;
    let name = c_string(name.as_bytes())?;
    // SAFETY: openat relative to the mount fd with a NUL-terminated name; the result is a new fd we own.
    let fd = unsafe {
        libc::openat(
            mount.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open hull in its overlay view");
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn memfd(name: &std::ffi::CStr) -> Result<OwnedFd> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3+) keeps the memfd executable under vm.memfd_noexec; older kernels reject the flag.
    for flags in [base | libc::MFD_EXEC, base] {
        // SAFETY: `name` is NUL-terminated; the kernel returns a new fd we take ownership of.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        if Errno::last() != Errno::EINVAL {
            break;
        }
    }
    Err(std::io::Error::last_os_error()).context("memfd_create")
}

/// A sealed memfd copy of hull.
fn sealed_copy(exe: &File) -> Result<OwnedFd> {
    let len = exe.metadata().context("stat /proc/self/exe")?.len() as usize;
    let copy = memfd(c"hull")?;
    let mut remaining = len;
    while remaining > 0 {
        // SAFETY: both descriptors are valid; a null offset uses and advances the source's file offset.
        let n = unsafe {
            libc::sendfile(
                copy.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                remaining,
            )
        };
        if n <= 0 {
            return Err(std::io::Error::last_os_error()).context("copy hull into a memfd");
        }
        remaining -= n as usize;
    }
    // SAFETY: F_ADD_SEALS with a constant seal mask on our own memfd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, REQUIRED_SEALS) } != 0 {
        return Err(std::io::Error::last_os_error()).context("seal hull memfd");
    }
    // F_SEAL_EXEC (Linux 6.3+) additionally forbids chmod of the copy; best effort.
    // SAFETY: as above.
    let _ = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC) };
    Ok(copy)
}

/// Re-exec from an unwritable view unless already running from one. Returns only when already sealed.
pub fn ensure_sealed() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let view = match std::fs::read_link("/proc/self/exe")
        .map_err(anyhow::Error::from)
        .and_then(|p| overlay_view(&p))
    {
        Ok(view) => view,
        Err(e) => {
            crate::logger::debug(format!(
                "overlay view of hull unavailable ({e:#}); using a sealed copy"
            ));
            sealed_copy(&exe)?
        }
    };
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| c_string(a.as_bytes()))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            c_string(&kv)
        })
        .collect::<Result<_>>()?;
    let errno = sys::fexecve(view.as_fd(), &argv, &envp);
    Err(anyhow::Error::new(errno)).context("re-exec hull from its sealed view")
}
