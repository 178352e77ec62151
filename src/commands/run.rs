use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cli::{check_args, Arity, RunArgs};
use crate::state::Root;
use crate::sys;
use crate::{notify, spawn};

/// `run`: create + start; in the foreground, forward signals to the init, reap, exit with its status (128+signal
/// when killed) and delete the container unless `--keep`.
pub fn run(root: &Root, args: &RunArgs) -> Result<i32> {
    check_args("run", &args.args, Arity::Exact(1))?;
    let id = &args.args[0];
    if args.detach {
        let container = spawn::create(root, id, &args.opts, true)?;
        if let Some(pending) = spawn::release_notifying(&container)? {
            pending.forward()?;
        }
        return Ok(0);
    }
    if !args.no_subreaper {
        sys::set_child_subreaper().context("become child subreaper")?;
    }
    let signals = block_signals()?;

    let container = spawn::create(root, id, &args.opts, false)?;
    let init = Pid::from_raw(container.state.init_pid);
    let outcome = spawn::release_notifying(&container)
        .and_then(|pending| pending.map_or(Ok(()), notify::Pending::forward))
        .and_then(|()| wait_for_exit(&signals, init));
    if !args.keep {
        if outcome.is_err() {
            let _ = container.kill_all();
        }
        container.destroy()?;
    }
    outcome
}

/// Signals are blocked before the clone and read from a signalfd: no handler, no thread. The new process unblocks
/// them for itself before its execve.
pub fn block_signals() -> Result<SignalFd> {
    let mut forwarded = SigSet::all();
    forwarded.remove(Signal::SIGKILL);
    forwarded.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)
        .context("block signals")?;
    SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC).context("create signalfd")
}

pub fn wait_for_exit(signals: &SignalFd, init: Pid) -> Result<i32> {
    loop {
        let Some(info) = signals.read_signal().context("read signalfd")? else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig != libc::SIGCHLD {
            // SAFETY: plain kill(2) of a pid we created; a stale pid is excluded because we are its reaper.
            let _ = unsafe { libc::kill(init.as_raw(), sig) };
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == init => return Ok(code),
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == init => {
                    return Ok(128 + signal as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(_) => continue,
                Err(e) => return Err(e).context("wait for container init"),
            }
        }
    }
}
