//! The container init: the child `clone`d by `create`, running hull's own code (no re-exec) until its final execve.
//! A straight line over the plan `create` prepared; any failure is sent to the parent as the full cause chain and
//! the child exits. Its steps of the sync protocol are marked `// sync N` (see `protocol.rs`).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, fork, sethostname, ForkResult};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::Placement;
use crate::child::{self, Identity, RlimitsBy};
use crate::console::ConsoleLink;
use crate::hooks::{self, Kind};
use crate::namespaces;
use crate::oci::SpecState;
use crate::protocol::{ChildEnd, Request, Step, ToChild};
use crate::rootfs::{self, Rootfs};
use crate::{console, logger, lsm, program, seccomp, sys};

/// What the container init does, prepared by `create` from the config before the clone (which copies it).
pub struct InitPlan<'a> {
    pub id: &'a str,
    /// The config as the init sees it (with the notify socket and socket-activation fds hull adds).
    pub spec: &'a Spec,
    /// `annotations`, for the state the container's hooks read.
    pub annotations: &'a BTreeMap<String, String>,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub namespaces: &'a namespaces::Plan,
    /// The namespaces to join, opened by hull.
    pub joins: &'a [(LinuxNamespaceType, OwnedFd)],
    /// The process's AppArmor/SELinux labels, checked against the host.
    pub labels: &'a lsm::Labels,
    /// The id-mapped mounts' trees, prepared by hull.
    pub idmapped: &'a crate::idmap::Trees,
    /// `linux.mountLabel`, when the host has SELinux.
    pub mount_label: Option<&'a str>,
    /// The compiled `linux.seccomp`, loaded last (see [`child::become_process`]).
    pub seccomp: Option<&'a seccomp::Compiled>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The first fd that is not passed to the container (3 + LISTEN_FDS + --preserve-fds).
    pub first_closed_fd: i32,
}

/// The init: its plan, and what `create` made for it before the clone.
pub struct Init<'a> {
    plan: &'a InitPlan<'a>,
    /// Its cgroups, and how it enters them.
    placement: &'a Placement,
    /// Whether to wait for `Go` after entering the cgroups: hull writes the id maps of a new user namespace, or has
    /// systemd move this process into the container's unit, first.
    awaits_go: bool,
    /// The exec fifo, whose read parks the init until `start`.
    fifo: &'a OwnedFd,
    /// Where to send the pty master when `process.terminal` is set.
    console: Option<&'a ConsoleLink>,
    channel: ChildEnd,
    /// Whether the cgroup namespace, if any, was unshared (after the cgroups were entered).
    cgroup_ns_entered: Cell<bool>,
    /// This process's pid on the host, once the parent has told it (only when the container has create-time or
    /// startContainer hooks, which report it).
    host_pid: Cell<i32>,
}

