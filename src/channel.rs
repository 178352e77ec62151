//! The transport of the sync protocol (`protocol.rs`) between hull and a process it clones: one `SOCK_SEQPACKET`
//! socketpair, one JSON message per datagram, at most one fd riding along.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::sys::socket::{recv, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fdpass;

pub struct Channel {
    fd: OwnedFd,
    /// The fd that came with the last message received, if any (see [`Channel::take_fd`]).
    received_fd: RefCell<Option<OwnedFd>>,
}

/// What arrived: a message, or the end of the peer's side (it closed its end: it exited, or ran execve).
pub enum Received<T> {
    Message(T),
    Closed,
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

    /// This end's fd, for the child's list of fds to keep (`sys::close_all_except`).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The fd attached to the message last received, if it had one.
    pub fn take_fd(&self) -> Option<OwnedFd> {
        self.received_fd.borrow_mut().take()
    }

    /// Send `msg` in one datagram, with `fd` attached if given.
    pub fn send<T: Serialize + std::fmt::Debug>(
        &self,
        msg: &T,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(msg).context("encode sync message")?;
        let fds: &[BorrowedFd<'_>] = match &fd {
            Some(fd) => std::slice::from_ref(fd),
            None => &[],
        };
        fdpass::send_fds(self.fd.as_fd(), &bytes, fds).with_context(|| format!("send {msg:?}"))?;
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

    /// The next datagram's bytes, waiting for it; empty when the peer has closed its end (a peer that closed it with
    /// messages of ours unread resets the connection).
    fn recv_bytes(&self) -> Result<Vec<u8>> {
        let len = match self.next_len(MsgFlags::empty()) {
            Err(nix::errno::Errno::ECONNRESET) => 0,
            other => other.context("receive sync message")?,
        };
        let mut buf = vec![0u8; len];
        if len == 0 {
            return Ok(buf);
        }
        let received =
            fdpass::recv_fds(self.fd.as_fd(), &mut buf, 1).context("receive sync message")?;
        if let Some(fd) = received.fds.into_iter().next() {
            *self.received_fd.borrow_mut() = Some(fd);
        }
        buf.truncate(received.len);
        Ok(buf)
    }

    /// The next message; one that does not decode is a protocol error quoting it.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Received<T>> {
        let bytes = self.recv_bytes()?;
        if bytes.is_empty() {
            return Ok(Received::Closed);
        }
        serde_json::from_slice(&bytes)
            .map(Received::Message)
            .map_err(|_| {
                anyhow::anyhow!(
                    "sync protocol error: unknown message {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            })
    }

    /// The next message if one is already there, without waiting.
    pub fn try_recv<T: DeserializeOwned>(&self) -> Option<T> {
        let len = self.next_len(MsgFlags::MSG_DONTWAIT).ok()?;
        let mut buf = vec![0u8; len];
        let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).ok()?;
        serde_json::from_slice(&buf[..n]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Test {
        Short(i32),
        Long(String),
    }

    fn message(received: Received<Test>) -> Option<Test> {
        match received {
            Received::Message(msg) => Some(msg),
            Received::Closed => None,
        }
    }

    #[test]
    fn messages_of_any_size_arrive_whole_and_a_closed_peer_reads_as_closed() {
        let (a, b) = pair().unwrap();
        let long = Test::Long("x".repeat(100 * 1024));
        b.send(&long, None).unwrap();
        b.send(&Test::Short(42), None).unwrap();
        assert_eq!(message(a.recv().unwrap()), Some(long));
        assert_eq!(message(a.recv().unwrap()), Some(Test::Short(42)));
        drop(b);
        assert_eq!(message(a.recv().unwrap()), None);
    }

    #[test]
    fn an_fd_rides_along() {
        use std::io::{Read, Write};
        let (a, b) = pair().unwrap();
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let mut reader = std::fs::File::from(reader);
        b.send(&Test::Short(7), Some(writer.as_fd())).unwrap();
        drop(writer);
        assert_eq!(message(a.recv().unwrap()), Some(Test::Short(7)));
        let mut received = std::fs::File::from(a.take_fd().expect("an fd arrived"));
        received.write_all(b"hi").unwrap();
        drop(received);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hi");
        assert!(a.take_fd().is_none());
    }

    #[test]
    fn what_does_not_decode_is_named() {
        let (a, b) = pair().unwrap();
        fdpass::send_fds(b.fd.as_fd(), b"{\"Nonsense\":1}", &[]).unwrap();
        let err = a.recv::<Test>().err().unwrap();
        assert_eq!(
            err.to_string(),
            r#"sync protocol error: unknown message "{\"Nonsense\":1}""#
        );
    }

    #[test]
    fn try_recv_does_not_wait() {
        let (a, b) = pair().unwrap();
        assert_eq!(a.try_recv::<Test>(), None);
        b.send(&Test::Short(1), None).unwrap();
        assert_eq!(a.try_recv::<Test>(), Some(Test::Short(1)));
    }
}
