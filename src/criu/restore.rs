//! `restore`: a container made again from a checkpoint (runc's `restore.go`, `Container.Restore`). The state
//! directory and cgroup are made as `create` makes them; CRIU, moved into that cgroup first, recreates the processes
//! as hull's children (`rst_sibling`) in a root that is a bind of the rootfs; at `post-restore` hull records the new
//! init. A failed restore leaves no state directory, cgroup, mount or process.

use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::proto::{Opts, ReqType, Request};
use super::swrk::{self, Swrk};
use super::{cgroup_mode, config_file, parse_empty_ns, quote_log, DESCRIPTORS, MIN_VERSION};
use crate::cgroups::Cgroup;
use crate::cli::RestoreArgs;
use crate::container::Container;
use crate::hooks::{self, Kind};
use crate::oci::SpecState;
use crate::spec::Bundle;
use crate::state::{self, Lock, Root, State};
use crate::{inroot, logger, mountopts, namespaces};

const RESTORE_LOG: &str = "restore.log";

/// What a failed restore takes away again, in reverse order of making.
struct Undo<'a> {
    dir: &'a Path,
    cgroup: Option<&'a Cgroup>,
    pid: Option<Pid>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cgroup) = self.cgroup {
            let _ = cgroup.signal_all(Signal::SIGKILL);
            if let Err(e) = cgroup.destroy() {
                logger::log(logger::Level::Warning, &format!("cleanup: {e:#}"));
            }
        }
        let _ = fs::remove_dir_all(self.dir);
    }
}

/// CRIU's root: a bind of the rootfs at `<state dir>/criu-root` (it must be a mount point whose parent is not
/// over-mounted), taken away when dropped.
struct CriuRoot {
    path: PathBuf,
}

impl CriuRoot {
    fn bind(dir: &Path, rootfs: &Path) -> Result<CriuRoot> {
        let path = dir.join(state::CRIU_ROOT);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .with_context(|| format!("mkdir {}", path.display()))?;
        let root = CriuRoot { path };
        mount(
            Some(rootfs),
            &root.path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind {} onto {}", rootfs.display(), root.path.display()))?;
        Ok(root)
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.path);
    }
}

