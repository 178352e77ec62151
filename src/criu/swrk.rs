//! A CRIU service worker: `criu swrk 3`, started with one end of a SOCK_SEQPACKET socketpair as its fd 3, as runc
//! (go-criu) and crun start it. Each request and response is one protobuf message in one packet; while it works,
//! CRIU may send `criu_notify` messages (with `notify_scripts`), each answered before it goes on. File descriptors in
//! the options (`images_dir_fd`, `work_dir_fd`, `inherit_fd`) are hull's: CRIU opens them through
//! `/proc/<hull>/fd/N`.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use super::proto::{ReqType, Request, Response};
use crate::fdpass;

/// What a caller does at each of CRIU's notifications: script name, pid, descriptors sent along.
pub type Notify<'a> = dyn FnMut(&str, i32, Vec<OwnedFd>) -> Result<()> + 'a;

/// The largest message CRIU sends (its responses are small; a notify carries a script name).
const MAX_MESSAGE: usize = 64 * 1024;

/// Room for this many descriptors with a message (256 bytes of control data; CRIU sends one at a time).
const MAX_FDS: usize = 60;

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
    /// Start `criu swrk 3`. Its stdio are hull's when `inherit_stdio` (a restore hands them to the restored
    /// process, see `inherit_fd`), else /dev/null as runc leaves them (CRIU logs to its log file); `extra` become its
    /// fds 4, 5, ... (runc's `ExtraFiles`).
    pub fn start(criu: &Path, inherit_stdio: bool, extra: &[BorrowedFd<'_>]) -> Result<Swrk> {
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
        let sources: Vec<RawFd> = std::iter::once(theirs.as_raw_fd())
            .chain(extra.iter().map(|fd| fd.as_raw_fd()))
            .collect();
        let mut command = Command::new(criu);
        command.args(["swrk", "3"]);
        if !inherit_stdio {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        // SAFETY: between fork and exec only fcntl and dup2, both async-signal-safe, on descriptors that stay open in
        // the parent until the spawn returns; `sources` was allocated before the fork.
        unsafe {
            command.pre_exec(move || {
                // Each source is first copied above every target number, so no dup2 overwrites a later source.
                let floor = 3 + sources.len() as RawFd;
                let mut high = Vec::with_capacity(sources.len());
                for &fd in &sources {
                    let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor);
                    if copy < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    high.push(copy);
                }
                for (target, &fd) in (3..).zip(&high) {
                    if libc::dup2(fd, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
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

    /// CRIU's pid (a restore puts it into the container's cgroups before asking).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
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

    /// The next message, with the descriptors it carries (`orphan-pts-master` sends the pty master).
    fn receive(&self) -> Result<(Response, Vec<OwnedFd>)> {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        let message = fdpass::recv_fds(self.socket.as_fd(), &mut buffer, MAX_FDS)
            .context("receive a response from criu")?;
        if message.len == 0 {
            bail!("criu closed its socket without answering (it may have crashed)");
        }
        Ok((Response::decode(&buffer[..message.len])?, message.fds))
    }

    /// Send `request` and answer CRIU's notifications with `on_notify(script, pid, fds)` until its response comes.
    pub fn call(&self, request: &Request, on_notify: &mut Notify<'_>) -> Result<Response> {
        self.send(request)?;
        loop {
            let (response, fds) = self.receive()?;
            if response.kind != ReqType::Notify as u64 {
                return Ok(response);
            }
            let (script, pid) = response.notify.clone().unwrap_or_default();
            on_notify(&script, pid, fds).with_context(|| format!("criu notification {script}"))?;
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
