//! `start`: release a parked init through its exec fifo, and wait for its execve when hooks must run after it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use crate::container::Container;
use crate::hooks::{self, Kind};
use crate::logger::{self, Level};
use crate::notify;
use crate::state::EXEC_FIFO;

/// Release the init. With `NOTIFY_SOCKET` set, the container's notify socket is bound first, and the caller gets
/// the wait for its `READY=` (runc's `start` and `run` wait; `start` does it without holding the state lock).
pub fn release_notifying(container: &Container) -> Result<Option<notify::Pending>> {
    let Some(host) = notify::host_socket() else {
        release(container)?;
        return Ok(None);
    };
    let socket = notify::bind_socket(&container.dir)?;
    release(container)?;
    Ok(Some(notify::Pending {
        socket,
        host,
        init: Pid::from_raw(container.state.init_pid),
    }))
}

/// `start`: release a parked init by writing to its exec fifo, then remove the fifo (the "created" marker). When
/// startContainer or poststart hooks exist, first wait for the init's execve (see `await_exec`); if a
/// startContainer hook failed, the container is destroyed (the runtime spec goes on to its destruction).
fn release(container: &Container) -> Result<()> {
    let fifo_path = container.dir.join(EXEC_FIFO);
    let fifo = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
    {
        Ok(f) => f,
        // No reader left: the init died while parked.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            bail!("cannot start a container that has stopped")
        }
        Err(e) => return Err(e).with_context(|| format!("open {}", fifo_path.display())),
    };
    (&fifo)
        .write_all(b"0")
        .with_context(|| format!("write {}", fifo_path.display()))?;
    let hooks = container.state.hooks.as_ref();
    if hooks::any(hooks, &[Kind::StartContainer, Kind::Poststart]) {
        if let Err(err) = await_exec(fifo.as_fd(), &fifo_path) {
            if let Err(e) = container.kill_all().and_then(|()| container.destroy()) {
                logger::log(
                    Level::Warning,
                    &format!("destroy after a failed start: {e:#}"),
                );
            }
            return Err(err);
        }
    }
    fs::remove_file(&fifo_path).with_context(|| format!("remove {}", fifo_path.display()))
}

/// Wait until the released init has closed the exec fifo (`fifo` is our write end, which reports POLLERR once no
/// reader is left): its execve closed it, or it exited. A startContainer hook's failure is what the init wrote
/// into the fifo before exiting (`Init::fail_start`); our "0" still there means it died before it was released.
fn await_exec(fifo: BorrowedFd<'_>, path: &Path) -> Result<()> {
    loop {
        match poll(
            &mut [PollFd::new(fifo, PollFlags::empty())],
            PollTimeout::NONE,
        ) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("wait on {}", path.display())),
        }
    }
    let mut left = Vec::new();
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    // Our own write end keeps the fifo open: its end shows as EAGAIN, not EOF.
    match reader.read_to_end(&mut left) {
        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
            return Err(e).with_context(|| format!("read {}", path.display()))
        }
        _ => {}
    }
    match left.as_slice() {
        [] => Ok(()),
        [b'0', ..] => bail!("container init exited before it was started"),
        text => bail!("{}", String::from_utf8_lossy(text)),
    }
}
