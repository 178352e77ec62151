//! Terminals for containers. The parent side connects to `--console-socket`; the container side, after
//! `pivot_root`, allocates a pty from the container's own devpts (hardened as runc is since CVE-2025-52565),
//! bind-mounts the peer over `/dev/console`, sends the master to the socket and makes the peer its controlling
//! terminal and stdio. `send_fd` and `recv_fd` are runc's SCM_RIGHTS framing (also that of `--pidfd-socket`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, AT_FDCWD};
use nix::mount::MsFlags;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, DEVPTS_SUPER_MAGIC};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use crate::fdpass;
use crate::inroot::{fd_path, RESOLVE_NO_SYMLINKS};
use crate::sys;

/// A fd's name must be shorter than this (runc's `MaxNameLen`); receivers read at most this many bytes.
const MAX_NAME_LEN: usize = 4096;

/// The name runc sends with the master since its CVE-2025-52565 fix (informational: receivers ignore it).
pub const MASTER_NAME: &str = "/dev/pts/ptmx";

/// `ptmx` in a devpts mount: inode 2, character device 5:2 (fs/devpts/inode.c, TTYAUX_MAJOR).
const PTMX_INODE: u64 = 2;
const PTMX_DEVICE: (u64, u64) = (5, 2);
/// Pty peers are character devices `136:<pty number>` (UNIX98_PTY_SLAVE_MAJOR).
const PEER_MAJOR: u64 = 136;

/// Connect to the caller's `--console-socket` (parent side, before the clone: the child inherits the fd).
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("create console socket")?;
    let addr =
        UnixAddr::new(path).with_context(|| format!("console socket path {}", path.display()))?;
    connect(fd.as_raw_fd(), &addr)
        .with_context(|| format!("connect to console socket {}", path.display()))?;
    Ok(fd)
}

/// A connected stream socketpair for a foreground `run`/`exec`, where hull receives the master itself:
/// `(hull's end, the new process's end)`.
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("create console socketpair")
}

/// The container side of a terminal, in the new process: allocate the pty (sized `process.consoleSize`), send
/// the master over `socket`, bind the peer over /dev/console for a container init (`mount_dev_console`), and make
/// the peer the process's controlling terminal and stdio, owned by `uid`.
pub fn set_up(
    socket: BorrowedFd<'_>,
    size: Option<(u16, u16)>,
    mount_dev_console: bool,
    uid: u32,
) -> Result<()> {
    let pty = open_pty(size)?;
    send_fd(socket, MASTER_NAME, pty.master.as_fd()).context("send the pty master")?;
    drop(pty.master);
    if mount_dev_console {
        mount_console(pty.peer.as_fd())?;
    }
    become_controlling(pty.peer, uid)
}

/// A freshly allocated pty pair, both ends `O_RDWR | O_NOCTTY | O_CLOEXEC`.
pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
}

/// Allocate a pty from the container's devpts (`/dev/pts`, so after `pivot_root`), sized `(rows, cols)` when
/// both are non-zero (`process.consoleSize`).
pub fn open_pty(size: Option<(u16, u16)>) -> Result<Pty> {
    open_pty_in(Path::new("/dev/pts"), size)
}

/// Allocate a pty from the devpts mounted at `devpts`: `ptmx` is opened without following any symlink and
/// checked to be the real ptmx of a devpts mount before it is opened for real, as is the peer when it must be
/// looked up by number.
fn open_pty_in(devpts: &Path, size: Option<(u16, u16)>) -> Result<Pty> {
    let ptmx = devpts.join("ptmx");
    let handle = open_handle(&ptmx)?;
    let stat = verify_devpts_device(handle.as_fd(), &ptmx, PTMX_DEVICE)?;
    if stat.st_ino != PTMX_INODE {
        bail!(
            "{} has inode {}, not that of a devpts ptmx ({PTMX_INODE})",
            ptmx.display(),
            stat.st_ino
        );
    }
    let master = reopen(&handle, &ptmx)?;
    let unlocked: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, which is valid for the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlocked) };
    Errno::result(ret).context("unlock the new pty")?;
    let peer = match peer_by_ioctl(master.as_fd()) {
        // Kernels before 4.13 have no TIOCGPTPEER: look the peer up by its number.
        Err(Errno::EINVAL | Errno::ENOTTY) => peer_by_number(master.as_fd(), devpts)?,
        other => other.context("get the peer of the new pty")?,
    };
    if let Some((rows, cols)) = size.filter(|&(rows, cols)| rows != 0 && cols != 0) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid for the call.
        let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        Errno::result(ret).context("set the console size")?;
    }
    Ok(Pty { master, peer })
}

