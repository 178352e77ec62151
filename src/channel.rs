//! The sync channel between hull and the container init it clones: one `SOCK_SEQPACKET` socketpair, one JSON message
//! per datagram. The declaration order of `Msg` is the protocol order.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// parent → child: the id maps of the new user namespace the child was cloned into are written; go on.
    Go,
    /// child → parent: it has unshared a user namespace after joining others; write its id maps.
    MapIds,
    /// parent → child: id maps written.
    IdsMapped,
    /// child → parent: joining or creating a pid namespace needed a fork; this is the container init's pid.
    Forked { pid: i32 },
    /// parent → child: hull has the forked pid; the forked process goes on. Without this wait its next message
    /// could overtake `Forked`, which the intermediate process sends as it exits.
    ForkSeen,
    /// child → parent: about to switch user; set the rlimits now (prlimit(2) on a process that still has our uid,
    /// as runc does at `procReady`). Only for a child in a user namespace, which could not raise them itself
    /// (`init::RlimitsBy`).
    SetRlimits,
    /// parent → child: rlimits set.
    RlimitsSet,
    /// child → parent: the seccomp filter is loaded; its notify listener fd rides along (`SCM_RIGHTS`), for hull to
    /// pass on to the profile's `listenerPath`.
    SeccompListener,
    /// child → parent: mounts done, `pivot_root` next; run the prestart and createRuntime hooks now.
    RunCreateHooks,
    /// parent → child: those hooks succeeded; `pid` is the init's pid on the host, for the container's own hooks.
    CreateHooksRan { pid: i32 },
    /// child → parent (`create`): set up in the container, the pid final; record it now.
    Ready,
    /// parent → child: state.json records the init, which from now on may outlive hull. The child takes the
    /// process's identity, closes its end of the channel (the parent reads that as "parked") and waits for `start`.
    StateSaved,
    /// child → parent (`exec`): calling execve now. The channel is close-on-exec, so its closing next means the
    /// program runs; a failed execve sends `Error` instead.
    Exec,
    /// child → parent: setup failed; the full cause chain, outermost first. The child exits after sending it.
    Error { chain: Vec<String> },
}

pub struct Channel {
    fd: OwnedFd,
    /// The fd that came with the last message received, if any (see [`Channel::take_fd`]).
    received_fd: RefCell<Option<OwnedFd>>,
}

/// A connected pair: `.0` for the parent, `.1` for the child. Both ends are close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("create sync socketpair")?;
    Ok((Channel::new(a), Channel::new(b)))
}

impl Channel {
    fn new(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            received_fd: RefCell::new(None),
        }
    }

    /// Send `msg` with `fd` attached in one datagram.
    pub fn send_with_fd(&self, msg: &Msg, fd: BorrowedFd<'_>) -> Result<()> {
        let bytes = serde_json::to_vec(msg).context("encode sync message")?;
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .with_context(|| format!("send {msg:?}"))?;
        Ok(())
    }

    /// This end's fd, for the child's list of fds to keep (`sys::close_all_except`).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The fd attached to the message last received, if it had one.
    pub fn take_fd(&self) -> Option<OwnedFd> {
        self.received_fd.borrow_mut().take()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = serde_json::to_vec(msg).context("encode sync message")?;
        send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
            .with_context(|| format!("send {msg:?}"))?;
        Ok(())
    }

    /// The length of the next datagram, waiting for it unless `flags` says not to; 0 when the peer has closed its
    /// end. Buffers are then sized to the message: a fixed 64 KiB one, zeroed on every receive, was most of hull's
    /// heap during a create.
    fn next_len(&self, flags: MsgFlags) -> nix::Result<usize> {
        loop {
            match recv(
                self.fd.as_raw_fd(),
                &mut [],
                flags | MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// The next message, or None when the peer has closed its end (it exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let len = self
            .next_len(MsgFlags::empty())
            .context("receive sync message")?;
        if len == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("receive sync message"),
                Ok(msg) => {
                    for cmsg in msg.cmsgs().context("receive sync message")? {
                        if let ControlMessageOwned::ScmRights(fds) = cmsg {
                            for fd in fds {
                                // SAFETY: SCM_RIGHTS installed this fd in our table just now; nobody else owns it.
                                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                                *self.received_fd.borrow_mut() = Some(fd);
                            }
                        }
                    }
                    break msg.bytes;
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).context("decode sync message")?;
        Ok(Some(msg))
    }

    /// In a cloned child: run `setup`, which ends in execve and so never returns `Ok`; send its error to the parent
    /// as the full cause chain and exit.
    pub fn run_child(&self, setup: impl FnOnce() -> Result<Infallible>) -> ! {
        let err = match setup() {
            Ok(never) => match never {},
            Err(err) => err,
        };
        let chain = err
            .chain()
            .take(MAX_CAUSES)
            .map(|cause| shorten(crate::logger::cause_text(cause)))
            .collect();
        let _ = self.send(&Msg::Error { chain });
        crate::sys::exit_now(1)
    }

    /// A setup error the child already sent, if any, without waiting. When the parent's own step fails because the
    /// child has died (its pid is gone, its socket closed), the child's message is the real cause.
    pub fn pending_error(&self) -> Option<anyhow::Error> {
        let len = self.next_len(MsgFlags::MSG_DONTWAIT).ok()?;
        let mut buf = vec![0u8; len];
        let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).ok()?;
        match serde_json::from_slice(&buf[..n]).ok()? {
            Msg::Error { chain } => Some(anyhow!(chain.join(": "))),
            _ => None,
        }
    }

    /// Receive one of `expected`, turning a child's `Error` into an `Err` carrying its cause chain.
    pub fn recv_expect(&self, expected: &[&str]) -> Result<Msg> {
        match self.recv()? {
            None => bail!("container init exited unexpectedly"),
            Some(Msg::Error { chain }) => Err(anyhow!(chain.join(": "))),
            Some(msg) if expected.contains(&msg.kind()) => Ok(msg),
            Some(msg) => bail!("sync protocol error: expected one of {expected:?}, got {msg:?}"),
        }
    }
}

