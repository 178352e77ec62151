//! What a foreground `run` (or `exec`) does while its process runs: one `poll` loop over the signalfd and, with a
//! terminal, hull's stdin and the pty master. SIGCHLD reaps (any child: hull may be a subreaper), SIGWINCH resizes
//! the pty, every other signal is forwarded to the process; the loop ends when the process exits, with its exit
//! code or 128+signal. With a terminal, hull's own terminal is in raw mode meanwhile, stdin is copied to the
//! master and the master to stdout, and what the master still holds is drained before returning.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, OutputFlags, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Block the signals a foreground hull forwards, before the clone, and read them from a signalfd: no handler, no
/// thread. The new process unblocks them for itself before its execve.
pub fn block_signals() -> Result<SignalFd> {
    let mut forwarded = SigSet::all();
    forwarded.remove(Signal::SIGKILL);
    forwarded.remove(Signal::SIGSTOP);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None).context("block signals")?;
    SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC).context("create signalfd")
}

/// Wait for `pid` (a child of hull) to exit, with the signals of the caller blocked and readable on `signals`;
/// `master` is the process's pty master when it has a terminal.
pub fn wait(signals: &SignalFd, pid: Pid, master: Option<OwnedFd>) -> Result<i32> {
    let terminal = master.map(Terminal::attach).transpose()?;
    wait_with(signals, pid, terminal)
}

fn wait_with(signals: &SignalFd, pid: Pid, mut terminal: Option<Terminal>) -> Result<i32> {
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let slots = terminal.as_ref().map(|t| t.register(&mut fds));
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.context("poll signals and terminal")?,
        };
        let events: Vec<PollFlags> = fds
            .iter()
            .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if let (Some(terminal), Some(slots)) = (terminal.as_mut(), slots) {
            terminal.service(slots, &events)?;
        }
        if events[0].contains(PollFlags::POLLIN) {
            if let Some(code) = handle_signal(signals, pid, terminal.as_ref())? {
                if let Some(terminal) = terminal.as_mut() {
                    terminal.drain()?;
                }
                return Ok(code);
            }
        }
    }
}

/// Act on one signal; the exit code once `pid` has exited.
fn handle_signal(signals: &SignalFd, pid: Pid, terminal: Option<&Terminal>) -> Result<Option<i32>> {
    let Some(info) = signals.read_signal().context("read signalfd")? else {
        return Ok(None);
    };
    match (info.ssi_signo as i32, terminal) {
        (libc::SIGCHLD, _) => reap(pid),
        // As runc: a window change resizes the pty, and is not forwarded when there is none.
        (libc::SIGWINCH, terminal) => {
            if let Some(terminal) = terminal {
                terminal.resize();
            }
            Ok(None)
        }
        (sig, _) => {
            // SAFETY: plain kill(2) of a pid we created; a stale pid is excluded because we are its reaper.
            let _ = unsafe { libc::kill(pid.as_raw(), sig) };
            Ok(None)
        }
    }
}

/// Reap every exited child; the exit code (128+signal when killed) if `pid` is among them.
fn reap(pid: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(child, code)) if child == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(child, signal, _)) if child == pid => {
                return Ok(Some(128 + signal as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(e) => return Err(e).context("wait for container process"),
        }
    }
}

/// How much is read from one side per wake-up.
const CHUNK: usize = 32 * 1024;

/// Where a terminal's fds sit in the poll set.
#[derive(Clone, Copy)]
struct Slots {
    master: Option<usize>,
    input: Option<usize>,
}

/// The relay between hull's stdio and a pty master.
struct Terminal {
    /// Non-blocking; `None` once the peer side is gone (EIO).
    master: Option<OwnedFd>,
    /// hull's stdin (a duplicate), until EOF.
    input: Option<OwnedFd>,
    /// hull's stdout (a duplicate), written to completion like any program's stdout, until a write fails; output
    /// is then discarded.
    output: Option<OwnedFd>,
    /// Read from the input, not yet taken by the master (which does not block us when the process does not read).
    pending: Vec<u8>,
    /// hull's own terminal, in raw mode until this is dropped.
    host: Option<RawMode>,
}

impl Terminal {
    /// Relay between hull's stdio and `master`, with hull's terminal (if it has one) in raw mode.
    fn attach(master: OwnedFd) -> Result<Terminal> {
        let input = std::io::stdin().as_fd().try_clone_to_owned().ok();
        let output = std::io::stdout().as_fd().try_clone_to_owned().ok();
        let host = RawMode::find_host()?;
        Terminal::new(master, input, output, host)
    }

