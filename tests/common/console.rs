//! A `--console-socket` receiver like runc's `recvtty`: listens on a unix socket and takes the pty master a
//! runtime sends, with go-runc's checks (payload under 4096 bytes, exactly one control message with one fd).

use std::fs::File;
use std::io::{Error, ErrorKind, IoSliceMut, Result};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// runc's `MaxNameLen`: the payload (the fd's name) must be shorter.
const MAX_NAME_LEN: usize = 4096;

pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Listen on `console.sock` inside `dir`.
    pub fn bind(dir: &Path) -> Result<ConsoleSocket> {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Accept one connection and receive the master it carries, within `timeout`.
    pub fn accept_master(&self, timeout: Duration) -> Result<File> {
        let deadline = Instant::now() + timeout;
        wait_readable(self.listener.as_fd(), deadline)?;
        let (stream, _) = self.listener.accept()?;
        stream.set_nonblocking(false)?;
        wait_readable(stream.as_fd(), deadline)?;

        let mut name = vec![0u8; MAX_NAME_LEN];
        let mut space = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(&mut name)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut messages = 0;
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            messages += 1;
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: SCM_RIGHTS installed these descriptors in our table just now; nobody else owns them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let invalid = |what: String| Err(Error::new(ErrorKind::InvalidData, what));
        if msg.bytes >= MAX_NAME_LEN {
            return invalid(format!("console name of {} bytes", msg.bytes));
        }
        if messages != 1 || fds.len() != 1 {
            return invalid(format!(
                "{messages} control messages with {} fds, want one fd",
                fds.len()
            ));
        }
        Ok(File::from(fds.remove(0)))
    }
}

/// Wait until `fd` is readable, failing with `TimedOut` at `deadline`.
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, deadline: Instant) -> Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) if left.is_zero() => {
                return Err(Error::new(ErrorKind::TimedOut, "no console master in time"))
            }
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