impl<'a> Init<'a> {
    pub fn new(
        plan: &'a InitPlan<'a>,
        placement: &'a Placement,
        awaits_go: bool,
        fifo: &'a OwnedFd,
        console: Option<&'a ConsoleLink>,
        channel: ChildEnd,
    ) -> Init<'a> {
        Init {
            plan,
            placement,
            awaits_go,
            fifo,
            console,
            channel,
            cgroup_ns_entered: Cell::new(false),
            host_pid: Cell::new(0),
        }
    }

    /// Run the init to its execve; never returns.
    pub fn run(&self) -> ! {
        self.channel.run(|| self.setup())
    }

    fn setup(&self) -> Result<Infallible> {
        let plan = self.plan;
        let _ = sys::set_process_name(c"hull:[init]");
        // If hull dies before the container is parked, the half-made init must not outlive it.
        sys::set_parent_death_signal(libc::SIGKILL).context("set parent death signal")?;
        self.placement.entry.enter()?;
        crate::affinity::reset();
        self.close_unneeded_fds()?;
        if self.awaits_go {
            // sync 1
            self.channel.wait_for(Step::Go)?;
        }
        logger::phase("init: in its cgroups");
        if plan.namespaces.fork_init {
            self.join_cgroup_namespace()?;
        }
        self.enter_namespaces()?;
        child::new_session()?;
        // Already so unless an unprivileged hull needed this process dumpable to write its id maps.
        sys::set_dumpable(false).context("set the init non-dumpable")?;
        let process = plan.spec.process().as_ref().context("process is not set")?;
        if !plan.no_new_keyring {
            join_session_keyring(plan.id)?;
        }
        // Device nodes get exactly their configured modes; the process umask is set once the rootfs is done.
        umask(Mode::empty());
        let rootfs = Rootfs::new(
            plan.spec,
            plan.rootfs,
            plan.idmapped,
            &rootfs::Facts {
                bundle: plan.bundle,
                cgroup: self.placement.cgroup.hierarchies(),
                host_cgroups: &self.placement.host_hierarchies,
                cgroup_ns: plan.namespaces.new_cgroup,
                bind_devices: plan.namespaces.user_ns || crate::rootless::enabled(),
                mount_ns: plan.namespaces.mount_ns,
                no_pivot: plan.no_pivot,
                mount_label: plan.mount_label,
            },
        );
        // A cgroup filesystem shows the cgroup namespace it is mounted in, so the namespace comes first; what is
        // mounted before it (host paths bound, procfs, sysfs, tmpfs) shows the same in any cgroup namespace.
        if rootfs.mounts_cgroup_filesystem() {
            self.join_cgroup_namespace()?;
        }
        rootfs.mount_all()?;
        // sync 4
        self.run_create_hooks()?;
        rootfs.switch_root()?;
        rootfs.reopen_dev_null()?;
        plan.idmapped.raw_fds().for_each(sys::close_in_child);
        logger::phase("init: mounts done, root pivoted");
        if let Some(link) = self.console {
            console::set_up(link.socket.as_fd(), link.size, true, process.user().uid())?;
            sys::close_in_child(link.socket.as_raw_fd());
        }
        self.join_cgroup_namespace()?;
        rootfs.make_tmpfs_readonly()?;
        rootfs.make_root_readonly()?;
        umask(Mode::from_bits_truncate(
            process.user().umask().unwrap_or(0o022),
        ));
        self.set_names_and_sysctls()?;
        rootfs.apply_readonly_paths()?;
        rootfs.apply_masked_paths()?;
        logger::phase("init: rootfs finished");
        // The mount plan's heap goes back before the trim below: the init parks inside this function.
        drop(rootfs);

        let cwd = process.cwd();
        chdir(cwd).with_context(|| format!("chdir to cwd {}", cwd.display()))?;
        sys::cloexec_from(plan.first_closed_fd).context("mark inherited fds close-on-exec")?;
        child::reset_signals()?;
        // A parked init may wait for a long time: hand back the heap pages the setup freed (the argument tables, JSON
        // buffers, mountinfo text), which would otherwise stay private dirty memory of every created container.
        // Done before the seccomp filter is loaded, which might not allow madvise/brk.
        // SAFETY: malloc_trim only releases free memory of this single-threaded process's allocator.
        unsafe { libc::malloc_trim(0) };
        // Until hull has recorded this process, it dies with hull: by the parent death signal, or, if hull died
        // before that was set (or this process was forked since), at this receive, which then finds the channel
        // closed.
        // sync 5
        self.channel.request(Request::Ready)?;
        sys::set_parent_death_signal(0).context("clear parent death signal")?;
        let linux = plan.spec.linux().as_ref();
        // sync 6, sync 7
        let program = child::become_process(
            &Identity {
                process,
                labels: plan.labels,
                personality: linux.and_then(|l| l.personality().as_ref()),
                memory_policy: linux.and_then(|l| l.memory_policy().as_ref()),
                seccomp: plan.seccomp,
                rlimits_by: if plan.namespaces.user_ns {
                    RlimitsBy::Parent
                } else {
                    RlimitsBy::Itself
                },
                dumpable: crate::rootless::enabled(),
            },
            &self.channel,
        )?;
        logger::phase("init: parked");
        sys::close_in_child(self.channel.raw_fd());
        self.wait_for_start();
        logger::phase("init: released");
        let hooks = plan.spec.hooks().as_ref();
        if let Err(err) = hooks::run(Kind::StartContainer, hooks, self.hook_state(), None) {
            self.fail_start(&err);
        }
        let errno = sys::execve(&program.path, &program.argv, &program.envp);
        let _ = writeln!(
            std::io::stderr(),
            "hull: exec {}: {}",
            program.name,
            program::go_error_text(errno)
        );
        sys::exit_now(127)
    }

    /// Before entering anything: close every fd from `first_closed_fd` up except those the setup still uses (each
    /// closed in turn once used). Among those closed: this process's copy of the state directory lock (the parent's
    /// copy keeps it held), hull's end of a relayed terminal, and whatever the caller left open.
    fn close_unneeded_fds(&self) -> Result<()> {
        let mut keep = vec![self.channel.raw_fd(), self.fifo.as_raw_fd()];
        keep.extend(self.console.map(|link| link.socket.as_raw_fd()));
        keep.extend(self.plan.joins.iter().map(|(_, fd)| fd.as_raw_fd()));
        keep.extend(self.plan.idmapped.raw_fds());
        keep.extend(logger::keep_or_close_file_in_child());
        sys::close_all_except(self.plan.first_closed_fd, &keep).context("close inherited fds")
    }

    /// Unshare the cgroup namespace (once, and only now that this process is in its cgroups) so that the
    /// container's cgroup is its root: before a forked init inherits it, or before /sys/fs/cgroup is mounted, or
    /// after the rootfs is done, whichever comes first.
    fn join_cgroup_namespace(&self) -> Result<()> {
        if self.cgroup_ns_entered.get() || !self.plan.namespaces.new_cgroup {
            return Ok(());
        }
        namespaces::unshare_flags(CloneFlags::CLONE_NEWCGROUP)?;
        self.cgroup_ns_entered.set(true);
        Ok(())
    }

    /// Join, unshare, and fork when a pid namespace requires it (see `namespaces`).
    fn enter_namespaces(&self) -> Result<()> {
        let ns = self.plan.namespaces;
        namespaces::join(self.plan.joins)?;
        for (_, fd) in self.plan.joins {
            sys::close_in_child(fd.as_raw_fd());
        }
        if ns.unshare_user {
            namespaces::unshare_flags(CloneFlags::CLONE_NEWUSER)?;
            // sync 2
            self.channel.request(Request::MapIds)?;
        }
        if ns.user_ns {
            namespaces::become_root()?;
        }
        namespaces::unshare_flags(ns.unshare_flags)?;
        if ns.new_time {
            namespaces::unshare_time(self.plan.spec)?;
        }
        if ns.fork_init {
            // SAFETY: hull is single-threaded, so the child of fork may keep running Rust code.
            match unsafe { fork() }.context("fork the container init")? {
                ForkResult::Parent { child } => {
                    // sync 3
                    let _ = self.channel.tell(
                        Request::Forked {
                            pid: child.as_raw(),
                        },
                        None,
                    );
                    sys::exit_now(0);
                }
                // No parent-death signal here: the intermediate parent exits at once by design. If setup fails, hull
                // kills this process by the pid it was sent.
                ForkResult::Child => {
                    // sync 3
                    self.channel.wait_for(Step::Fork)?;
                }
            }
        }
        Ok(())
    }

    /// Just before `pivot_root`, while host paths still resolve: the parent runs the prestart and createRuntime hooks
    /// (in the runtime namespace) and tells this process its host pid; then this process runs the createContainer
    /// hooks in the container's namespaces, in the rootfs as runc does. The round trip is only made when some hook
    /// needs it.
    fn run_create_hooks(&self) -> Result<()> {
        let hooks = self.plan.spec.hooks().as_ref();
        let needs_pid = [
            Kind::Prestart,
            Kind::CreateRuntime,
            Kind::CreateContainer,
            Kind::StartContainer,
        ];
        if !hooks::any(hooks, &needs_pid) {
            return Ok(());
        }
        // sync 4
        match self.channel.request(Request::RunCreateHooks)? {
            ToChild::CreateHooksRan { pid } => self.host_pid.set(pid),
            other => bail!("sync protocol error: expected CreateHooksRan, got {other:?}"),
        }
        hooks::run(
            Kind::CreateContainer,
            hooks,
            self.hook_state(),
            Some(self.plan.rootfs),
        )
    }

    /// The hostname, domain name and sysctls, once the container's /proc is mounted.
    fn set_names_and_sysctls(&self) -> Result<()> {
        let spec = self.plan.spec;
        if let Some(hostname) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            sethostname(hostname).with_context(|| format!("set hostname {hostname:?}"))?;
        }
        if let Some(domainname) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            sys::set_domainname(domainname)
                .with_context(|| format!("set domainname {domainname:?}"))?;
        }
        if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
            for (key, value) in sysctl {
                write_sysctl(key, value)?;
            }
        }
        Ok(())
    }

    /// The container state the container's own hooks read (the status is the hook kind's).
    fn hook_state(&self) -> SpecState<'_> {
        SpecState {
            oci_version: crate::oci::OCI_VERSION,
            id: self.plan.id,
            status: "",
            pid: self.host_pid.get(),
            bundle: self.plan.bundle,
            annotations: self.plan.annotations,
        }
    }

    /// A startContainer hook failed after `start` released this process: leave the error in the exec fifo, where
    /// `start` reads it once this process is gone, and exit without running the program.
    fn fail_start(&self, err: &anyhow::Error) -> ! {
        let text = format!("{err:#}");
        // SAFETY: writing a buffer we own to an fd we own.
        let _ = unsafe { libc::write(self.fifo.as_raw_fd(), text.as_ptr().cast(), text.len()) };
        sys::exit_now(1)
    }

    /// Park until `hull start` writes to the exec fifo (held open read-write, so the read blocks until then).
    fn wait_for_start(&self) {
        let mut byte = [0u8; 1];
        loop {
            // SAFETY: reading into a 1-byte stack buffer from an fd we own.
            let n = unsafe { libc::read(self.fifo.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
            match n {
                1 => return,
                -1 if nix::errno::Errno::last() == nix::errno::Errno::EINTR => continue,
                _ => sys::exit_now(1),
            }
        }
    }
}

/// A new session keyring named like runc's (`_ses.<id>`), searchable by the user; unsupported kernels are fine.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).context("keyring name")?;
    match sys::join_session_keyring(&name) {
        Ok(key) => {
            // runc: keep the default permissions and add "search" for the key's user (KEY_USR_SEARCH).
            let perm = 0x3f01_0000 | 0x0008_0000 | 0x003f_0000;
            sys::set_key_permissions(key, perm).context("set session keyring permissions")
        }
        Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).context("join session keyring"),
    }
}

/// Write one sysctl through the container's procfs, refusing anything that is not really procfs. The file is
/// looked up from the procfs root without crossing a mount (CVE-2025-52881): something mounted over a path
/// component (another procfs file bind-mounted over `/proc/sys/kernel/domainname`) would otherwise receive the
/// write, and being procfs too it would pass the filesystem check.
fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let proc_root = nix::fcntl::open(
        "/proc",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /proc")?;
    let fs = nix::sys::statfs::fstatfs(&proc_root).context("statfs /proc")?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("sysctl {path}: /proc is not procfs");
    }
    let relative = CString::new(&path["/proc/".len()..]).context("sysctl name")?;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_SYMLINKS;
    let file = sys::openat2(proc_root.as_fd(), &relative, libc::O_WRONLY, resolve)
        .with_context(|| format!("open sysctl {path}"))?;
    let mut file = fs::File::from(file);
    file.write_all(value.as_bytes())
        .with_context(|| format!("write {value:?} to {path}"))
}