/// Restore container `id` of `bundle` from `image_path`, as `args` ask; returns the restored container once CRIU is
/// done.
pub fn restore(
    root: &Root,
    id: &str,
    bundle: &Bundle,
    image_path: &Path,
    args: &RestoreArgs,
) -> Result<Container> {
    let empty_ns = parse_empty_ns(&args.criu.empty_ns)?;
    if crate::rootless::enabled() {
        bail!(
            "restore needs root: CRIU restores a container's namespaces, mounts and process ids only with \
             CAP_SYS_ADMIN in the host's user namespace"
        );
    }
    if args.criu.shell_job && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "restore --shell-job needs a terminal on standard input: CRIU gives the restored job the terminal hull \
             is started from"
        );
    }
    super::check_version(MIN_VERSION)?;
    let mode = cgroup_mode(&args.criu.manage_cgroups_mode)?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref().context("linux is not set")?;
    let images =
        File::open(image_path).with_context(|| format!("open {}", image_path.display()))?;
    let descriptors = read_descriptors(image_path)?;
    let plan = namespaces::plan(spec);
    let images_owner = plan
        .new_user_ns()
        .then(|| container_root_uid(linux))
        .transpose()?;
    // systemd makes the cgroup once a process exists for its unit: CRIU's own, as runc's `criuApplyCgroups` does.
    let mut cgroup = if crate::cgroups::systemd::enabled() {
        Cgroup::resolve_systemd(linux.cgroups_path().as_deref(), id, false)?
    } else {
        Cgroup::resolve(linux.cgroups_path().as_deref(), id)?
    };
    let by_systemd = cgroup.systemd_unit().is_some();

    let _lock: Lock = root.create_container_dir(id)?;
    let dir = root.container_dir(id);
    let mut undo = Undo {
        dir: &dir,
        cgroup: None,
        pid: None,
        armed: true,
    };
    // Only once the id is ours: a restore refused before (a taken id, a bad flag) leaves the images as they were.
    if let Some(uid) = images_owner {
        give_tree(image_path, uid)?;
    }
    cgroup.expect_created();
    State::save_intent(&dir, id, &bundle.dir, &cgroup, None, None)?;
    if !by_systemd {
        cgroup.create()?;
        if let Err(err) = cgroup.check_reusable() {
            if let Err(e) = cgroup.remove_made() {
                logger::log(logger::Level::Warning, &format!("cleanup: {e:#}"));
            }
            return Err(err);
        }
        crate::create::apply_limits(&cgroup, spec)?;
    }
    undo.cgroup = Some(&cgroup);

    let criu_root = CriuRoot::bind(&dir, &bundle.rootfs)?;
    prepare_mount_points(spec, &bundle.rootfs)?;
    let work = match &args.criu.work_path {
        Some(path) => Some(open_work_dir(path)?),
        None => None,
    };
    let log_dir = args
        .criu
        .work_path
        .clone()
        .unwrap_or_else(|| image_path.to_path_buf());
    let mut rpc = Opts {
        images_dir_fd: images.as_raw_fd(),
        evasive_devices: true,
        log_level: Some(4),
        log_file: Some(RESTORE_LOG.to_owned()),
        rst_sibling: true,
        root: Some(criu_root.path.display().to_string()),
        manage_cgroups: true,
        manage_cgroups_mode: Some(mode),
        notify_scripts: true,
        shell_job: args.criu.shell_job,
        ext_unix_sk: args.criu.ext_unix_sk,
        tcp_established: args.criu.tcp_established,
        file_locks: args.criu.file_locks,
        empty_ns: Some(empty_ns),
        orphan_pts_master: true,
        auto_dedup: args.criu.auto_dedup,
        lazy_pages: args.criu.lazy_pages,
        lsm_profile: args.lsm_profile.clone(),
        lsm_mount_context: args.lsm_mount_context.clone(),
        work_dir_fd: work.as_ref().map(|w| w.as_raw_fd()),
        config_file: config_file(spec),
        // mount-v2 gives each restored mount its peer group with MOVE_MOUNT_SET_GROUP, which the kernel refuses
        // (EINVAL) for the mounts of a user namespace's mount namespace that came from the host's, locked there, as
        // soon as the host shares them (systemd makes / shared): `mnt-v2: Failed to copy sharing`. The first engine
        // restores them (runc's CI sets the same in /etc/criu/runc.conf).
        mntns_compat_mode: plan.new_user_ns(),
        ..Opts::default()
    };
    let extra = restore_namespaces(&mut rpc, spec)?;
    add_restore_mounts(&mut rpc, spec, &bundle.dir);
    rpc.ext_mnt.extend(super::cgroup_binds(spec, &cgroup));
    for (fd, name) in descriptors.iter().enumerate() {
        if name.contains("pipe:") {
            rpc.inherit_fd.push((name.clone(), fd as i32));
        }
    }

    let criu = swrk::find()?;
    let extra_fds: Vec<BorrowedFd<'_>> = extra.iter().map(|fd| fd.as_fd()).collect();
    let worker = Swrk::start(&criu, true, &extra_fds)?;
    // What CRIU restores is born in the container's cgroup: CRIU goes there first (runc's `criuApplyCgroups`).
    if by_systemd {
        let annotations = spec.annotations().clone().unwrap_or_default();
        cgroup.start_unit(
            worker.pid() as u32,
            id,
            &crate::create::cgroup_resources(spec),
            &annotations,
        )?;
        crate::create::apply_limits(&cgroup, spec)?;
    } else {
        cgroup.attach(worker.pid())?;
    }
    rpc.cg_root = cgroup_roots(worker.pid())?;
    let annotations = bundle.annotations();
    let hook_state = |pid: i32| SpecState {
        oci_version: crate::oci::OCI_VERSION,
        id,
        status: "creating",
        pid,
        bundle: &bundle.dir,
        annotations: &annotations,
    };
    let mut restored: Option<State> = None;
    let request = Request::new(ReqType::Restore, Some(rpc));
    let result = super::finish_call(worker, &request, &mut |script, pid, fds| {
        match script {
            "setup-namespaces" => {
                let hooks = spec.hooks().as_ref();
                let cwd = Some(bundle.dir.as_path());
                hooks::run(Kind::Prestart, hooks, hook_state(pid), cwd)?;
                hooks::run(Kind::CreateRuntime, hooks, hook_state(pid), cwd)?;
            }
            "post-restore" => {
                let start_time = state::proc_stat(pid)
                    .context("the restored init is gone")?
                    .start_time;
                let state =
                    State::of_new_container(id, bundle, &cgroup, plan.private_pid, pid, start_time);
                state.save(&dir)?;
                restored = Some(state);
            }
            "orphan-pts-master" => send_console(args.console_socket.as_deref(), fds)?,
            _ => {}
        }
        Ok(())
    });
    if let Some(state) = &restored {
        undo.pid = Some(Pid::from_raw(state.init_pid));
    }
    result.map_err(|err| anyhow::anyhow!("{err:#}; {}", quote_log(&log_dir.join(RESTORE_LOG))))?;
    drop(criu_root);
    let state = restored.context("criu restored no process (no post-restore notification)")?;
    let _ = fs::remove_file(dir.join("checkpoint"));
    undo.armed = false;
    drop(undo);
    Ok(Container { dir, state })
}

