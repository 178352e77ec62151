//! The parent side of `create`: everything is checked before anything is made; then state directory, exec fifo, a
//! record of the cgroup about to be made (state.json with no init yet), the cgroup, one clone, the sync loop with the
//! child (state.json saved when the init is ready, before it may outlive hull) and the pid file. Any failure after the
//! first thing is made undoes all of it (process, cgroup, state directory), so a failed create leaves nothing behind;
//! a create killed at any point leaves what `delete --force` needs to remove the rest.

use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{mkfifo, Pid};

use oci_spec::runtime::{Hooks, LinuxIntelRdt, LinuxResources, Process};

use crate::cgroups::{self, Cgroup};
use crate::channel::{self, Msg};
use crate::cli::CreateOpts;
use crate::container::Container;
use crate::hooks::{self, Kind};
use crate::hostmounts::HostMounts;
use crate::init::Init;
use crate::logger::{self, Level};
use crate::namespaces;
use crate::spec::{self, Bundle};
use crate::state::{self, Root, SpecState, State, EXEC_FIFO};
use crate::{
    console, credentials, default_spec, foreground, idmap, lsm, netdev, notify, resctrl, rootless,
    seccomp, subid, sys,
};

/// How the caller's terminal settings combine with `process.terminal` (runc's `checkTerminal`); `create` always
/// detaches.
pub fn check_terminal(terminal: bool, console_socket: bool, detach: bool) -> Result<()> {
    if detach && terminal && !console_socket {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    if (!detach || !terminal) && console_socket {
        bail!("cannot use console socket if runc will not detach or allocate tty");
    }
    Ok(())
}

/// Where a process with `terminal: true` sends its pty master: the caller's `--console-socket`, or (foreground
/// `run`/`exec`) one end of a socketpair whose other end hull keeps, to relay the terminal itself.
pub struct ConsoleLink {
    /// Given to the new process.
    pub socket: OwnedFd,
    /// hull's end, when hull is the receiver.
    pub receiver: Option<OwnedFd>,
    /// The size the pty is allocated with: `process.consoleSize`, else hull's own terminal's when hull relays
    /// it (the relay keeps it in step later; runc only sizes it then, after the process may have looked).
    pub size: Option<(u16, u16)>,
}

impl ConsoleLink {
    pub fn open(process: &Process, console_socket: Option<&Path>) -> Result<Option<ConsoleLink>> {
        if !process.terminal().unwrap_or(false) {
            return Ok(None);
        }
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        Ok(Some(match console_socket {
            Some(path) => ConsoleLink {
                socket: console::connect_socket(path)?,
                receiver: None,
                size,
            },
            None => {
                let (receiver, socket) = console::socket_pair()?;
                ConsoleLink {
                    socket,
                    receiver: Some(receiver),
                    size: size.or_else(foreground::host_window_size),
                }
            }
        }))
    }

    /// The master, when hull is the receiver (the process sent it during its setup).
    pub fn master(&self) -> Result<Option<OwnedFd>> {
        match &self.receiver {
            Some(receiver) => Ok(Some(console::recv_fd(receiver.as_fd())?.1)),
            None => Ok(None),
        }
    }
}

/// `--pidfd-socket`: send a pidfd of the new process, named by its kind ("standard" for a container init, "setns"
/// for an exec'd process, as runc names them).
pub fn send_pidfd(path: &Path, pid: Pid, kind: &str) -> Result<()> {
    let socket = console::connect_socket(path)?;
    let pidfd = sys::pidfd_open(pid).with_context(|| format!("pidfd_open {pid}"))?;
    console::send_fd(socket.as_fd(), kind, pidfd.as_fd())
        .with_context(|| format!("send pidfd to {}", path.display()))
}

/// What `create` made: the container, and its terminal's master when hull relays it.
pub struct Created {
    pub container: Container,
    pub master: Option<OwnedFd>,
}

/// Systemd socket activation fds handed to hull (only if LISTEN_PID names hull itself).
pub fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The fds 3.. passed to the container must exist.
pub fn check_passed_fds(listen: u32, preserve: u32) -> Result<()> {
    let first = 3 + listen;
    for i in 0..preserve {
        let fd = (first + i) as i32;
        // SAFETY: fstat only reads the descriptor table; `st` is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(err)
                .with_context(|| format!("unable to stat preserved-fd {i} (of {preserve})"));
        }
    }
    Ok(())
}

