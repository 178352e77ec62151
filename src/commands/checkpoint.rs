use anyhow::{bail, Result};

use crate::cli::{check_args, Arity, CheckpointArgs};
use crate::container::Container;
use crate::criu::{self, CheckpointOptions};
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
    let opts = CheckpointOptions {
        image_path,
        work_path: args.work_path.clone(),
        parent_path: args.parent_path.clone(),
        leave_running: args.leave_running,
        tcp_established: args.tcp_established,
        tcp_skip_in_flight: args.tcp_skip_in_flight,
        link_remap: args.link_remap,
        ext_unix_sk: args.ext_unix_sk,
        shell_job: args.shell_job,
        lazy_pages: args.lazy_pages,
        status_fd: args.status_fd,
        page_server: args
            .page_server
            .as_deref()
            .map(criu::parse_page_server)
            .transpose()?,
        file_locks: args.file_locks,
        pre_dump: args.pre_dump,
        manage_cgroups_mode: args.manage_cgroups_mode.clone(),
        empty_ns: criu::parse_empty_ns(&args.empty_ns)?,
        auto_dedup: args.auto_dedup,
    };
    let spec = crate::spec::load_bundle(&container.state.bundle)?.spec;
    criu::checkpoint(&container, &spec, &opts)?;
    if !opts.leave_running && !opts.pre_dump {
        if let Err(err) = container.kill_all().and_then(|()| container.destroy()) {
            logger::log(Level::Warning, &format!("{err:#}"));
        }
    }
    Ok(0)
}