/// An `O_PATH` handle of `path`, refusing symlinks in any component (a trailing one comes back as the link itself,
/// which the checks then refuse).
fn open_handle(path: &Path) -> Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("path {} contains a NUL byte", path.display()))?;
    sys::openat2(
        AT_FDCWD,
        &c_path,
        (OFlag::O_PATH | OFlag::O_NOFOLLOW).bits(),
        RESOLVE_NO_SYMLINKS,
    )
    .with_context(|| format!("open {}", path.display()))
}

/// Check that `fd` (a handle of `path`) is the character device `major:minor` on a devpts mount.
fn verify_devpts_device(fd: BorrowedFd<'_>, path: &Path, device: (u64, u64)) -> Result<FileStat> {
    let stat = fstat(fd).with_context(|| format!("stat {}", path.display()))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFLNK {
        bail!("{} is a symlink", path.display());
    }
    let fs = fstatfs(fd).with_context(|| format!("statfs {}", path.display()))?;
    if fs.filesystem_type() != DEVPTS_SUPER_MAGIC {
        bail!(
            "{} is not on a devpts mount (filesystem magic {:#x})",
            path.display(),
            fs.filesystem_type().0
        );
    }
    let (major, minor) = device;
    if kind != SFlag::S_IFCHR || stat.st_rdev != nix::sys::stat::makedev(major, minor) {
        bail!(
            "{} is not the character device {major}:{minor} (type {:#o}, device {}:{})",
            path.display(),
            kind.bits(),
            nix::sys::stat::major(stat.st_rdev),
            nix::sys::stat::minor(stat.st_rdev)
        );
    }
    Ok(stat)
}

/// Open the file behind the verified handle `O_RDWR | O_NOCTTY` through `/proc/self/fd`, and make sure that is
/// what came back (a bogus /proc could hand out another file).
fn reopen(handle: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        fd_path(handle).as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("reopen {}", path.display()))?;
    let (want, got) = (fstat(handle), fstat(&fd));
    let (want, got) = (
        want.with_context(|| format!("stat {}", path.display()))?,
        got.with_context(|| format!("stat reopened {}", path.display()))?,
    );
    if (want.st_dev, want.st_ino) != (got.st_dev, got.st_ino) {
        bail!(
            "reopening {} through /proc/self/fd gave another file",
            path.display()
        );
    }
    Ok(fd)
}

/// `ioctl(master, TIOCGPTPEER)`: the peer, opened without any path lookup.
fn peer_by_ioctl(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new fd, which we take ownership of.
    let fd = Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: a new descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The peer as `<devpts>/<TIOCGPTN>`, checked to be that pty's device on devpts before it is opened.
fn peer_by_number(master: BorrowedFd<'_>, devpts: &Path) -> Result<OwnedFd> {
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer, which is valid for the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) };
    Errno::result(ret).context("get the number of the new pty")?;
    let path = devpts.join(number.to_string());
    let handle = open_handle(&path)?;
    verify_devpts_device(handle.as_fd(), &path, (PEER_MAJOR, u64::from(number)))?;
    reopen(&handle, &path)
}

/// Send `fd` over the unix socket with `name` as the payload: one `sendmsg`, one `SCM_RIGHTS` message carrying
/// one fd. The name must not be empty (a stream socket does not carry ancillary data without a byte).
pub fn send_fd(socket: BorrowedFd<'_>, name: &str, fd: BorrowedFd<'_>) -> Result<()> {
    if name.is_empty() || name.len() >= MAX_NAME_LEN {
        bail!(
            "fd name {name:?} must be 1 to {} bytes long",
            MAX_NAME_LEN - 1
        );
    }
    let sent = fdpass::send_fds(socket, name.as_bytes(), &[fd])
        .with_context(|| format!("send {name} over socket"))?;
    if sent != name.len() {
        bail!(
            "send {name} over socket: sent {sent} of {} bytes",
            name.len()
        );
    }
    Ok(())
}