/// Everything made so far, undone on drop unless `keep()` was called.
struct Undo<'a> {
    dir: &'a Path,
    /// The container's cgroup once created.
    cgroup: Option<Cgroup>,
    pids: Vec<Pid>,
    hooks: Option<&'a Hooks>,
    /// What the init mounted into hull's mount namespace, when the container has none of its own.
    host_mounts: Option<&'a HostMounts>,
    /// The container's resctrl groups.
    intel_rdt: Option<&'a resctrl::Assignment>,
    /// The state poststop hooks read, once the init exists.
    poststop: Option<SpecState<'a>>,
    armed: bool,
}

impl Undo<'_> {
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup.signal_all(Signal::SIGKILL);
            if let Err(e) = cgroup.destroy() {
                logger::log(Level::Warning, &format!("cleanup: {e:#}"));
            }
        }
        if let Err(e) = self.host_mounts.map_or(Ok(()), HostMounts::remove) {
            logger::log(Level::Warning, &format!("cleanup: {e:#}"));
        }
        if let Err(e) = self.intel_rdt.map_or(Ok(()), |rdt| rdt.group.destroy()) {
            logger::log(Level::Warning, &format!("cleanup: {e:#}"));
        }
        let _ = fs::remove_dir_all(self.dir);
        if let Some(state) = self.poststop {
            hooks::run_warning(Kind::Poststop, self.hooks, state, Some(state.bundle));
        }
    }
}

