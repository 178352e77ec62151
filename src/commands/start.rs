use anyhow::{bail, Result};

use crate::cli::{check_args, Arity, NoFlags};
use crate::container::Container;
use crate::start;
use crate::state::{Lock, Root, Status};

pub fn run(root: &Root, args: &NoFlags) -> Result<i32> {
    check_args("start", &args.args, Arity::Exact(1))?;
    let container = Container::load(root, &args.args[0])?;
    let pending = {
        let _lock = Lock::acquire(&container.dir)?;
        match container.status() {
            Status::Created => start::release_notifying(&container)?,
            Status::Stopped => bail!("cannot start a container that has stopped"),
            Status::Running | Status::Paused => bail!("cannot start an already running container"),
        }
    };
    container.run_poststart_hooks()?;
    if let Some(pending) = pending {
        pending.forward()?;
    }
    Ok(0)
}