/// Receive one fd sent by [`send_fd`] (or runc): the name (under 4096 bytes) and exactly one fd in exactly one
/// control message, as go-runc's receiver requires. The fds of a refused message are closed (the kernel closes
/// those beyond the 8 there is room for, and the message is refused as truncated).
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<(String, OwnedFd)> {
    let mut name = vec![0u8; MAX_NAME_LEN];
    // Room for more fds than one, so that a sender's extra fds arrive here and are closed, not leaked.
    let mut received = fdpass::recv_fds(socket, &mut name, 8).context("receive fd over socket")?;
    if received.control_truncated {
        // The errno nix gives truncated control data, which this error has always carried.
        return Err(Errno::ENOBUFS).context("receive fd over socket: control data truncated");
    }
    let bytes = received.len;
    if bytes >= MAX_NAME_LEN {
        bail!(
            "receive fd over socket: name of {bytes} bytes or more, at most {} allowed",
            MAX_NAME_LEN - 1
        );
    }
    if received.control_messages != 1 {
        bail!(
            "receive fd over socket: {} control messages, want 1",
            received.control_messages
        );
    }
    if received.fds.len() != 1 {
        bail!("receive fd over socket: {} fds, want 1", received.fds.len());
    }
    let name = String::from_utf8_lossy(&name[..bytes]).into_owned();
    Ok((name, received.fds.remove(0)))
}

/// Bind-mount the pty `peer` over `/dev/console` (created as an empty 0666 file when missing; a symlink there is
/// refused). Both ends are named through `/proc/self/fd`, so no path is resolved twice.
pub fn mount_console(peer: BorrowedFd<'_>) -> Result<()> {
    mount_console_at(peer, Path::new("/dev/console"))
}

fn mount_console_at(peer: BorrowedFd<'_>, console: &Path) -> Result<()> {
    let target = console_target(console)?;
    nix::mount::mount(
        Some(fd_path(&peer).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mount the console pty onto {}", console.display()))
}

fn console_target(console: &Path) -> Result<OwnedFd> {
    let create = OFlag::O_RDONLY
        | OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_NOFOLLOW
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    match nix::fcntl::open(console, create, Mode::from_bits_truncate(0o666)) {
        Ok(fd) => {
            // The umask may have removed bits.
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o666))
                .with_context(|| format!("chmod {}", console.display()))?;
            Ok(fd)
        }
        Err(Errno::EEXIST) => {
            let fd = nix::fcntl::open(
                console,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", console.display()))?;
            let stat = fstat(&fd).with_context(|| format!("stat {}", console.display()))?;
            if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                bail!("{} is a symlink", console.display());
            }
            Ok(fd)
        }
        Err(e) => Err(e).with_context(|| format!("create {}", console.display())),
    }
}

/// Make `peer` the controlling terminal and the stdin, stdout and stderr of this process, in a new session. As
/// runc's `fixStdioPermissions`, the pty is first given to `uid` (its group stays devpts's `gid=`), unless the
/// owner cannot be changed (unmapped ids, read-only mount). Call before dropping privileges.
pub fn become_controlling(peer: OwnedFd, uid: u32) -> Result<()> {
    give_to(&peer, uid)?;
    match nix::unistd::setsid() {
        Ok(_) => {}
        Err(Errno::EPERM) if nix::unistd::getsid(None) == Ok(nix::unistd::getpid()) => {}
        Err(e) => return Err(e).context("setsid"),
    }
    // A peer that landed on 0, 1 or 2 (closed stdio) moves up first, so that each dup2 below makes a real copy.
    let peer = if peer.as_raw_fd() <= libc::STDERR_FILENO {
        let moved = peer.try_clone().context("duplicate the console pty")?;
        drop(peer);
        moved
    } else {
        peer
    };
    nix::unistd::dup2_stdin(&peer).context("dup the console pty onto stdin")?;
    nix::unistd::dup2_stdout(&peer).context("dup the console pty onto stdout")?;
    nix::unistd::dup2_stderr(&peer).context("dup the console pty onto stderr")?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal a terminal that is another session's).
    let ret = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) };
    Errno::result(ret).context("make the console pty the controlling terminal")?;
    Ok(())
}