/// `create`: returns once the init is parked in its final cgroup, with state.json and the pid file written.
pub fn create(root: &Root, id: &str, opts: &CreateOpts, detach: bool) -> Result<Created> {
    state::validate_id(id)?;
    let cwd = std::env::current_dir().context("getcwd")?;
    let bundle_dir = match &opts.bundle {
        Some(b) if b.is_absolute() => b.clone(),
        Some(b) => cwd.join(b),
        None => cwd.clone(),
    };
    let pid_file = opts.pid_file.as_ref().map(|p| {
        if p.is_absolute() {
            p.clone()
        } else {
            cwd.join(p)
        }
    });
    let bundle = spec::load_bundle(&bundle_dir)?;
    logger::phase("create: config loaded");
    check_terminal(bundle.terminal(), opts.console_socket.is_some(), detach)?;
    let listen = listen_fds();
    check_passed_fds(listen, opts.preserve_fds)?;
    let linux = bundle.spec.linux().as_ref().context("linux is not set")?;
    let host_lsm = lsm::Host::detect();
    let process = bundle
        .spec
        .process()
        .as_ref()
        .context("process is not set")?;
    let labels = lsm::labels(process, host_lsm)?;
    let mount_label = lsm::mount_label(&bundle.spec, host_lsm);
    let filters = linux
        .seccomp()
        .as_ref()
        .map(seccomp::compile)
        .transpose()
        .context("linux.seccomp")?;
    let mut cgroup = if cgroups::systemd::enabled() {
        Cgroup::resolve_systemd(linux.cgroups_path().as_deref(), id, rootless::enabled())?
    } else {
        Cgroup::resolve(linux.cgroups_path().as_deref(), id)?
    };
    // systemd makes the cgroup only once the init exists (its pid goes into the unit): the init then waits.
    let by_systemd = cgroup.systemd_unit().is_some();
    let plan = namespaces::plan(&bundle.spec);
    if opts.no_pivot && !plan.mount_ns {
        bail!(
            "--no-pivot needs a mount namespace of its own: without one, the rootfs would be moved onto the host's /; \
             add {{\"type\": \"mount\"}} to linux.namespaces or leave out --no-pivot"
        );
    }
    // The child waits for `Go` while hull writes its id maps or has systemd put it into its unit.
    let awaits_go = plan.child_awaits_id_maps() || by_systemd;
    if plan.new_user_ns() {
        subid::check_unprivileged(
            linux.uid_mappings().as_deref().unwrap_or(&[]),
            linux.gid_mappings().as_deref().unwrap_or(&[]),
        )?;
    }
    let joins = namespaces::open_joins(&plan)?;
    let idmapped = idmap::prepare(
        &bundle.spec,
        &bundle.dir,
        plan.new_user_ns() && !rootless::enabled(),
    )?;

    let annotations = bundle.annotations();
    let hooks = bundle.spec.hooks().as_ref();
    let container_state = |pid: i32| SpecState {
        oci_version: default_spec::OCI_VERSION,
        id,
        status: "creating",
        pid,
        bundle: &bundle.dir,
        annotations: &annotations,
    };

    let intel_rdt = linux
        .intel_rdt()
        .as_ref()
        .map(|config| resctrl_assignment(config, id))
        .transpose()?;
    let host_mounts = if plan.mount_ns {
        None
    } else {
        Some(HostMounts::record(&bundle.rootfs)?)
    };
    logger::phase("create: checked");
    let _lock = root.create_container_dir(id)?;
    let dir = root.container_dir(id);
    let mut undo = Undo {
        dir: &dir,
        cgroup: None,
        pids: Vec::new(),
        hooks,
        host_mounts: host_mounts.as_ref(),
        intel_rdt: intel_rdt.as_ref(),
        poststop: None,
        armed: true,
    };

    let fifo_path = dir.join(EXEC_FIFO);
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .with_context(|| format!("mkfifo {}", fifo_path.display()))?;
    // Opened read-write so that neither this open nor the init's later read blocks until `start` writes.
    let fifo: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo_path)
        .with_context(|| format!("open {}", fifo_path.display()))?
        .into();
    // Recorded before it is made: if hull is killed from here on, `delete` finds what to remove (see
    // `State::save_intent`).
    cgroup.expect_created();
    let mut host_cgroups = Vec::new();
    State::save_intent(
        &dir,
        id,
        &bundle.dir,
        &cgroup,
        host_mounts.as_ref(),
        intel_rdt.as_ref(),
    )?;
    match if by_systemd { Ok(()) } else { cgroup.create() } {
        Ok(()) if by_systemd => {}
        Ok(()) => {
            if let Err(err) = cgroup.check_reusable() {
                if let Err(e) = cgroup.remove_made() {
                    logger::log(Level::Warning, &format!("cleanup: {e:#}"));
                }
                return Err(err);
            }
            undo.cgroup = Some(cgroup.clone());
            // Limits first, so the init is confined from its first instruction.
            apply_limits(&cgroup, &bundle.spec)?;
        }
        Err(err) if rootless::enabled() && permission_denied(&err) => {
            if asks_for_limits(linux.resources().as_ref()) || linux.cgroups_path().is_some() {
                return Err(err.context(
                    "rootless needs no limits + no cgrouppath when no permission is granted for cgroups",
                ));
            }
            logger::debug(format!("rootless: no cgroup of its own ({err:#})"));
            cgroup = Cgroup::none();
            host_cgroups = Cgroup::host_hierarchies()?;
        }
        Err(err) => return Err(err),
    }
    logger::phase("create: cgroup made");
    let mut cgroup_entry = if by_systemd {
        cgroups::Entry::outside()
    } else {
        cgroup.entry()?
    };
    let console = ConsoleLink::open(process, opts.console_socket.as_deref())?;
    let (parent_end, child_end) = channel::pair()?;

    let mut spec_for_child = bundle.spec.clone();
    if notify::host_socket().is_some() {
        notify::prepare(&mut spec_for_child, &dir)?;
    }
    if listen > 0 {
        if let Some(process) = spec_for_child.process_mut() {
            let mut env = process.env().clone().unwrap_or_default();
            env.push(format!("LISTEN_FDS={listen}"));
            env.push("LISTEN_PID=1".to_owned());
            process.set_env(Some(env));
        }
    }
    // The init is non-dumpable from birth: it will run inside the container's namespaces, where nothing may
    // ptrace it or open its /proc files before its execve (CVE-2016-9962). An unprivileged hull, though, may write
    // a child's id maps only while the child is dumpable: that init becomes non-dumpable itself once mapped, before
    // it enters anything else (runc's nsexec does the same, for the same reason).
    if !(rootless::enabled() && plan.new_user_ns()) {
        sys::set_dumpable(false).context("set hull non-dumpable")?;
    }
    let oom_score_adj = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj());
    let first = match with_oom_score_adj(oom_score_adj, || {
        clone_init(plan.clone_flags.bits(), &mut cgroup_entry)
    })? {
        sys::Forked::Child => {
            drop(parent_end);
            let init = Init {
                id,
                spec: &spec_for_child,
                annotations: &annotations,
                bundle: &bundle.dir,
                rootfs: &bundle.rootfs,
                cgroup: &cgroup,
                host_cgroups: &host_cgroups,
                cgroup_entry: &cgroup_entry,
                plan: &plan,
                joins: &joins,
                channel: &child_end,
                labels: &labels,
                mount_label: mount_label.as_deref(),
                idmapped: &idmapped,
                seccomp: filters.as_ref(),
                fifo: &fifo,
                console: console.as_ref(),
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                first_closed_fd: (3 + listen + opts.preserve_fds) as i32,
                awaits_go,
                cgroup_ns_entered: Cell::new(false),
                host_pid: Cell::new(0),
            };
            init.run()
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(child_end);
    logger::phase("create: init cloned");
    undo.pids.push(first);
    if by_systemd {
        undo.cgroup = Some(cgroup.clone());
        let resources = if rootless::enabled() {
            linux.resources().clone().unwrap_or_default()
        } else {
            cgroup_resources(&bundle.spec)
        };
        let annotations = bundle.spec.annotations().clone().unwrap_or_default();
        cgroup.start_unit(first.as_raw() as u32, id, &resources, &annotations)?;
        logger::phase("create: systemd unit started");
        apply_limits(&cgroup, &bundle.spec)?;
    }
    if awaits_go {
        release_child(&parent_end, first, &bundle, &plan)
            .context("unable to start container process")?;
    }

    // From here a failed create continues the lifecycle at delete, as runc's does: poststop hooks run.
    undo.poststop = Some(container_state(0));
    let record = |init_pid: Pid| -> Result<State> {
        let start_time = state::proc_stat(init_pid.as_raw())
            .context("container init exited during create")?
            .start_time;
        let state = State {
            host_mounts: host_mounts.clone(),
            intel_rdt: intel_rdt.clone(),
            ..State::of_new_container(
                id,
                &bundle,
                &cgroup,
                plan.private_pid,
                init_pid.as_raw(),
                start_time,
            )
        };
        state.save(&dir)?;
        logger::phase("create: state saved");
        Ok(state)
    };
    // Once the init has its final namespaces, before the first hook (runc: before createRuntime).
    let before_hooks = |init: Pid| -> Result<()> {
        if let Some(devices) = linux.net_devices() {
            netdev::move_all(devices, init.as_raw())?;
        }
        if let Some(rdt) = &intel_rdt {
            rdt.group.clone().apply(&rdt.config, init.as_raw())?;
            rdt.group
                .set(&rdt.config)
                .context("error setting Intel RDT config for procHooks process")?;
        }
        Ok(())
    };
    let state = sync_with_init(
        &parent_end,
        first,
        &bundle,
        &|pid| container_state(pid.as_raw()),
        &before_hooks,
        &record,
        &mut undo.pids,
    )
    .map_err(|err| oom_killed(&cgroup, err))
    .context("unable to start container process")?;
    let init_pid = Pid::from_raw(state.init_pid);
    drop(fifo);
    let master = match &console {
        Some(link) => link.master()?,
        None => None,
    };
    if let Some(path) = &opts.pidfd_socket {
        send_pidfd(path, init_pid, "standard")?;
    }
    if let Some(path) = &pid_file {
        state::write_atomic(path, init_pid.as_raw().to_string().as_bytes(), 0o644)
            .with_context(|| format!("write pid file {}", path.display()))?;
    }
    undo.keep();
    Ok(Created {
        container: Container { dir, state },
        master,
    })
}

/// The resctrl groups `linux.intelRdt` asks for (checked by `spec::validate`), recorded before they are made.
fn resctrl_assignment(config: &LinuxIntelRdt, id: &str) -> Result<resctrl::Assignment> {
    let host = resctrl::host::Host::detect()
        .context("intelRdt is specified in config, but Intel RDT is not enabled")?;
    let mut group = resctrl::group::Group::new(&host, config, id);
    group.expect_made();
    Ok(resctrl::Assignment {
        config: config.clone(),
        group,
    })
}

/// runc's report of an init the OOM killer took during its setup (the cgroup was empty before, so any kill counts),
/// followed by the limit and the peak usage: the memory limit is the cause, whatever the setup was doing. `--debug`
/// keeps the setup's error too, as in runc.
fn oom_killed(cgroup: &Cgroup, err: anyhow::Error) -> anyhow::Error {
    const OOM: &str = "container init was OOM-killed (memory limit too low?)";
    if !matches!(cgroup.oom_kills(), Ok(kills) if kills > 0) {
        return err;
    }
    let text = match cgroup.memory_limit_and_peak() {
        Some((limit, peak)) => format!("{OOM}: memory limit {limit}, peak usage {peak}"),
        None => OOM.to_owned(),
    };
    if logger::debug_enabled() {
        err.context(text)
    } else {
        anyhow::anyhow!(text)
    }
}

/// Write the config's limits into the container's cgroup. Device rules need privileges no unprivileged user has: a
/// rootless hull applies the limits only (as `update` does).
pub(crate) fn apply_limits(cgroup: &Cgroup, spec: &oci_spec::runtime::Spec) -> Result<()> {
    if rootless::enabled() {
        let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
        cgroup.apply_limits(&resources.unwrap_or_default())
    } else {
        cgroup.apply(&cgroup_resources(spec))
    }
}

/// Whether a cgroup error is the kernel saying no to this user.
pub fn permission_denied(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            )
        }) || cause
            .downcast_ref::<Errno>()
            .is_some_and(|e| matches!(e, Errno::EACCES | Errno::EPERM | Errno::EROFS))
    })
}

