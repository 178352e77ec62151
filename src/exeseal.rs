//! CVE-2019-5736: a container whose entrypoint is `#!/proc/self/exe` would run hull's own executable inside the
//! container, where it could reopen the host binary for writing. Commands that enter containers (`create`, `run`)
//! therefore run from a sealed, unwritable memfd copy of hull: if `/proc/self/exe` is not one already, copy it into
//! a memfd, seal it, and re-exec once from it. hull is small, so the copy costs little.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};
use nix::errno::Errno;

const REQUIRED_SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

fn seals(fd: &impl AsRawFd) -> libc::c_int {
    // SAFETY: F_GET_SEALS only reads the seal bits of a descriptor we hold.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) }
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

/// Re-exec from a sealed copy unless already running from one. Returns only when already sealed.
pub fn ensure_sealed() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let current = seals(&exe);
    // F_GET_SEALS fails (-1) on anything that is not a memfd.
    if current >= 0 && current & REQUIRED_SEALS == REQUIRED_SEALS {
        return Ok(());
    }
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
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).context("argument contains a NUL byte"))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).context("environment contains a NUL byte")
        })
        .collect::<Result<_>>()?;
    let errno = crate::sys::fexecve(copy.as_fd(), &argv, &envp);
    Err(anyhow::Error::new(errno)).context("re-exec hull from its sealed memfd copy")
}
