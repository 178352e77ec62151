use anyhow::{Context, Result};
use nix::unistd::Pid;

use crate::cli::{check_args, Arity, RunArgs};
use crate::state::Root;
use crate::sys;
use crate::{create, foreground, logger, notify, start};

/// `run`: create + start; in the foreground, forward signals to the init, reap, exit with its status (128+signal
/// when killed) and delete the container unless `--keep`.
pub fn run(root: &Root, args: &RunArgs) -> Result<i32> {
    check_args("run", &args.args, Arity::Exact(1))?;
    let id = &args.args[0];
    if args.detach {
        let container = create::create(root, id, &args.opts, true)?.container;
        let pending = start::release_notifying(&container)?;
        if let Err(e) = container.run_poststart_hooks() {
            // runc's `run` destroys the container it made whenever it fails.
            let _ = container.destroy();
            return Err(e);
        }
        if let Some(pending) = pending {
            pending.forward()?;
        }
        return Ok(0);
    }
    if !args.no_subreaper {
        sys::set_child_subreaper().context("become child subreaper")?;
    }
    let signals = foreground::block_signals()?;

    let create::Created { container, master } = create::create(root, id, &args.opts, false)?;
    let init = Pid::from_raw(container.state.init_pid);
    let outcome = start::release_notifying(&container)
        .and_then(|pending| container.run_poststart_hooks().map(|()| pending))
        .and_then(|pending| pending.map_or(Ok(()), notify::Pending::forward))
        .inspect(|()| logger::phase("run: started"))
        .and_then(|()| foreground::wait(&signals, init, master));
    logger::phase("run: process exited");
    // A failed startContainer hook has destroyed the container already.
    if !args.keep && container.dir.exists() {
        if outcome.is_err() {
            let _ = container.kill_all();
        }
        container.destroy()?;
        logger::phase("run: deleted");
    }
    outcome
}