fn give_to(peer: &OwnedFd, uid: u32) -> Result<()> {
    let stat = fstat(peer).context("stat the console pty")?;
    if stat.st_uid == uid {
        return Ok(());
    }
    match nix::unistd::fchown(
        peer,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(stat.st_gid)),
    ) {
        Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("chown the console pty to uid {uid}")),
    }
}

/// Where a process with `terminal: true` sends its pty master: the caller's `--console-socket`, or (foreground
/// `run`/`exec`) one end of a socketpair whose other end hull keeps, to relay the terminal itself.
pub struct ConsoleLink {
    /// Given to the new process.
    pub socket: OwnedFd,
    /// hull's end, when hull is the receiver.
    pub receiver: Option<OwnedFd>,
    /// The size the pty is allocated with: `process.consoleSize`, else hull's own terminal's when hull relays
    /// it (the relay keeps it in step later; runc only sizes it then, after the process may have looked).
    pub size: Option<(u16, u16)>,
}

impl ConsoleLink {
    pub fn open(process: &Process, console_socket: Option<&Path>) -> Result<Option<ConsoleLink>> {
        if !process.terminal().unwrap_or(false) {
            return Ok(None);
        }
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        Ok(Some(match console_socket {
            Some(path) => ConsoleLink {
                socket: connect_socket(path)?,
                receiver: None,
                size,
            },
            None => {
                let (receiver, socket) = socket_pair()?;
                ConsoleLink {
                    socket,
                    receiver: Some(receiver),
                    size: size.or_else(crate::foreground::host_window_size),
                }
            }
        }))
    }

    /// The master, when hull is the receiver (the process sent it during its setup).
    pub fn master(&self) -> Result<Option<OwnedFd>> {
        match &self.receiver {
            Some(receiver) => Ok(Some(recv_fd(receiver.as_fd())?.1)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::socketpair;

    use crate::foreground::tests::in_child;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn window_size(fd: BorrowedFd<'_>) -> (u16, u16) {
        // SAFETY: winsize is plain integers; all-zero is valid.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes a winsize through the pointer, which is valid for the call.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        Errno::result(ret).unwrap();
        (size.ws_row, size.ws_col)
    }

    #[test]
    fn send_and_receive_a_fd() {
        let (a, b) = pair();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(a.as_fd(), MASTER_NAME, w.as_fd()).unwrap();
        drop(w);
        let (name, received) = recv_fd(b.as_fd()).unwrap();
        assert_eq!(name, MASTER_NAME);
        nix::unistd::write(&received, b"through").unwrap();
        drop(received);
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"through");
    }

    #[test]
    fn receive_refuses_two_fds() {
        let (a, b) = pair();
        let (r, w) = nix::unistd::pipe().unwrap();
        fdpass::send_fds(a.as_fd(), b"x", &[r.as_fd(), w.as_fd()]).unwrap();
        let err = recv_fd(b.as_fd()).unwrap_err();
        assert_eq!(err.to_string(), "receive fd over socket: 2 fds, want 1");
    }

    #[test]
    fn receive_refuses_a_message_without_fd() {
        let (a, b) = pair();
        nix::unistd::write(&a, b"/dev/ptmx").unwrap();
        let err = recv_fd(b.as_fd()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "receive fd over socket: 0 control messages, want 1"
        );
    }

    #[test]
    fn send_refuses_an_empty_name() {
        let (a, _b) = pair();
        assert!(send_fd(a.as_fd(), "", a.as_fd()).is_err());
    }

    #[test]
    fn connect_names_the_missing_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody.sock");
        let err = connect_socket(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("connect to console socket {}", path.display())
        );
    }

    #[test]
    fn pty_from_the_host_devpts() {
        let pty = open_pty_in(Path::new("/dev/pts"), Some((42, 137))).unwrap();
        assert_eq!(window_size(pty.peer.as_fd()), (42, 137));
        nix::unistd::write(&pty.peer, b"hello").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&pty.master, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
    }

    #[test]
    fn zero_console_size_is_left_alone() {
        let pty = open_pty_in(Path::new("/dev/pts"), Some((0, 80))).unwrap();
        assert_eq!(window_size(pty.peer.as_fd()), (0, 0));
    }

    #[test]
    fn peer_by_number_matches_the_ioctl() {
        let pty = open_pty_in(Path::new("/dev/pts"), None).unwrap();
        let peer = peer_by_number(pty.master.as_fd(), Path::new("/dev/pts")).unwrap();
        let (a, b) = (fstat(&pty.peer).unwrap(), fstat(&peer).unwrap());
        assert_eq!(a.st_rdev, b.st_rdev);
    }

    #[test]
    fn ptmx_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/pts/ptmx", dir.path().join("ptmx")).unwrap();
        let err = open_pty_in(dir.path(), None)
            .err()
            .expect("a symlinked ptmx is refused");
        assert_eq!(
            err.to_string(),
            format!("{}/ptmx is a symlink", dir.path().display())
        );
    }