/// Whether `resources` asks for any limit (device rules aside, which a rootless container cannot have anyway).
fn asks_for_limits(resources: Option<&LinuxResources>) -> bool {
    let Some(resources) = resources else {
        return false;
    };
    let mut value = serde_json::to_value(resources).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("devices");
        fields.retain(|_, v| !v.is_null());
        return !fields.is_empty();
    }
    false
}

/// The resources to apply: the configured ones, applied even when absent so that the default device policy (deny
/// all but runc's default devices) is set up. Access to a `linux.devices` node comes only from
/// `linux.resources.devices`, as in runc: creating a node grants nothing.
pub fn cgroup_resources(spec: &oci_spec::runtime::Spec) -> LinuxResources {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default()
}

/// Clone the container init, born in its cgroup2 cgroup where the kernel can do that (5.7+); it enters the other
/// hierarchies itself (see `cgroups::Entry`).
pub fn clone_init(flags: libc::c_int, entry: &mut cgroups::Entry) -> Result<sys::Forked> {
    if let Some((path, dir)) = entry.clone_into() {
        match sys::clone3_into_cgroup(flags, dir) {
            Err(Errno::ENOSYS | Errno::E2BIG) => entry.without_clone_into()?,
            result => {
                return result.with_context(|| {
                    format!("clone container init into cgroup {}", path.display())
                })
            }
        }
    }
    sys::clone_fork(flags).context("clone container init")
}