    fn new(
        master: OwnedFd,
        input: Option<OwnedFd>,
        output: Option<OwnedFd>,
        host: Option<RawMode>,
    ) -> Result<Terminal> {
        let flags = fcntl(&master, FcntlArg::F_GETFL).context("get pty master flags")?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&master, FcntlArg::F_SETFL(flags)).context("make pty master non-blocking")?;
        // As runc (ClearONLCR): termios set through a master apply to its peer, so the process's "\n" reaches
        // the output as is; hull's terminal, raw but with output processing, adds the "\r".
        let mut attrs = tcgetattr(&master).context("get pty master attributes")?;
        attrs.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(&master, SetArg::TCSANOW, &attrs).context("set pty master attributes")?;
        let terminal = Terminal {
            master: Some(master),
            input,
            output,
            pending: Vec::new(),
            host,
        };
        terminal.resize();
        Ok(terminal)
    }

    /// Copy hull's terminal size to the pty (errors ignored, as runc: the terminal may be gone).
    fn resize(&self) {
        if let (Some(host), Some(master)) = (&self.host, &self.master) {
            let _ = copy_window_size(host.fd.as_fd(), master.as_fd());
        }
    }

    /// Add the fds this terminal waits on to `fds`: the master (readable; writable while input is pending) and
    /// the input (only when nothing is pending, so a process that does not read cannot make us buffer forever).
    fn register<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) -> Slots {
        let mut slots = Slots {
            master: None,
            input: None,
        };
        if let Some(master) = &self.master {
            let mut events = PollFlags::POLLIN;
            if !self.pending.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            slots.master = Some(fds.len());
            fds.push(PollFd::new(master.as_fd(), events));
            if let Some(input) = self.input.as_ref().filter(|_| self.pending.is_empty()) {
                slots.input = Some(fds.len());
                fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
            }
        }
        slots
    }

    fn service(&mut self, slots: Slots, events: &[PollFlags]) -> Result<()> {
        let ready = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        let master = slots.master.map_or(PollFlags::empty(), |i| events[i]);
        if master.intersects(ready) {
            self.copy_from_master()?;
        }
        if slots.input.is_some_and(|i| events[i].intersects(ready)) {
            self.read_input();
        }
        self.flush_pending()
    }

    /// One read from the master to the output; `false` when there is nothing (more) to read now.
    fn copy_from_master(&mut self) -> Result<bool> {
        let Some(master) = &self.master else {
            return Ok(false);
        };
        let mut buf = vec![0u8; CHUNK];
        let n = loop {
            match nix::unistd::read(master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    self.peer_gone();
                    return Ok(false);
                }
                Ok(n) => break n,
                Err(Errno::EAGAIN) => return Ok(false),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("read from pty master"),
            }
        };
        self.write_output(&buf[..n]);
        Ok(true)
    }

    /// Read what stdin has into `pending`; EOF (or an error) stops reading it, leaving the pty as it is.
    fn read_input(&mut self) {
        let Some(input) = &self.input else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        match nix::unistd::read(input, &mut buf) {
            Ok(n) if n > 0 => self.pending.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            _ => self.input = None,
        }
    }

    /// Write as much pending input to the master as it takes without blocking.
    fn flush_pending(&mut self) -> Result<()> {
        while !self.pending.is_empty() {
            let Some(master) = &self.master else {
                self.pending.clear();
                break;
            };
            match nix::unistd::write(master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(Errno::EIO) => self.peer_gone(),
                Err(e) => return Err(e).context("write to pty master"),
            }
        }
        Ok(())
    }

    /// Write all of `data` to the output, waiting for it if it is non-blocking; on error, stop writing.
    fn write_output(&mut self, mut data: &[u8]) {
        let Some(output) = &self.output else {
            return;
        };
        while !data.is_empty() {
            match nix::unistd::write(output, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    let mut fds = [PollFd::new(output.as_fd(), PollFlags::POLLOUT)];
                    if matches!(poll(&mut fds, PollTimeout::NONE), Err(e) if e != Errno::EINTR) {
                        self.output = None;
                        return;
                    }
                }
                Err(_) => {
                    self.output = None;
                    return;
                }
            }
        }
    }

    /// The peer side is closed: nothing more comes out of the master, and nothing can go in.
    fn peer_gone(&mut self) {
        self.master = None;
        self.input = None;
        self.pending.clear();
    }

    /// Once the process has exited: copy what the master still holds to the output.
    fn drain(&mut self) -> Result<()> {
        while self.copy_from_master()? {}
        Ok(())
    }
}

