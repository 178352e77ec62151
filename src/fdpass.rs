//! File descriptors over unix sockets (`SCM_RIGHTS`): one message carrying a payload and fds, as `--console-socket`,
//! `--pidfd-socket`, a seccomp `listenerPath`, the sd_notify barrier, CRIU's swrk socket and hull's sync channel
//! frame them. Sends never raise SIGPIPE, received fds are close-on-exec, and both directions retry on EINTR.
//! Errors are the bare errno: each caller names what it was sending or receiving.

use std::io::IoSlice;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Send `payload` and `fds` in one `sendmsg` (no control message when `fds` is empty); the payload bytes sent.
pub fn send_fds(
    socket: BorrowedFd<'_>,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> nix::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    let iov = [IoSlice::new(payload)];
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// One message taken by [`recv_fds`].
#[derive(Debug)]
pub struct Received {
    /// Payload bytes written to the buffer: 0 at end of stream, or on a datagram socket whose peer has closed.
    pub len: usize,
    /// Every descriptor that arrived, in order, now owned by the caller (a refused message's close on drop).
    pub fds: Vec<OwnedFd>,
    /// How many control messages came, of any kind.
    pub control_messages: usize,
    /// The control data did not fit (`MSG_CTRUNC`): the kernel closed the descriptors beyond the room asked for.
    pub control_truncated: bool,
}

/// Receive one message into `buf` with room for at least `max_fds` descriptors (`CMSG_SPACE` pads it), in one
/// control message or several.
pub fn recv_fds(socket: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> nix::Result<Received> {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space =
        unsafe { libc::CMSG_SPACE((max_fds * size_of::<RawFd>()) as libc::c_uint) } as usize;
    // u64 words, so that the control buffer is aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(size_of::<u64>())];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let (len, header) = loop {
        // SAFETY: an all-zero msghdr is valid (no address, no buffers).
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        header.msg_iov = &mut iov;
        header.msg_iovlen = 1;
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = space;
        // SAFETY: header points at `buf` and `control`, live buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            result => break (result? as usize, header),
        }
    };
    let control_end = control.as_ptr() as usize + header.msg_controllen;
    let mut fds = Vec::new();
    let mut control_messages = 0;
    // SAFETY: the CMSG macros walk the control data the kernel wrote, within msg_controllen, and the descriptors read
    // stay within it too; each SCM_RIGHTS descriptor was installed in our table by this call and is owned by nothing
    // else.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&header);
        while !cmsg.is_null() {
            control_messages += 1;
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let stated = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let present = control_end.saturating_sub(data as usize);
                for i in 0..stated.min(present) / size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&header, cmsg);
        }
    }
    Ok(Received {
        len,
        fds,
        control_messages,
        control_truncated: header.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use nix::sys::socket::{recv, socketpair, AddressFamily, SockFlag, SockType};

    use super::*;

    fn pair(kind: SockType) -> (OwnedFd, OwnedFd) {
        socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC).unwrap()
    }

    /// Write through `fd` and read it back from `read_end`: both name the same pipe.
    fn assert_same_pipe(fd: &OwnedFd, read_end: &OwnedFd) {
        nix::unistd::write(fd, b"through").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(read_end, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"through");
    }

    #[test]
    fn payload_and_fd_arrive_together_close_on_exec() {
        let (a, b) = pair(SockType::Stream);
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(send_fds(a.as_fd(), b"name", &[w.as_fd()]).unwrap(), 4);
        drop(w);
        let mut buf = [0u8; 64];
        let received = recv_fds(b.as_fd(), &mut buf, 1).unwrap();
        assert_eq!(&buf[..received.len], b"name");
        assert_eq!(received.control_messages, 1);
        assert!(!received.control_truncated);
        assert_eq!(received.fds.len(), 1);
        let flags = fcntl(&received.fds[0], FcntlArg::F_GETFD).unwrap();
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
        assert_same_pipe(&received.fds[0], &r);
    }

    #[test]
    fn several_fds_in_one_message() {
        let (a, b) = pair(SockType::Stream);
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fds(a.as_fd(), b"x", &[r.as_fd(), w.as_fd()]).unwrap();
        let mut buf = [0u8; 8];
        let received = recv_fds(b.as_fd(), &mut buf, 8).unwrap();
        assert_eq!((received.len, received.control_messages), (1, 1));
        assert_eq!(received.fds.len(), 2);
        assert_same_pipe(&received.fds[1], &received.fds[0]);
    }

    #[test]
    fn fds_beyond_the_room_are_reported_truncated() {
        let (a, b) = pair(SockType::Stream);
        let (r, w) = nix::unistd::pipe().unwrap();
        // Room for one fd is padded to room for two on 64-bit: send three.
        send_fds(a.as_fd(), b"x", &[w.as_fd(), r.as_fd(), r.as_fd()]).unwrap();
        let mut buf = [0u8; 8];
        let received = recv_fds(b.as_fd(), &mut buf, 1).unwrap();
        assert!(received.control_truncated);
        assert!((1..3).contains(&received.fds.len()));
        assert_same_pipe(&received.fds[0], &r);
    }

    #[test]
    fn a_message_without_fds() {
        let (a, b) = pair(SockType::SeqPacket);
        send_fds(a.as_fd(), b"plain", &[]).unwrap();
        let mut buf = [0u8; 8];
        let received = recv_fds(b.as_fd(), &mut buf, 1).unwrap();
        assert_eq!(&buf[..received.len], b"plain");
        assert_eq!(received.control_messages, 0);
        assert!(received.fds.is_empty());
    }

    /// The length of the next datagram, left in place (as the sync channel sizes its buffer).
    fn peek_len(socket: BorrowedFd<'_>) -> usize {
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT;
        recv(socket.as_raw_fd(), &mut [], flags).unwrap()
    }

    #[test]
    fn a_datagram_received_into_a_buffer_of_its_peeked_length_then_peer_closed() {
        let (a, b) = pair(SockType::SeqPacket);
        let (_r, w) = nix::unistd::pipe().unwrap();
        send_fds(a.as_fd(), br#"{"Forked":{"pid":7}}"#, &[w.as_fd()]).unwrap();
        let len = peek_len(b.as_fd());
        assert_eq!(len, 20);
        let mut buf = vec![0u8; len];
        let received = recv_fds(b.as_fd(), &mut buf, 1).unwrap();
        assert_eq!(received.len, len);
        assert_eq!(received.fds.len(), 1);
        drop(a);
        assert_eq!(peek_len(b.as_fd()), 0);
        assert_eq!(recv_fds(b.as_fd(), &mut buf, 1).unwrap().len, 0);
    }

    #[test]
    fn send_to_a_closed_peer_fails_without_sigpipe() {
        let (a, b) = pair(SockType::Stream);
        drop(b);
        assert_eq!(send_fds(a.as_fd(), b"x", &[a.as_fd()]), Err(Errno::EPIPE));
    }
}