/// Run `clone` with hull's own oom_score_adj set to `score`, which the init inherits (as runc's nsexec does), and
/// restore it afterwards: no write to the init's /proc files is needed, even when it forks again.
pub fn with_oom_score_adj(
    score: Option<i32>,
    clone: impl FnOnce() -> Result<sys::Forked>,
) -> Result<sys::Forked> {
    const PATH: &str = "/proc/self/oom_score_adj";
    let Some(score) = score else {
        return clone();
    };
    let saved = fs::read_to_string(PATH).with_context(|| format!("read {PATH}"))?;
    fs::write(PATH, score.to_string()).with_context(|| format!("write {score} to {PATH}"))?;
    let result = clone();
    if let Ok(sys::Forked::Child) = result {
        return result;
    }
    let saved = saved.trim();
    fs::write(PATH, saved).with_context(|| format!("restore {saved} to {PATH}"))?;
    result
}

/// Let a child waiting for `Msg::Go` go on, once hull has written the id maps of its new user namespace (if it has
/// one); a child that died meanwhile has sent its error, which is the cause to report.
fn release_child(
    chan: &channel::Channel,
    child: Pid,
    bundle: &Bundle,
    plan: &namespaces::Plan,
) -> Result<()> {
    if plan.child_awaits_id_maps() {
        namespaces::write_id_maps(child, &bundle.spec)?;
    }
    chan.send(&Msg::Go).map_err(|e| match chan.pending_error() {
        Some(child) => child.context("error during container init"),
        None => e,
    })
}

