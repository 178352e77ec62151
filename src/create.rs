//! `create`, hull's side, in the phases of the create sequence:
//! 1. [`Checked::check`]: read and check everything (config, flags, host); nothing is made yet;
//! 2. the state directory, its exec fifo, and a record of the cgroup about to be made (state.json with no init yet);
//! 3. [`place_in_cgroup`]: the container's cgroup with its limits (the rootless policy when it may have none);
//! 4. [`clone_init`]: the config as the init sees it, and one clone (the child runs `init.rs`);
//! 5. the systemd unit, when systemd owns the cgroup, and `Go` (`release_child`);
//! 6. the sync protocol (`protocol::CREATE`, [`CreateSteps`]): id maps, hooks, state.json saved once the init is
//!    ready, before it may outlive hull;
//! 7. the pidfd socket and the pid file.
//!
//! Each phase records in [`Undo`] what it made: any failure after the first thing is made undoes all of it (process,
//! cgroup, state directory), so a failed create leaves nothing behind; a create killed at any point leaves what
//! `delete --force` needs to remove the rest.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{mkfifo, Pid};
use oci_spec::runtime::{Hooks, LinuxIntelRdt, LinuxNamespaceType, LinuxResources, Spec};

use crate::cgroups::{self, Cgroup, Placement};
use crate::cli::CreateOpts;
use crate::console::ConsoleLink;
use crate::container::Container;
use crate::hooks::{self, Kind};
use crate::hostmounts::HostMounts;
use crate::init::{Init, InitPlan};
use crate::logger::{self, Level};
use crate::oci::SpecState;
use crate::protocol::{self, ParentEnd, ParentSteps};
use crate::spawn::{self, permission_denied};
use crate::spec::{self, Bundle};
use crate::state::{self, Root, State, EXEC_FIFO};
use crate::{
    credentials, idmap, lsm, namespaces, netdev, notify, resctrl, rootless, seccomp, subid, sys,
};

/// What `create` made: the container, and its terminal's master when hull relays it.
pub struct Created {
    pub container: Container,
    pub master: Option<OwnedFd>,
}

/// Phase 1: the config and everything derived from it and from the host, checked before anything is made.
struct Checked<'a> {
    id: &'a str,
    opts: &'a CreateOpts,
    bundle: Bundle,
    annotations: BTreeMap<String, String>,
    /// `--pid-file`, made absolute.
    pid_file: Option<PathBuf>,
    /// Socket activation fds handed to hull, passed on from fd 3.
    listen: u32,
    labels: lsm::Labels,
    mount_label: Option<String>,
    seccomp: Option<seccomp::Compiled>,
    /// The container's cgroup, resolved, not made yet.
    cgroup: Cgroup,
    /// systemd makes the cgroup, only once the init exists (its pid goes into the unit): the init then waits.
    by_systemd: bool,
    namespaces: namespaces::Plan,
    /// The init waits for `Go` while hull writes its id maps or has systemd put it into its unit.
    awaits_go: bool,
    joins: Vec<(LinuxNamespaceType, OwnedFd)>,
    idmapped: idmap::Trees,
    intel_rdt: Option<resctrl::Assignment>,
    /// What the init will mount into hull's mount namespace, when the container has none of its own.
    host_mounts: Option<HostMounts>,
}

