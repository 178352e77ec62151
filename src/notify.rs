//! sd_notify through the container, as runc does it: when hull runs with `NOTIFY_SOCKET` set (a systemd unit with
//! `Type=notify`), the container gets a datagram socket of hull's at `/run/notify/notify.sock` (a read-only bind
//! mount of `<state dir>/notify`) and `NOTIFY_SOCKET` pointing at it. `run` and `start` bind that socket before the
//! program starts, wait for its `READY=` message, and pass it on to the host's socket with `MAINPID=<init>` and an
//! sd_notify barrier.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, connect, recv, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::unistd::Pid;
use oci_spec::runtime::{MountBuilder, Spec};

use crate::fdpass;
use crate::sys;

/// The socket's directory as the container sees it, and the socket in it.
const DIR_IN_CONTAINER: &str = "/run/notify";
const SOCKET_NAME: &str = "notify.sock";

/// How long the host gets to acknowledge the barrier (runc's value); a host that does not is only warned about.
const BARRIER_TIMEOUT_MS: u16 = 30_000;

/// The host's notify socket, if hull was given one.
pub fn host_socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn socket_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("notify")
}

/// `create`: make `<state dir>/notify` and give the container its bind mount and `NOTIFY_SOCKET`.
pub fn prepare(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let dir = socket_dir(state_dir);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .with_context(|| format!("mkdir {}", dir.display()))?;
    let mount = MountBuilder::default()
        .destination(DIR_IN_CONTAINER)
        .source(&dir)
        .typ("bind")
        .options(
            ["bind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .context("notify socket mount")?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        env.push(format!("NOTIFY_SOCKET={DIR_IN_CONTAINER}/{SOCKET_NAME}"));
        process.set_env(Some(env));
    }
    Ok(())
}

/// `run`/`start`: bind the container's notify socket (before the program can send to it).
pub fn bind_socket(state_dir: &Path) -> Result<OwnedFd> {
    let path = socket_dir(state_dir).join(SOCKET_NAME);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("create notify socket")?;
    let addr = UnixAddr::new(&path).with_context(|| format!("notify socket {}", path.display()))?;
    bind(fd.as_raw_fd(), &addr).with_context(|| format!("bind {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(fd)
}

/// The container's bound notify socket, waiting for its `READY=`.
pub struct Pending {
    pub socket: OwnedFd,
    pub host: PathBuf,
    pub init: Pid,
}

impl Pending {
    /// Wait until the container says `READY=...` (then tell the host) or its init exits (then say nothing).
    pub fn forward(self) -> Result<()> {
        let pidfd =
            sys::pidfd_open(self.init).with_context(|| format!("pidfd_open {}", self.init))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let mut fds = [
                PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => other.context("wait for the container's notify message")?,
            };
            if fds[0].any().unwrap_or(false) {
                let n = recv(self.socket.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
                    .context("read the container's notify message")?;
                if let Some(ready) = ready_line(&buf[..n]) {
                    return notify_host(&self.host, ready, self.init);
                }
            } else if fds[1].any().unwrap_or(false) {
                return Ok(());
            }
        }
    }
}

/// The `READY=` line of a notify datagram, if it has one.
fn ready_line(datagram: &[u8]) -> Option<&[u8]> {
    datagram
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(b"READY="))
}

/// Send `ready` and `MAINPID=<init>` to the host's socket, then wait for the host to take them (the barrier).
fn notify_host(host: &Path, ready: &[u8], init: Pid) -> Result<()> {
    let client = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("create socket for the host's notify socket")?;
    let addr = UnixAddr::new(host).with_context(|| format!("notify socket {}", host.display()))?;
    connect(client.as_raw_fd(), &addr).with_context(|| format!("connect to {}", host.display()))?;
    let send = |message: &[u8]| {
        nix::sys::socket::send(client.as_raw_fd(), message, MsgFlags::empty())
            .with_context(|| format!("send to {}", host.display()))
    };
    send(&[ready, b"\n"].concat())?;
    send(format!("MAINPID={init}\n").as_bytes())?;
    barrier(client.as_fd(), host)
}

/// sd_notify_barrier: send `BARRIER=1` with the write end of a pipe; the host closes it once it has read
/// everything before it.
fn barrier(client: BorrowedFd<'_>, host: &Path) -> Result<()> {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("create barrier pipe")?;
    fdpass::send_fds(client, b"BARRIER=1", &[write_end.as_fd()])
        .with_context(|| format!("send BARRIER=1 to {}", host.display()))?;
    drop(write_end);
    let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
    let ready =
        poll(&mut fds, PollTimeout::from(BARRIER_TIMEOUT_MS)).context("wait for the barrier")?;
    if ready == 0 {
        crate::logger::log(
            crate::logger::Level::Warning,
            &format!(
                "timeout after waiting {}s for barrier on {}: ignored",
                BARRIER_TIMEOUT_MS / 1000,
                host.display()
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_found_in_a_datagram() {
        assert_eq!(ready_line(b"READY=1"), Some(&b"READY=1"[..]));
        assert_eq!(
            ready_line(b"STATUS=starting\nREADY=1\n"),
            Some(&b"READY=1"[..])
        );
        assert_eq!(ready_line(b"STATUS=starting"), None);
    }

    #[test]
    fn prepare_adds_the_mount_and_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = Spec::default();
        prepare(&mut spec, dir.path()).unwrap();
        let mount = spec.mounts().as_ref().unwrap().last().unwrap();
        assert_eq!(mount.destination(), Path::new("/run/notify"));
        assert_eq!(
            mount.source().as_deref(),
            Some(dir.path().join("notify").as_path())
        );
        assert!(mount.options().as_ref().unwrap().contains(&"ro".to_owned()));
        let env = spec.process().as_ref().unwrap().env().as_ref().unwrap();
        assert_eq!(env.last().unwrap(), "NOTIFY_SOCKET=/run/notify/notify.sock");
        assert!(dir.path().join("notify").is_dir());
    }
}