    #[test]
    fn ptmx_outside_devpts_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ptmx = CString::new(dir.path().join("ptmx").as_os_str().as_bytes()).unwrap();
        nix::sys::stat::mknod(
            ptmx.as_c_str(),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(5, 2),
        )
        .unwrap();
        let err = open_pty_in(dir.path(), None)
            .err()
            .expect("a ptmx node outside devpts is refused");
        assert!(
            err.to_string().contains("is not on a devpts mount"),
            "{err}"
        );
    }

    /// Exit codes of the forked tests' children, one per failed step.
    const SETUP_FAILED: i32 = 10;
    const MOUNT_FAILED: i32 = 11;
    const WRONG_DEVICE: i32 = 12;
    const NOT_CONTROLLING: i32 = 13;
    const WRONG_OWNER: i32 = 14;

    #[test]
    fn peer_becomes_the_controlling_terminal_and_stdio() {
        let code = in_child(|| {
            let Ok(pty) = open_pty_in(Path::new("/dev/pts"), None) else {
                return SETUP_FAILED;
            };
            let Ok(before) = fstat(&pty.peer) else {
                return SETUP_FAILED;
            };
            // Closing the master would hang up this session (SIGHUP) before the child exits.
            let master = pty.master;
            if become_controlling(pty.peer, 4242).is_err() {
                return NOT_CONTROLLING;
            }
            let stdio = [
                fstat(std::io::stdin()),
                fstat(std::io::stdout()),
                fstat(std::io::stderr()),
            ];
            for stat in stdio {
                match stat {
                    Ok(s) if s.st_rdev == before.st_rdev => {}
                    _ => return NOT_CONTROLLING,
                }
            }
            if nix::sys::termios::tcgetsid(std::io::stdin()) != Ok(nix::unistd::getpid()) {
                return NOT_CONTROLLING;
            }
            let code = match fstat(std::io::stdin()) {
                Ok(s) if s.st_uid == 4242 && s.st_gid == before.st_gid => 0,
                _ => WRONG_OWNER,
            };
            std::mem::forget(master);
            code
        });
        assert_eq!(code, 0, "see the exit codes above the tests");
    }

    #[test]
    fn console_is_bind_mounted() {
        let code = in_child(|| {
            // A private mount namespace; the pty comes from its /dev/pts (a bind mount refuses a source from
            // another namespace), then a tmpfs hides the host's /dev.
            let private = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).and_then(|()| {
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
            });
            if private.is_err() {
                return SETUP_FAILED;
            }
            let Ok(pty) = open_pty_in(Path::new("/dev/pts"), None) else {
                return SETUP_FAILED;
            };
            let tmpfs = nix::mount::mount(
                Some("tmpfs"),
                "/dev",
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            );
            if tmpfs.is_err() {
                return SETUP_FAILED;
            }
            if mount_console(pty.peer.as_fd()).is_err() {
                return MOUNT_FAILED;
            }
            match (nix::sys::stat::stat("/dev/console"), fstat(&pty.peer)) {
                (Ok(console), Ok(peer)) if console.st_rdev == peer.st_rdev => 0,
                _ => WRONG_DEVICE,
            }
        });
        assert_eq!(code, 0, "see the exit codes above the tests");
    }

    #[test]
    fn console_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let console = dir.path().join("console");
        std::os::unix::fs::symlink("/dev/null", &console).unwrap();
        let pty = open_pty_in(Path::new("/dev/pts"), None).unwrap();
        let err = mount_console_at(pty.peer.as_fd(), &console).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} is a symlink", console.display())
        );
    }
}