impl<'a> Checked<'a> {
    fn check(id: &'a str, opts: &'a CreateOpts, detach: bool) -> Result<Checked<'a>> {
        state::validate_id(id)?;
        let cwd = std::env::current_dir().context("getcwd")?;
        let bundle_dir = match &opts.bundle {
            Some(b) => cwd.join(b),
            None => cwd.clone(),
        };
        let pid_file = opts.pid_file.as_ref().map(|p| cwd.join(p));
        let bundle = spec::load_bundle(&bundle_dir)?;
        logger::phase("create: config loaded");
        spawn::check_terminal(bundle.terminal(), opts.console_socket.is_some(), detach)?;
        let listen = spawn::listen_fds();
        spawn::check_passed_fds(listen, opts.preserve_fds)?;
        let linux = bundle.spec.linux().as_ref().context("linux is not set")?;
        let host_lsm = lsm::Host::detect();
        let process = bundle
            .spec
            .process()
            .as_ref()
            .context("process is not set")?;
        let labels = lsm::labels(process, host_lsm)?;
        let mount_label = lsm::mount_label(&bundle.spec, host_lsm);
        let seccomp = linux
            .seccomp()
            .as_ref()
            .map(seccomp::compile)
            .transpose()
            .context("linux.seccomp")?;
        let cgroup = if cgroups::systemd::enabled() {
            Cgroup::resolve_systemd(linux.cgroups_path().as_deref(), id, rootless::enabled())?
        } else {
            Cgroup::resolve(linux.cgroups_path().as_deref(), id)?
        };
        let by_systemd = cgroup.systemd_unit().is_some();
        let namespaces = namespaces::plan(&bundle.spec);
        if opts.no_pivot && !namespaces.mount_ns {
            bail!(
                "--no-pivot needs a mount namespace of its own: without one, the rootfs would be moved onto the \
                 host's /; add {{\"type\": \"mount\"}} to linux.namespaces or leave out --no-pivot"
            );
        }
        if namespaces.new_user_ns() {
            subid::check_unprivileged(
                linux.uid_mappings().as_deref().unwrap_or(&[]),
                linux.gid_mappings().as_deref().unwrap_or(&[]),
            )?;
        }
        let joins = namespaces::open_joins(&namespaces)?;
        let idmapped = idmap::prepare(
            &bundle.spec,
            &bundle.dir,
            namespaces.new_user_ns() && !rootless::enabled(),
        )?;
        let intel_rdt = linux
            .intel_rdt()
            .as_ref()
            .map(|config| resctrl_assignment(config, id))
            .transpose()?;
        let host_mounts = if namespaces.mount_ns {
            None
        } else {
            Some(HostMounts::record(&bundle.rootfs)?)
        };
        Ok(Checked {
            id,
            opts,
            annotations: bundle.annotations(),
            pid_file,
            listen,
            labels,
            mount_label,
            seccomp,
            awaits_go: namespaces.child_awaits_id_maps() || by_systemd,
            cgroup,
            by_systemd,
            namespaces,
            joins,
            idmapped,
            intel_rdt,
            host_mounts,
            bundle,
        })
    }

    fn hooks(&self) -> Option<&Hooks> {
        self.bundle.spec.hooks().as_ref()
    }

    /// The state the runtime's hooks read while the container is being created.
    fn container_state(&self, pid: i32) -> SpecState<'_> {
        SpecState {
            oci_version: crate::oci::OCI_VERSION,
            id: self.id,
            status: "creating",
            pid,
            bundle: &self.bundle.dir,
            annotations: &self.annotations,
        }
    }
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