/// The host uid the container's root maps to, which the images go to (see [`give_tree`]).
fn container_root_uid(linux: &oci_spec::runtime::Linux) -> Result<u32> {
    linux
        .uid_mappings()
        .iter()
        .flatten()
        .find(|m| m.container_id() == 0)
        .map(|m| m.host_id())
        .context("linux.uidMappings maps no container id 0")
}

/// In a user namespace of its own, the restored tasks look their images up in the image directory first as host root
/// (before CRIU writes their id maps and switches their credentials) and then as the container's root. So the image
/// directory and its files go to the host uid the container's root maps to, with group root (gid 0), and directories
/// also get group search and read: the owner covers the second case, the group the first (without it CRIU stops at
/// `Unable to open timens-0.img: Permission denied` whenever the task is faster than the map).
fn give_tree(path: &Path, uid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(0))
        .with_context(|| format!("chown {} to {uid}:0", path.display()))?;
    let meta = fs::symlink_metadata(path).with_context(|| format!("stat {}", path.display()))?;
    if meta.is_dir() {
        let mode = meta.permissions().mode() | 0o050;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {} to {mode:o}", path.display()))?;
        for entry in fs::read_dir(path).with_context(|| format!("read {}", path.display()))? {
            give_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let bytes = fs::read(&path).with_context(|| format!("open {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
}

fn open_work_dir(path: &Path) -> Result<File> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(e).with_context(|| format!("mkdir {}", path.display()))
        }
        _ => {}
    }
    File::open(path).with_context(|| format!("open {}", path.display()))
}

