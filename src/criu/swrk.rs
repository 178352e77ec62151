//! A CRIU service worker: `criu swrk 3`, started with one end of a SOCK_SEQPACKET socketpair as its fd 3, as runc
//! (go-criu) and crun start it. Each request and response is one protobuf message in one packet; while it works,
//! CRIU may send `criu_notify` messages (with `notify_scripts`), each answered before it goes on. File descriptors in
//! the options (`images_dir_fd`, `work_dir_fd`, `inherit_fd`) are hull's: CRIU opens them through
//! `/proc/<hull>/fd/N`.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use super::proto::{ReqType, Request, Response};

/// The largest message CRIU sends (its responses are small; a notify carries a script name).
const MAX_MESSAGE: usize = 64 * 1024;

/// The CRIU binary hull runs: the first `criu` on PATH, as runc (go-criu) finds it.
pub fn find() -> Result<PathBuf> {
    let path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/sbin:/usr/bin:/sbin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join("criu"))
        .find(|candidate| is_executable(candidate))
        .context("criu not found in PATH: checkpoint and restore need CRIU (4.1 or later on Linux 6.13 and later)")
}

fn is_executable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok() && path.is_file()
}

pub struct Swrk {
    child: Child,
    socket: OwnedFd,
}

impl Swrk {
    /// Start `criu swrk 3`; its stdout and stderr are hull's (runc's are too), its stdin is /dev/null.
    pub fn start(criu: &Path) -> Result<Swrk> {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two descriptors into the array we pass, which lives for the call.
        let ret = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        Errno::result(ret).context("socketpair for criu swrk")?;
        // SAFETY: both descriptors were just made by socketpair and belong to nothing else.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let theirs_raw = theirs.as_raw_fd();
        let mut command = Command::new(criu);
        command.args(["swrk", "3"]).stdin(Stdio::null());
        // SAFETY: between fork and exec only dup2 and fcntl, both async-signal-safe, on a descriptor that stays open
        // in the parent until the spawn returns.
        unsafe {
            command.pre_exec(move || {
                let moved = if theirs_raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(theirs_raw, 3)
                };
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {} swrk", criu.display()))?;
        drop(theirs);
        Ok(Swrk {
            child,
            socket: ours,
        })
    }

    fn send(&self, request: &Request) -> Result<()> {
        let bytes = request.encode();
        // SAFETY: bytes is a live buffer of bytes.len() bytes; the kernel only reads it.
        let sent = unsafe {
            libc::send(
                self.socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        Errno::result(sent).context("send a request to criu")?;
        Ok(())
    }

    fn receive(&self) -> Result<Response> {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        let received = loop {
            // SAFETY: buffer is a live, writable buffer of buffer.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                )
            };
            match Errno::result(n) {
                Err(Errno::EINTR) => continue,
                result => break result.context("receive a response from criu")? as usize,
            }
        };
        if received == 0 {
            bail!("criu closed its socket without answering (it may have crashed)");
        }
        Response::decode(&buffer[..received])
    }

    /// Send `request` and answer CRIU's notifications with `on_notify(script, pid)` until its response comes.
    pub fn call(
        &self,
        request: &Request,
        on_notify: &mut dyn FnMut(&str, i32) -> Result<()>,
    ) -> Result<Response> {
        self.send(request)?;
        loop {
            let response = self.receive()?;
            if response.kind != ReqType::Notify as u64 {
                return Ok(response);
            }
            let (script, pid) = response.notify.clone().unwrap_or_default();
            on_notify(&script, pid).with_context(|| format!("criu notification {script}"))?;
            self.send(&Request {
                notify_success: true,
                ..Request::new(ReqType::Notify, None)
            })?;
        }
    }

    /// Close the socket and wait for CRIU to exit.
    pub fn finish(mut self) -> Result<()> {
        drop(self.socket);
        let status = self.child.wait().context("wait for criu")?;
        if !status.success() {
            bail!("criu swrk exited with {status}");
        }
        Ok(())
    }
}
