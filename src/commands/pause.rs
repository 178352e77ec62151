use anyhow::{bail, Result};

use crate::cli::{check_args, Arity, NoFlags};
use crate::container::Container;
use crate::state::{Lock, Root, Status};

/// `pause <id>`: freeze every process of a created or running container (runc: anything else is "container not
/// running").
pub fn run(root: &Root, args: &NoFlags) -> Result<i32> {
    check_args("pause", &args.args, Arity::Exact(1))?;
    let container = Container::load(root, &args.args[0])?;
    let _lock = Lock::acquire(&container.dir)?;
    match container.status() {
        Status::Created | Status::Running => container.state.cgroup.set_frozen(true)?,
        _ => bail!("container not running"),
    }
    Ok(0)
}