/// runc's `prepareCriuRestoreMounts`: the mount points a new container would get are made in the rootfs (even a
/// read-only one), except cgroup mounts and what lies on a tmpfs, which CRIU restores with its contents.
fn prepare_mount_points(spec: &Spec, rootfs: &Path) -> Result<()> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    let root = File::open(rootfs).with_context(|| format!("open rootfs {}", rootfs.display()))?;
    for m in mounts {
        let dest = m.destination();
        if m.typ().as_deref() == Some("cgroup")
            || tmpfs.iter().any(|t| dest.starts_with(t) && dest != *t)
        {
            continue;
        }
        let source_is_file = m
            .source()
            .as_deref()
            .is_some_and(|s| is_bind(m) && fs::metadata(s).is_ok_and(|meta| !meta.is_dir()));
        if source_is_file {
            inroot::ensure_file(root.as_fd(), dest)?;
        } else {
            inroot::mkdir_all(root.as_fd(), dest, 0o755)?;
        }
    }
    Ok(())
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || mountopts::parse(m.options().as_deref().unwrap_or(&[]))
            .flags
            .contains(MsFlags::MS_BIND)
}

/// runc's restore mounts: each bind mount's destination gets its source again, masked files the host's /dev/null,
/// device nodes the host's.
fn add_restore_mounts(rpc: &mut Opts, spec: &Spec, bundle: &Path) {
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        if !is_bind(m) {
            continue;
        }
        let Some(source) = m.source() else { continue };
        let source = if source.is_absolute() {
            source.clone()
        } else {
            bundle.join(source)
        };
        rpc.ext_mnt.push((
            m.destination().display().to_string(),
            source.display().to_string(),
        ));
    }
    let linux = spec.linux().as_ref();
    if linux
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|p| !p.is_empty())
    {
        rpc.ext_mnt
            .push(("/dev/null".to_owned(), "/dev/null".to_owned()));
    }
    for path in super::device_paths(spec) {
        rpc.ext_mnt.push((path.clone(), path));
    }
}

/// Namespaces joined by path: network and pid ones are handed to CRIU as inherited fds (its fds 4, 5, ...), the
/// others joined by CRIU (runc's `handleRestoringNamespaces`).
fn restore_namespaces(rpc: &mut Opts, spec: &Spec) -> Result<Vec<OwnedFd>> {
    let mut extra = Vec::new();
    for ns in crate::namespaces::configured(spec) {
        let Some(path) = ns.path() else { continue };
        let key = match ns.typ() {
            LinuxNamespaceType::Network => "extRootNetNS",
            LinuxNamespaceType::Pid => "extRootPidNS",
            LinuxNamespaceType::Cgroup => bail!("Do not know how to handle namespace cgroup"),
            other => {
                let name = match other {
                    LinuxNamespaceType::Mount => "mnt",
                    LinuxNamespaceType::Ipc => "ipc",
                    LinuxNamespaceType::Uts => "uts",
                    LinuxNamespaceType::User => "user",
                    _ => "time",
                };
                rpc.join_ns
                    .push((name.to_owned(), path.display().to_string()));
                continue;
            }
        };
        let file = File::open(path).map_err(|_| {
            anyhow::anyhow!(
                "Requested network namespace {} does not exist",
                path.display()
            )
        })?;
        rpc.inherit_fd
            .push((key.to_owned(), 4 + extra.len() as i32));
        extra.push(OwnedFd::from(file));
    }
    Ok(extra)
}

/// `cg_root` for each of CRIU's own cgroups, which are the container's by now (cgroup v2's has an empty controller).
fn cgroup_roots(criu: i32) -> Result<Vec<(Option<String>, String)>> {
    let path = format!("/proc/{criu}/cgroup");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, cgroup) = (fields.next()?, fields.next()?, fields.next()?);
            Some((Some(controllers.to_owned()), cgroup.to_owned()))
        })
        .collect())
}

/// `orphan-pts-master`: the restored terminal's master goes to `--console-socket`, as runc sends it.
fn send_console(console_socket: Option<&Path>, fds: Vec<OwnedFd>) -> Result<()> {
    let master = fds
        .into_iter()
        .next()
        .context("orphan-pts-master carried no descriptor")?;
    let path = console_socket.context("a restored terminal needs --console-socket")?;
    let socket = crate::console::connect_socket(path)?;
    crate::console::send_fd(socket.as_fd(), "orphan-pts-master", master.as_fd())
}
