use anyhow::{bail, Result};

use crate::cli::{check_args, Arity, CheckpointArgs};
use crate::container::Container;
use crate::criu;
use crate::logger::{self, Level};
use crate::state::{Lock, Root, Status};

/// `checkpoint [flags] <id>`: dump a running container with CRIU (runc's `checkpoint.go`). Unless it is left running
/// or only pre-dumped, CRIU ends its processes and the container is then destroyed, as runc destroys it.
pub fn run(root: &Root, args: &CheckpointArgs) -> Result<i32> {
    check_args("checkpoint", &args.args, Arity::Exact(1))?;
    if !nix::unistd::geteuid().is_root() {
        logger::log(
            Level::Warning,
            "hull checkpoint is untested with rootless containers",
        );
    }
    let container = Container::load(root, &args.args[0])?;
    let _lock = Lock::acquire(&container.dir)?;
    let status = container.status();
    if matches!(status, Status::Created | Status::Stopped) {
        bail!(
            "Container cannot be checkpointed in {} state",
            status.as_str()
        );
    }
    let image_path = match &args.image_path {
        Some(path) => path.clone(),
        None => std::env::current_dir()?.join("checkpoint"),
    };
    criu::prepare_image_paths(&image_path, args.parent_path.as_deref())?;
    criu::checkpoint(&container, &image_path, args)?;
    if !args.leave_running && !args.pre_dump {
        if let Err(err) = container.kill_all().and_then(|()| container.destroy()) {
            logger::log(Level::Warning, &format!("{err:#}"));
        }
    }
    Ok(0)
}
