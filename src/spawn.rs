//! What `create` (`create.rs`) and `exec` (`enter.rs`) share on hull's side: the checks of the caller's terminal
//! and passed fds, the clone of a new process into its cgroup, and the handing out of its pidfd.

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::cgroups;
use crate::{console, sys};

/// How the caller's terminal settings combine with `process.terminal` (runc's `checkTerminal`); `create` always
/// detaches.
pub fn check_terminal(terminal: bool, console_socket: bool, detach: bool) -> Result<()> {
    if detach && terminal && !console_socket {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    if (!detach || !terminal) && console_socket {
        bail!("cannot use console socket if runc will not detach or allocate tty");
    }
    Ok(())
}

/// `--pidfd-socket`: send a pidfd of the new process, named by its kind ("standard" for a container init, "setns"
/// for an exec'd process, as runc names them).
pub fn send_pidfd(path: &Path, pid: Pid, kind: &str) -> Result<()> {
    let socket = console::connect_socket(path)?;
    let pidfd = sys::pidfd_open(pid).with_context(|| format!("pidfd_open {pid}"))?;
    console::send_fd(socket.as_fd(), kind, pidfd.as_fd())
        .with_context(|| format!("send pidfd to {}", path.display()))
}

/// Systemd socket activation fds handed to hull (only if LISTEN_PID names hull itself).
pub fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The fds 3.. passed to the container must exist.
pub fn check_passed_fds(listen: u32, preserve: u32) -> Result<()> {
    let first = 3 + listen;
    for i in 0..preserve {
        let fd = (first + i) as i32;
        // SAFETY: fstat only reads the descriptor table; `st` is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(err)
                .with_context(|| format!("unable to stat preserved-fd {i} (of {preserve})"));
        }
    }
    Ok(())
}

/// Whether a cgroup error is the kernel saying no to this user.
pub fn permission_denied(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            )
        }) || cause
            .downcast_ref::<Errno>()
            .is_some_and(|e| matches!(e, Errno::EACCES | Errno::EPERM | Errno::EROFS))
    })
}

/// Clone a new process of the container (the init, or an exec'd process), born in its cgroup2 cgroup where the kernel can do that (5.7+); it enters the other
/// hierarchies itself (see `cgroups::Entry`).
pub fn clone_into_cgroup(flags: libc::c_int, entry: &mut cgroups::Entry) -> Result<sys::Forked> {
    if let Some((path, dir)) = entry.clone_into() {
        match sys::clone3_into_cgroup(flags, dir) {
            Err(Errno::ENOSYS | Errno::E2BIG) => entry.without_clone_into()?,
            result => {
                return result.with_context(|| {
                    format!("clone container init into cgroup {}", path.display())
                })
            }
        }
    }
    sys::clone_fork(flags).context("clone container init")
}

/// Run `clone` with hull's own oom_score_adj set to `score`, which the init inherits (as runc's nsexec does), and
/// restore it afterwards: no write to the init's /proc files is needed, even when it forks again.
pub fn with_oom_score_adj(
    score: Option<i32>,
    clone: impl FnOnce() -> Result<sys::Forked>,
) -> Result<sys::Forked> {
    const PATH: &str = "/proc/self/oom_score_adj";
    let Some(score) = score else {
        return clone();
    };
    let saved = fs::read_to_string(PATH).with_context(|| format!("read {PATH}"))?;
    fs::write(PATH, score.to_string()).with_context(|| format!("write {score} to {PATH}"))?;
    let result = clone();
    if let Ok(sys::Forked::Child) = result {
        return result;
    }
    let saved = saved.trim();
    fs::write(PATH, saved).with_context(|| format!("restore {saved} to {PATH}"))?;
    result
}
