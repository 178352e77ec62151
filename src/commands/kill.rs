use anyhow::Result;

use crate::cli::{check_args, Arity, KillArgs};
use crate::container::Container;
use crate::signal::parse_signal;
use crate::state::{Root, Status};

/// `kill [--all] <id> [signal]`. A SIGKILL to a container without its own pid namespace kills every process in its
/// cgroup (runc 1.2+), since killing the init alone would leave the others running. `--all` signals every process
/// in the cgroup and, as in runc, is not an error when the container is already stopped.
pub fn run(root: &Root, args: &KillArgs) -> Result<i32> {
    check_args("kill", &args.args, Arity::Min(1))?;
    check_args("kill", &args.args, Arity::Max(2))?;
    let sig = parse_signal(args.args.get(1).map(String::as_str).unwrap_or("SIGTERM"))?;
    let container = Container::load(root, &args.args[0])?;
    let status = container.status();
    if status == Status::Stopped {
        if args.all {
            return Ok(0);
        }
        anyhow::bail!("container not running");
    }
    if args.all || (sig == libc::SIGKILL && !container.state.private_pid_ns) {
        container.signal_all(sig)?;
    }
    if !args.all {
        container.signal_init(sig)?;
    }
    // As runc: a paused container is thawed after SIGKILL (frozen v1 processes cannot die) and after `--all`
    // (which runc does by freezing, signalling and thawing); other signals wait until `resume`.
    if status == Status::Paused && (sig == libc::SIGKILL || args.all) {
        container.state.cgroup.set_frozen(false)?;
    }
    Ok(0)
}
