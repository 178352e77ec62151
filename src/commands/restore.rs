use anyhow::{bail, Context, Result};
use nix::unistd::Pid;

use crate::cli::{check_args, Arity, RestoreArgs};
use crate::criu;
use crate::logger::{self, Level};
use crate::state::{self, Root};
use crate::{foreground, spawn, sys};

/// `restore [flags] <id>`: make container `id` of the bundle again from a checkpoint (runc's `restore.go`). In the
/// foreground, forward signals to the restored init, exit with its status and delete the container, as `run` does;
/// with `--detach`, return once it runs.
pub fn run(root: &Root, mut args: RestoreArgs) -> Result<i32> {
    check_args("restore", &args.args, Arity::Exact(1))?;
    if args.no_pivot {
        // runc accepts the flag and ignores it.
        bail!("--no-pivot cannot be honoured by restore: CRIU switches the container's root itself, with pivot_root");
    }
    let id = &args.args[0];
    state::validate_id(id)?;
    if !nix::unistd::geteuid().is_root() {
        logger::log(
            Level::Warning,
            "hull checkpoint is untested with rootless containers",
        );
    }
    let cwd = std::env::current_dir().context("getcwd")?;
    let absolute = |path: &std::path::Path| cwd.join(path);
    let image_path = args
        .image_path
        .as_deref()
        .map(absolute)
        .unwrap_or_else(|| cwd.join("checkpoint"));
    criu::prepare_image_paths(&image_path, None)?;
    let bundle_dir = args.bundle.as_deref().map(absolute).unwrap_or(cwd.clone());
    let bundle = crate::spec::load_bundle(&bundle_dir)?;
    spawn::check_terminal(
        bundle.terminal(),
        args.console_socket.is_some(),
        args.detach,
    )?;
    // Named in full from here on, in CRIU's log quote and the console's errors.
    args.criu.work_path = args.criu.work_path.as_deref().map(absolute);
    args.console_socket = args.console_socket.as_deref().map(absolute);
    let pid_file = args.pid_file.as_deref().map(absolute);
    let signals = if args.detach {
        None
    } else {
        if !args.no_subreaper {
            sys::set_child_subreaper().context("become child subreaper")?;
        }
        Some(foreground::block_signals()?)
    };
    let container = criu::restore(root, id, &bundle, &image_path, &args)?;
    let init = Pid::from_raw(container.state.init_pid);
    if let Some(path) = &pid_file {
        state::write_atomic(path, init.as_raw().to_string().as_bytes(), 0o644)
            .with_context(|| format!("write pid file {}", path.display()))?;
    }
    let Some(signals) = signals else {
        return Ok(0);
    };
    let outcome = foreground::wait(&signals, init, None);
    if outcome.is_err() {
        let _ = container.kill_all();
    }
    container.destroy()?;
    outcome
}