impl<'a> Undo<'a> {
    fn new(dir: &'a Path, checked: &'a Checked) -> Undo<'a> {
        Undo {
            dir,
            cgroup: None,
            pids: Vec::new(),
            hooks: checked.hooks(),
            host_mounts: checked.host_mounts.as_ref(),
            intel_rdt: checked.intel_rdt.as_ref(),
            poststop: None,
            armed: true,
        }
    }

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
    let checked = Checked::check(id, opts, detach)?;
    logger::phase("create: checked");

    let _lock = root.create_container_dir(id)?;
    let dir = root.container_dir(id);
    let mut undo = Undo::new(&dir, &checked);
    let fifo = make_exec_fifo(&dir)?;
    // Recorded before it is made: if hull is killed from here on, `delete` finds what to remove (see
    // `State::save_intent`).
    let mut cgroup = checked.cgroup.clone();
    cgroup.expect_created();
    State::save_intent(
        &dir,
        id,
        &checked.bundle.dir,
        &cgroup,
        checked.host_mounts.as_ref(),
        checked.intel_rdt.as_ref(),
    )?;

    let mut placement = place_in_cgroup(&checked, cgroup, &mut undo)?;
    logger::phase("create: cgroup made");

    let process = checked.bundle.spec.process().as_ref();
    let console = match process {
        Some(process) => ConsoleLink::open(process, opts.console_socket.as_deref())?,
        None => None,
    };
    let init_spec = spec_for_init(&checked, &dir)?;
    let (parent_end, child_end) = protocol::pair()?;
    let first = clone_init(
        &checked,
        &init_spec,
        &mut placement,
        &fifo,
        console.as_ref(),
        child_end,
    )?;
    logger::phase("create: init cloned");
    undo.pids.push(first);

    if checked.by_systemd {
        undo.cgroup = Some(placement.cgroup.clone());
        start_unit(&checked, &placement.cgroup, first)?;
    }
    if checked.awaits_go {
        release_child(&parent_end, first, &checked).context("unable to start container process")?;
    }

    // From here a failed create continues the lifecycle at delete, as runc's does: poststop hooks run.
    undo.poststop = Some(checked.container_state(0));
    let state = sync_with_init(
        &parent_end,
        &checked,
        &dir,
        &placement.cgroup,
        first,
        &mut undo.pids,
    )
    .map_err(|err| oom_killed(&placement.cgroup, err))
    .context("unable to start container process")?;
    drop(fifo);

    let init_pid = Pid::from_raw(state.init_pid);
    let master = match &console {
        Some(link) => link.master()?,
        None => None,
    };
    if let Some(path) = &opts.pidfd_socket {
        spawn::send_pidfd(path, init_pid, "standard")?;
    }
    if let Some(path) = &checked.pid_file {
        state::write_atomic(path, init_pid.as_raw().to_string().as_bytes(), 0o644)
            .with_context(|| format!("write pid file {}", path.display()))?;
    }
    undo.keep();
    Ok(Created {
        container: Container { dir, state },
        master,
    })
}

/// The exec fifo the init parks on until `start`, opened read-write so that neither this open nor the init's later
/// read blocks until `start` writes.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join(EXEC_FIFO);
    mkfifo(&path, Mode::from_bits_truncate(0o622))
        .with_context(|| format!("mkfifo {}", path.display()))?;
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?
        .into())
}

/// Phase 3: the container's cgroup, its limits written first so that the init is confined from its first
/// instruction (systemd makes it later, once the init exists). A rootless container the kernel refuses a cgroup
/// runs in hull's own, unless it asks for limits or a cgroupsPath.
fn place_in_cgroup(checked: &Checked, mut cgroup: Cgroup, undo: &mut Undo) -> Result<Placement> {
    let mut host_hierarchies = Vec::new();
    if !checked.by_systemd {
        match cgroup.create() {
            Ok(()) => {
                if let Err(err) = cgroup.check_reusable() {
                    if let Err(e) = cgroup.remove_made() {
                        logger::log(Level::Warning, &format!("cleanup: {e:#}"));
                    }
                    return Err(err);
                }
                undo.cgroup = Some(cgroup.clone());
                apply_limits(&cgroup, &checked.bundle.spec)?;
            }
            Err(err) if rootless::enabled() && permission_denied(&err) => {
                let linux = checked.bundle.spec.linux().as_ref();
                let resources = linux.and_then(|l| l.resources().as_ref());
                if asks_for_limits(resources) || linux.is_some_and(|l| l.cgroups_path().is_some()) {
                    return Err(err.context(
                        "rootless needs no limits + no cgrouppath when no permission is granted for cgroups",
                    ));
                }
                logger::debug(format!("rootless: no cgroup of its own ({err:#})"));
                cgroup = Cgroup::none();
                host_hierarchies = Cgroup::host_hierarchies()?;
            }
            Err(err) => return Err(err),
        }
    }
    let entry = if checked.by_systemd {
        cgroups::Entry::outside()
    } else {
        cgroup.entry()?
    };
    Ok(Placement {
        cgroup,
        host_hierarchies,
        entry,
    })
}

/// The config as the init sees it: the notify socket's mount and variable when hull relays `NOTIFY_SOCKET`, and
/// socket activation's variables.
fn spec_for_init(checked: &Checked, dir: &Path) -> Result<Spec> {
    let mut spec = checked.bundle.spec.clone();
    if notify::host_socket().is_some() {
        notify::prepare(&mut spec, dir)?;
    }
    if checked.listen > 0 {
        if let Some(process) = spec.process_mut() {
            let mut env = process.env().clone().unwrap_or_default();
            env.push(format!("LISTEN_FDS={}", checked.listen));
            env.push("LISTEN_PID=1".to_owned());
            process.set_env(Some(env));
        }
    }
    Ok(spec)
}

