use std::fs;

use anyhow::{bail, Context, Result};

use crate::cli::{check_args, Arity, DeleteArgs};
use crate::container::Container;
use crate::state::{self, Lock, Root, Status, ERR_NOT_EXIST};

/// `delete [--force] <id>` with runc's rules: a created container is killed, a running one only with `--force`,
/// `--force` on a missing id succeeds, and a directory left by an aborted create is removed.
pub fn run(root: &Root, args: &DeleteArgs) -> Result<i32> {
    check_args("delete", &args.args, Arity::Exact(1))?;
    let id = &args.args[0];
    state::validate_id(id)?;
    let dir = root.container_dir(id);
    if !dir.exists() {
        if args.force {
            return Ok(0);
        }
        bail!(ERR_NOT_EXIST);
    }
    let _lock = Lock::acquire(&dir)?;
    let container = match Container::load(root, id) {
        Ok(c) => c,
        Err(e) if e.to_string() == ERR_NOT_EXIST => {
            fs::remove_dir_all(&dir)
                .with_context(|| format!("remove state directory {}", dir.display()))?;
            return if args.force { Ok(0) } else { Err(e) };
        }
        Err(e) => return Err(e),
    };
    match container.status() {
        Status::Stopped if !args.force => {}
        Status::Running | Status::Paused if !args.force => {
            bail!(
                "cannot delete container {id} that is not stopped: {}",
                container.status().as_str()
            )
        }
        _ => container.kill_all()?,
    }
    container.destroy()?;
    Ok(0)
}