/// Drive the child through the protocol (see `channel::Msg`): at `Ready`, `record` saves the state of the init
/// (whose pid is final then), which is returned once the init has closed its end of the channel, parked.
fn sync_with_init<'a>(
    chan: &channel::Channel,
    first: Pid,
    bundle: &Bundle,
    container_state: &dyn Fn(Pid) -> SpecState<'a>,
    before_hooks: &dyn Fn(Pid) -> Result<()>,
    record: &dyn Fn(Pid) -> Result<State>,
    pids: &mut Vec<Pid>,
) -> Result<State> {
    let mut init = first;
    let mut saved: Option<State> = None;
    let mut hooks_prepared = false;
    loop {
        let msg = match chan.recv()? {
            // The init closes its end once parked; a crash closes it too, and leaves no live init.
            None => match saved {
                Some(state) if state::proc_stat(state.init_pid).is_some_and(|s| !s.is_dead()) => {
                    return Ok(state)
                }
                _ => bail!("error during container init: container init exited unexpectedly"),
            },
            Some(Msg::Error { chain }) => {
                return Err(anyhow::anyhow!(chain.join(": ")).context("error during container init"))
            }
            Some(msg) => msg,
        };
        // The init is in its final namespaces once it asks for the create hooks (after its mounts) or is ready.
        if matches!(msg, Msg::RunCreateHooks | Msg::Ready) && !hooks_prepared {
            hooks_prepared = true;
            before_hooks(init)?;
        }
        match msg {
            Msg::MapIds => {
                namespaces::write_id_maps(first, &bundle.spec)?;
                chan.send(&Msg::IdsMapped)?;
            }
            Msg::Forked { pid } => {
                init = Pid::from_raw(pid);
                pids.push(init);
                let _ = waitpid(first, None);
                chan.send(&Msg::ForkSeen)?;
            }
            Msg::SetRlimits => {
                let rlimits = bundle
                    .spec
                    .process()
                    .as_ref()
                    .and_then(|p| p.rlimits().as_deref())
                    .unwrap_or(&[]);
                credentials::apply_rlimits(init, rlimits)?;
                chan.send(&Msg::RlimitsSet)?;
            }
            Msg::SeccompListener => {
                let profile = bundle
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.seccomp().as_ref());
                seccomp::forward_listener(chan, profile, init.as_raw(), container_state(init))?;
            }
            Msg::RunCreateHooks => {
                let hooks = bundle.spec.hooks().as_ref();
                let cwd = Some(bundle.dir.as_path());
                hooks::run(Kind::Prestart, hooks, container_state(init), cwd)?;
                hooks::run(Kind::CreateRuntime, hooks, container_state(init), cwd)?;
                chan.send(&Msg::CreateHooksRan { pid: init.as_raw() })?;
            }
            Msg::Ready => {
                saved = Some(record(init)?);
                chan.send(&Msg::StateSaved)?;
            }
            other => bail!("sync protocol error: unexpected {other:?}"),
        }
    }
}