/// At most this many causes of a child's error are sent, each at most [`MAX_CAUSE_LEN`] bytes: the whole `Error`
/// then fits in one datagram of any socket buffer Linux allows (a larger one fails with EMSGSIZE, and the parent
/// would learn only that the child exited).
const MAX_CAUSES: usize = 16;
const MAX_CAUSE_LEN: usize = 1024;

/// `text` cut to [`MAX_CAUSE_LEN`] bytes around a marker that says how much was left out: its start and its end
/// (where an error's own cause usually is) stay.
fn shorten(text: String) -> String {
    if text.len() <= MAX_CAUSE_LEN {
        return text;
    }
    let floor = |mut at: usize| {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let head = floor(MAX_CAUSE_LEN * 3 / 4);
    let tail = floor(text.len() - MAX_CAUSE_LEN / 5);
    format!(
        "{} [... {} bytes ...] {}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

impl Msg {
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Go => "Go",
            Msg::MapIds => "MapIds",
            Msg::IdsMapped => "IdsMapped",
            Msg::Forked { .. } => "Forked",
            Msg::ForkSeen => "ForkSeen",
            Msg::SetRlimits => "SetRlimits",
            Msg::RlimitsSet => "RlimitsSet",
            Msg::SeccompListener => "SeccompListener",
            Msg::RunCreateHooks => "RunCreateHooks",
            Msg::CreateHooksRan { .. } => "CreateHooksRan",
            Msg::Ready => "Ready",
            Msg::StateSaved => "StateSaved",
            Msg::Exec => "Exec",
            Msg::Error { .. } => "Error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_round_trip() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Forked { pid: 42 }).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::Forked { pid: 42 }));
        b.send(&Msg::Ready).unwrap();
        assert_eq!(a.recv_expect(&["Ready"]).unwrap(), Msg::Ready);
    }

    #[test]
    fn messages_of_any_size_arrive_whole_and_a_closed_peer_reads_as_none() {
        let (a, b) = pair().unwrap();
        let long = Msg::Error {
            chain: vec!["x".repeat(100 * 1024)],
        };
        b.send(&long).unwrap();
        b.send(&Msg::Ready).unwrap();
        assert_eq!(a.recv().unwrap(), Some(long));
        assert_eq!(a.recv().unwrap(), Some(Msg::Ready));
        drop(b);
        assert_eq!(a.recv().unwrap(), None);
    }

    #[test]
    fn an_fd_rides_along() {
        use std::io::{Read, Write};
        let (a, b) = pair().unwrap();
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let mut reader = std::fs::File::from(reader);
        b.send_with_fd(&Msg::SeccompListener, writer.as_fd())
            .unwrap();
        drop(writer);
        assert_eq!(a.recv().unwrap(), Some(Msg::SeccompListener));
        let mut received = std::fs::File::from(a.take_fd().expect("an fd arrived"));
        received.write_all(b"hi").unwrap();
        drop(received);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hi");
        assert!(a.take_fd().is_none());
    }

    #[test]
    fn child_error_becomes_err_with_chain() {
        let (a, b) = pair().unwrap();
        b.send(&Msg::Error {
            chain: vec!["mount proc".into(), "Operation not permitted".into()],
        })
        .unwrap();
        let err = a.recv_expect(&["Ready"]).unwrap_err();
        assert_eq!(err.to_string(), "mount proc: Operation not permitted");
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = pair().unwrap();
        drop(b);
        let err = a.recv_expect(&["Ready"]).unwrap_err();
        assert_eq!(err.to_string(), "container init exited unexpectedly");
    }

    #[test]
    fn unexpected_message_is_a_protocol_error() {
        let (a, b) = pair().unwrap();
        b.send(&Msg::MapIds).unwrap();
        assert!(a
            .recv_expect(&["Ready"])
            .unwrap_err()
            .to_string()
            .contains("sync protocol error"));
    }
}
