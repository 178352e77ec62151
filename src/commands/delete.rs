use anyhow::{bail, Result};

use crate::cli::{check_args, Arity, DeleteArgs};
use crate::container::Container;
use crate::state::{self, ContainerError, Lock, Root, Status};

/// `delete [--force] <id>` with runc's rules: a created container is killed, a running one only with `--force`,
/// `--force` on a missing id succeeds, and a directory left by an aborted create is removed.
pub fn run(root: &Root, args: &DeleteArgs) -> Result<i32> {
    check_args("delete", &args.args, Arity::Exact(1))?;
    let id = &args.args[0];
    state::validate_id(id)?;
    let dir = root.container_dir(id);
    // A concurrent delete may remove the directory at any point up to our lock: then it is gone all the same.
    // A directory without a record is one whose create never got far (or an empty record, see
    // `State::save_intent`): a new create of the id fails while it exists, so it is removed without the lock.
    let loaded = Lock::acquire(&dir)
        .and_then(|lock| Container::load(root, id).map(|container| (lock, container)));
    let (_lock, container) = match loaded {
        Ok(loaded) => loaded,
        Err(e) if e.downcast_ref() == Some(&ContainerError::NotExist) => {
            state::remove_dir(&dir)?;
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
