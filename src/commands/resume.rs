use anyhow::{bail, Result};

use crate::cli::{check_args, Arity, NoFlags};
use crate::container::Container;
use crate::state::{Lock, Root, Status};

/// `resume <id>`: thaw a paused container (runc: anything else is "container not paused").
pub fn run(root: &Root, args: &NoFlags) -> Result<i32> {
    check_args("resume", &args.args, Arity::Exact(1))?;
    let container = Container::load(root, &args.args[0])?;
    let _lock = Lock::acquire(&container.dir)?;
    if container.status() != Status::Paused {
        bail!("container not paused");
    }
    container.state.cgroup.set_frozen(false)?;
    Ok(0)
}