/// Phase 4: clone the init, which runs [`Init`] with the plan made here to its execve; hull gets its pid.
fn clone_init(
    checked: &Checked,
    init_spec: &Spec,
    placement: &mut Placement,
    fifo: &OwnedFd,
    console: Option<&ConsoleLink>,
    channel: protocol::ChildEnd,
) -> Result<Pid> {
    let plan = InitPlan {
        id: checked.id,
        spec: init_spec,
        annotations: &checked.annotations,
        bundle: &checked.bundle.dir,
        rootfs: &checked.bundle.rootfs,
        namespaces: &checked.namespaces,
        joins: &checked.joins,
        labels: &checked.labels,
        idmapped: &checked.idmapped,
        mount_label: checked.mount_label.as_deref(),
        seccomp: checked.seccomp.as_ref(),
        no_pivot: checked.opts.no_pivot,
        no_new_keyring: checked.opts.no_new_keyring,
        first_closed_fd: (3 + checked.listen + checked.opts.preserve_fds) as i32,
    };
    // The init is non-dumpable from birth: it will run inside the container's namespaces, where nothing may
    // ptrace it or open its /proc files before its execve (CVE-2016-9962). An unprivileged hull, though, may write
    // a child's id maps only while the child is dumpable: that init becomes non-dumpable itself once mapped, before
    // it enters anything else (runc's nsexec does the same, for the same reason).
    if !(rootless::enabled() && checked.namespaces.new_user_ns()) {
        sys::set_dumpable(false).context("set hull non-dumpable")?;
    }
    let oom_score_adj = checked
        .bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj());
    let forked = spawn::with_oom_score_adj(oom_score_adj, || {
        spawn::clone_into_cgroup(checked.namespaces.clone_flags.bits(), &mut placement.entry)
    })?;
    match forked {
        sys::Forked::Child => {
            Init::new(&plan, placement, checked.awaits_go, fifo, console, channel).run()
        }
        sys::Forked::Parent(pid) => Ok(pid),
    }
}

/// Phase 5, with `--systemd-cgroup`: the unit systemd makes the cgroup for, with the init in it, then the limits.
fn start_unit(checked: &Checked, cgroup: &Cgroup, init: Pid) -> Result<()> {
    let spec = &checked.bundle.spec;
    let resources = if rootless::enabled() {
        spec.linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default()
    } else {
        cgroup_resources(spec)
    };
    let annotations = spec.annotations().clone().unwrap_or_default();
    cgroup.start_unit(init.as_raw() as u32, checked.id, &resources, &annotations)?;
    logger::phase("create: systemd unit started");
    apply_limits(cgroup, spec)
}

/// Let the init waiting for `Go` go on, once hull has written the id maps of its new user namespace (if it has
/// one).
fn release_child(parent: &ParentEnd, init: Pid, checked: &Checked) -> Result<()> {
    if checked.namespaces.child_awaits_id_maps() {
        namespaces::write_id_maps(init, &checked.bundle.spec)?;
    }
    // sync 1
    parent.go()
}

/// Phase 6: drive the init through `protocol::CREATE`; returns the state saved at `Ready`, once the init has
/// closed its end of the channel, parked.
fn sync_with_init(
    parent: &ParentEnd,
    checked: &Checked,
    dir: &Path,
    cgroup: &Cgroup,
    first: Pid,
    pids: &mut Vec<Pid>,
) -> Result<State> {
    let mut steps = CreateSteps {
        checked,
        dir,
        cgroup,
        first,
        init: first,
        pids,
        hooks_prepared: false,
        saved: None,
    };
    parent.drive(&protocol::CREATE, &mut steps)?;
    match steps.saved {
        // The init closes its end once parked; a crash closes it too, and leaves no live init.
        Some(state) if state::proc_stat(state.init_pid).is_some_and(|s| !s.is_dead()) => Ok(state),
        _ => bail!("error during container init: container init exited unexpectedly"),
    }
}