/// A terminal put in raw mode; its attributes are restored on drop, on every way out of the loop.
struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// hull's terminal (see `host_terminal`) in raw mode; none is fine (the pty is then relayed without raw mode
    /// or resizing).
    fn find_host() -> Result<Option<RawMode>> {
        host_terminal().map(RawMode::enter).transpose()
    }

    /// cfmakeraw, but output processing stays on, as runc's (containerd/console's) SetRaw.
    fn enter(fd: OwnedFd) -> Result<RawMode> {
        let saved = tcgetattr(&fd).context("get terminal attributes")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        raw.output_flags.insert(OutputFlags::OPOST);
        tcsetattr(&fd, SetArg::TCSANOW, &raw).context("set terminal to raw mode")?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// hull's terminal as runc finds it: the first of stderr, stdout and stdin that is a terminal, else the
/// controlling terminal.
fn host_terminal() -> Option<OwnedFd> {
    let stdio = [
        std::io::stderr().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
        std::io::stdin().as_fd().try_clone_to_owned(),
    ];
    stdio
        .into_iter()
        .flatten()
        .find(|fd| nix::unistd::isatty(fd).unwrap_or(false))
        .or_else(|| {
            let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
            nix::fcntl::open("/dev/tty", flags, Mode::empty()).ok()
        })
}

/// The window size of hull's terminal as (rows, cols), if it has one: the size a relayed pty starts with, so the
/// process never sees an unsized terminal before the relay begins.
pub fn host_window_size() -> Option<(u16, u16)> {
    let tty = host_terminal()?;
    // SAFETY: winsize is plain integers; all-zero is valid.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer, which is valid for the call.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut size) }).ok()?;
    Some((size.ws_row, size.ws_col))
}

/// `TIOCGWINSZ` on `from`, `TIOCSWINSZ` on `to`.
fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: winsize is plain integers; all-zero is valid.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer, which is valid for the call.
    Errno::result(unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid for the call.
    Errno::result(unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size) }).map(drop)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Read, Seek};
    use std::time::Duration;

    use nix::pty::openpty;
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::signalfd::SfdFlags;
    use nix::sys::termios::LocalFlags;
    use nix::unistd::{fork, ForkResult};

    use crate::sys;

    /// Exit code of a test child whose loop failed.
    const LOOP_FAILED: i32 = 250;

    /// How long a forked test child may take.
    const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

    /// Runs `body` in a forked child and returns its exit code (tests that reap any child, block signals, change
    /// their session, stdio or mount namespace). The child of the multi-threaded test harness is single-threaded:
    /// glibc's fork leaves malloc usable in it, but a lock another thread held at the fork (stdio, backtraces) stays
    /// held, so `body` should print nothing and report failures by exit code; a child that hangs all the same is
    /// killed after `CHILD_TIMEOUT`. It ends in `_exit`, never returning into the harness.
    pub(crate) fn in_child(body: impl FnOnce() -> i32) -> i32 {
        // SAFETY: see above.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
                sys::exit_now(code.unwrap_or(255))
            }
            ForkResult::Parent { child } => {
                let pidfd = sys::pidfd_open(child).unwrap();
                let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                let timeout = PollTimeout::try_from(CHILD_TIMEOUT).unwrap();
                if poll(&mut fds, timeout).unwrap() == 0 {
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    panic!("test child {child} still running after {CHILD_TIMEOUT:?}");
                }
                match waitpid(child, None).unwrap() {
                    WaitStatus::Exited(_, code) => code,
                    other => panic!("test child ended with {other:?}"),
                }
            }
        }
    }

    /// In the forked child: block signals as `run` does, start `process` in a grandchild (signals unblocked) and
    /// return what the loop returns for it, with the terminal that `setup` makes once the grandchild runs.
    fn foreground(process: impl FnOnce() -> i32, setup: impl FnOnce() -> Option<Terminal>) -> i32 {
        let mut blocked = SigSet::all();
        blocked.remove(Signal::SIGKILL);
        blocked.remove(Signal::SIGSTOP);
        let Ok(()) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)
        else {
            return LOOP_FAILED;
        };
        let Ok(signals) = SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC) else {
            return LOOP_FAILED;
        };
        // SAFETY: this process is single-threaded (see `in_child`).
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let _ = nix::sys::signal::sigprocmask(
                    SigmaskHow::SIG_SETMASK,
                    Some(&SigSet::empty()),
                    None,
                );
                sys::exit_now(process())
            }
            Ok(ForkResult::Parent { child }) => {
                // The fds the process captured (a pty peer) must not stay open here.
                drop(process);
                let terminal = setup();
                wait_with(&signals, child, terminal).unwrap_or(LOOP_FAILED)
            }
            Err(_) => LOOP_FAILED,
        }
    }

    #[test]
    fn returns_the_exit_code() {
        assert_eq!(in_child(|| foreground(|| 3, || None)), 3);
    }

    #[test]
    fn killed_process_returns_128_plus_signal() {
        let code = in_child(|| {
            foreground(
                || {
                    // SAFETY: raise has no preconditions.
                    unsafe { libc::raise(libc::SIGKILL) };
                    0
                },
                || None,
            )
        });
        assert_eq!(code, 137);
    }

    #[test]
    fn signals_are_forwarded() {
        let code = in_child(|| {
            foreground(
                || loop {
                    // SAFETY: pause has no preconditions; SIGTERM's default action ends the process.
                    unsafe { libc::pause() };
                },
                || {
                    // SAFETY: kill(2) of our own pid; SIGTERM is blocked here and read from the signalfd.
                    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                    None
                },
            )
        });
        assert_eq!(code, 128 + libc::SIGTERM);
    }

    #[test]
    fn terminal_relays_input_and_output() {
        let mut output = tempfile::tempfile().unwrap();
        let output_fd = OwnedFd::from(output.try_clone().unwrap());
        let code = in_child(move || {
            let Ok(pty) = openpty(None, None) else {
                return LOOP_FAILED;
            };
            let Ok((input, feed)) = nix::unistd::pipe() else {
                return LOOP_FAILED;
            };
            let (master, peer) = (pty.master, pty.slave);
            foreground(
                move || {
                    // The process: its stdio is the pty; it echoes one line back and exits 7.
                    let _ = nix::unistd::setsid();
                    let dups = nix::unistd::dup2_stdin(&peer)
                        .and_then(|()| nix::unistd::dup2_stdout(&peer));
                    if dups.is_err() {
                        return 1;
                    }
                    let mut line = [0u8; 64];
                    let n = nix::unistd::read(std::io::stdin(), &mut line).unwrap_or(0);
                    let reply = [b"got ".as_slice(), &line[..n]].concat();
                    let _ = nix::unistd::write(std::io::stdout(), &reply);
                    7
                },
                move || {
                    let _ = nix::unistd::write(&feed, b"ping\n");
                    drop(feed);
                    Terminal::new(master, Some(input), Some(output_fd), None).ok()
                },
            )
        });
        assert_eq!(code, 7);
        let mut text = String::new();
        output.rewind().unwrap();
        output.read_to_string(&mut text).unwrap();
        assert!(text.ends_with("got ping\n"), "{text:?}");
    }

    #[test]
    fn raw_mode_is_restored_on_drop() {
        let host = openpty(None, None).unwrap();
        let before = tcgetattr(&host.slave).unwrap();
        let raw = RawMode::enter(host.slave.try_clone().unwrap()).unwrap();
        let during = tcgetattr(&host.slave).unwrap();
        assert!(!during.local_flags.contains(LocalFlags::ICANON));
        assert!(!during.local_flags.contains(LocalFlags::ECHO));
        assert!(during.output_flags.contains(OutputFlags::OPOST));
        drop(raw);
        assert_eq!(tcgetattr(&host.slave).unwrap(), before);
    }

    #[test]
    fn window_size_follows_the_host_terminal() {
        let host = openpty(None, None).unwrap();
        let pty = openpty(None, None).unwrap();
        let size = libc::winsize {
            ws_row: 31,
            ws_col: 99,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid for the call.
        let ret = unsafe { libc::ioctl(host.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        Errno::result(ret).unwrap();
        copy_window_size(host.slave.as_fd(), pty.master.as_fd()).unwrap();
        // SAFETY: winsize is plain integers; all-zero is valid.
        let mut got: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes a winsize through the pointer, which is valid for the call.
        let ret = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut got) };
        Errno::result(ret).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (31, 99));
    }
}