/// Release the init. With `NOTIFY_SOCKET` set, the container's notify socket is bound first, and the caller gets
/// the wait for its `READY=` (runc's `start` and `run` wait; `start` does it without holding the state lock).
pub fn release_notifying(container: &Container) -> Result<Option<notify::Pending>> {
    let Some(host) = notify::host_socket() else {
        release(container)?;
        return Ok(None);
    };
    let socket = notify::bind_socket(&container.dir)?;
    release(container)?;
    Ok(Some(notify::Pending {
        socket,
        host,
        init: Pid::from_raw(container.state.init_pid),
    }))
}

/// `start`: release a parked init by writing to its exec fifo, then remove the fifo (the "created" marker). When
/// startContainer or poststart hooks exist, first wait for the init's execve (see `await_exec`); if a
/// startContainer hook failed, the container is destroyed (the runtime spec goes on to its destruction).
fn release(container: &Container) -> Result<()> {
    let fifo_path = container.dir.join(EXEC_FIFO);
    let fifo = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
    {
        Ok(f) => f,
        // No reader left: the init died while parked.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            bail!("cannot start a container that has stopped")
        }
        Err(e) => return Err(e).with_context(|| format!("open {}", fifo_path.display())),
    };
    (&fifo)
        .write_all(b"0")
        .with_context(|| format!("write {}", fifo_path.display()))?;
    let hooks = container.state.hooks.as_ref();
    if hooks::any(hooks, &[Kind::StartContainer, Kind::Poststart]) {
        if let Err(err) = await_exec(fifo.as_fd(), &fifo_path) {
            if let Err(e) = container.kill_all().and_then(|()| container.destroy()) {
                logger::log(
                    Level::Warning,
                    &format!("destroy after a failed start: {e:#}"),
                );
            }
            return Err(err);
        }
    }
    fs::remove_file(&fifo_path).with_context(|| format!("remove {}", fifo_path.display()))
}

/// Wait until the released init has closed the exec fifo (`fifo` is our write end, which reports POLLERR once no
/// reader is left): its execve closed it, or it exited. A startContainer hook's failure is what the init wrote
/// into the fifo before exiting (`Init::fail_start`); our "0" still there means it died before it was released.
fn await_exec(fifo: BorrowedFd<'_>, path: &Path) -> Result<()> {
    loop {
        match poll(
            &mut [PollFd::new(fifo, PollFlags::empty())],
            PollTimeout::NONE,
        ) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("wait on {}", path.display())),
        }
    }
    let mut left = Vec::new();
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    // Our own write end keeps the fifo open: its end shows as EAGAIN, not EOF.
    match reader.read_to_end(&mut left) {
        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
            return Err(e).with_context(|| format!("read {}", path.display()))
        }
        _ => {}
    }
    match left.as_slice() {
        [] => Ok(()),
        [b'0', ..] => bail!("container init exited before it was started"),
        text => bail!("{}", String::from_utf8_lossy(text)),
    }
}