/// create's part of each protocol step.
struct CreateSteps<'a, 'p> {
    checked: &'a Checked<'a>,
    dir: &'a Path,
    cgroup: &'a Cgroup,
    /// The cloned process.
    first: Pid,
    /// The init: the cloned process, or the one it forked.
    init: Pid,
    /// Every process made, for the undo.
    pids: &'p mut Vec<Pid>,
    hooks_prepared: bool,
    saved: Option<State>,
}

impl CreateSteps<'_, '_> {
    /// Once the init has its final namespaces, before the first hook (runc: before createRuntime): move the network
    /// devices into its namespace and put it into its resctrl group. The init is there once it asks for the create
    /// hooks (after its mounts) or is ready.
    fn before_hooks(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.hooks_prepared, true) {
            return Ok(());
        }
        let linux = self.checked.bundle.spec.linux().as_ref();
        if let Some(devices) = linux.and_then(|l| l.net_devices().as_ref()) {
            netdev::move_all(devices, self.init.as_raw())?;
        }
        if let Some(rdt) = &self.checked.intel_rdt {
            rdt.group.clone().apply(&rdt.config, self.init.as_raw())?;
            rdt.group
                .set(&rdt.config)
                .context("error setting Intel RDT config for procHooks process")?;
        }
        Ok(())
    }
}

impl ParentSteps for CreateSteps<'_, '_> {
    // sync 2
    fn map_ids(&mut self) -> Result<()> {
        namespaces::write_id_maps(self.first, &self.checked.bundle.spec)
    }

    // sync 3
    fn forked(&mut self, pid: Pid) -> Result<()> {
        self.init = pid;
        self.pids.push(pid);
        let _ = waitpid(self.first, None);
        Ok(())
    }

    // sync 4
    fn run_create_hooks(&mut self) -> Result<i32> {
        self.before_hooks()?;
        let checked = self.checked;
        let cwd = Some(checked.bundle.dir.as_path());
        let state = checked.container_state(self.init.as_raw());
        hooks::run(Kind::Prestart, checked.hooks(), state, cwd)?;
        hooks::run(Kind::CreateRuntime, checked.hooks(), state, cwd)?;
        Ok(self.init.as_raw())
    }

    // sync 5
    fn ready(&mut self) -> Result<()> {
        self.before_hooks()?;
        let checked = self.checked;
        let start_time = state::proc_stat(self.init.as_raw())
            .context("container init exited during create")?
            .start_time;
        let state = State {
            host_mounts: checked.host_mounts.clone(),
            intel_rdt: checked.intel_rdt.clone(),
            ..State::of_new_container(
                checked.id,
                &checked.bundle,
                self.cgroup,
                checked.namespaces.private_pid,
                self.init.as_raw(),
                start_time,
            )
        };
        state.save(self.dir)?;
        logger::phase("create: state saved");
        self.saved = Some(state);
        Ok(())
    }

    // sync 6
    fn set_rlimits(&mut self) -> Result<()> {
        let process = self.checked.bundle.spec.process().as_ref();
        let rlimits = process.and_then(|p| p.rlimits().as_deref()).unwrap_or(&[]);
        credentials::apply_rlimits(self.init, rlimits)
    }

    // sync 7
    fn seccomp_listener(&mut self, listener: OwnedFd) -> Result<()> {
        let checked = self.checked;
        let profile = checked.bundle.spec.linux().as_ref();
        seccomp::forward_listener(
            profile.and_then(|l| l.seccomp().as_ref()),
            listener,
            self.init.as_raw(),
            checked.container_state(self.init.as_raw()),
        )
    }
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
pub(crate) fn apply_limits(cgroup: &Cgroup, spec: &Spec) -> Result<()> {
    if rootless::enabled() {
        let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
        cgroup.apply_limits(&resources.unwrap_or_default())
    } else {
        cgroup.apply(&cgroup_resources(spec))
    }
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
pub fn cgroup_resources(spec: &Spec) -> LinuxResources {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default()
}
