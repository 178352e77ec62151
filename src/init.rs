//! The container init: the child `clone`d by `create`, running hull's own code (no re-exec) until its final execve.
//! A straight line over the spec; any failure is sent to the parent as the full cause chain and the child exits.

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
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, fork, sethostname, ForkResult, Pid};
use oci_spec::runtime::{
    LinuxMemoryPolicy, LinuxNamespaceType, LinuxPersonality, LinuxPersonalityDomain, Process, Spec,
};

use crate::cgroups::Cgroup;
use crate::channel::{Channel, Msg};
use crate::hooks::{self, Kind};
use crate::mempolicy::MemoryPolicy;
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, Rootfs};
use crate::spawn::ConsoleLink;
use crate::state::SpecState;
use crate::{console, credentials, default_spec, logger, lsm, program, seccomp, sys};

/// Everything the child needs, borrowed from the parent's memory (the clone copied it).
pub struct Init<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    /// `annotations`, for the state the container's hooks read.
    pub annotations: &'a BTreeMap<String, String>,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    /// The host's hierarchies, for a container without a cgroup of its own (see `rootfs::Facts::host_cgroups`).
    pub host_cgroups: &'a [crate::cgroups::Hierarchy],
    /// Opened by hull: how this process enters its cgroups (first thing, before it forks or unshares).
    pub cgroup_entry: &'a crate::cgroups::Entry,
    pub plan: &'a Plan,
    pub joins: &'a [(LinuxNamespaceType, OwnedFd)],
    pub channel: &'a Channel,
    /// The process's AppArmor/SELinux labels, checked against the host.
    pub labels: &'a lsm::Labels,
    /// The id-mapped mounts' trees, prepared by hull.
    pub idmapped: &'a crate::idmap::Trees,
    /// `linux.mountLabel`, when the host has SELinux.
    pub mount_label: Option<&'a str>,
    /// The compiled `linux.seccomp`, loaded last (see [`become_process`]).
    pub seccomp: Option<&'a seccomp::Compiled>,
    pub fifo: &'a OwnedFd,
    /// Where to send the pty master when `process.terminal` is set.
    pub console: Option<&'a ConsoleLink>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The first fd that is not passed to the container (3 + LISTEN_FDS + --preserve-fds).
    pub first_closed_fd: i32,
    /// Whether to wait for `Msg::Go` after entering the cgroups: hull writes the id maps of a new user namespace,
    /// or has systemd move this process into the container's unit, first.
    pub awaits_go: bool,
    /// Whether the cgroup namespace, if any, was unshared (after the cgroups were entered).
    pub cgroup_ns_entered: Cell<bool>,
    /// This process's pid on the host, once the parent has told it (only when the container has create-time or
    /// startContainer hooks, which report it).
    pub host_pid: Cell<i32>,
}

impl Init<'_> {
    /// Run the init to its execve; never returns.
    pub fn run(&self) -> ! {
        self.channel.run_child(|| self.setup())
    }

    fn setup(&self) -> Result<Infallible> {
        let _ = sys::set_process_name(c"hull:[init]");
        // If hull dies before the container is parked, the half-made init must not outlive it.
        sys::set_parent_death_signal(libc::SIGKILL).context("set parent death signal")?;
        self.cgroup_entry.enter()?;
        crate::affinity::reset();
        self.close_unneeded_fds()?;
        if self.awaits_go {
            self.channel.recv_expect(&["Go"])?;
        }
        logger::phase("init: in its cgroups");
        if self.plan.fork_init {
            self.join_cgroup_namespace()?;
        }
        self.enter_namespaces()?;
        new_session()?;
        // Already so unless an unprivileged hull needed this process dumpable to write its id maps.
        sys::set_dumpable(false).context("set the init non-dumpable")?;
        let process = self.spec.process().as_ref().context("process is not set")?;
        if !self.no_new_keyring {
            join_session_keyring(self.id)?;
        }
        // Device nodes get exactly their configured modes; the process umask is set once the rootfs is done.
        umask(Mode::empty());
        let rootfs = Rootfs::new(
            self.spec,
            self.rootfs,
            self.idmapped,
            &rootfs::Facts {
                bundle: self.bundle,
                cgroup: self.cgroup.hierarchies(),
                host_cgroups: self.host_cgroups,
                cgroup_ns: self.plan.new_cgroup,
                bind_devices: self.plan.user_ns || crate::rootless::enabled(),
                mount_ns: self.plan.mount_ns,
                no_pivot: self.no_pivot,
                mount_label: self.mount_label,
            },
        );
        // A cgroup filesystem shows the cgroup namespace it is mounted in, so the namespace comes first; what is
        // mounted before it (host paths bound, procfs, sysfs, tmpfs) shows the same in any cgroup namespace.
        if rootfs.mounts_cgroup_filesystem() {
            self.join_cgroup_namespace()?;
        }
        rootfs.mount_all()?;
        self.run_create_hooks()?;
        rootfs.switch_root()?;
        rootfs.reopen_dev_null()?;
        self.idmapped.raw_fds().for_each(sys::close_in_child);
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
        if let Some(hostname) = self.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            sethostname(hostname).with_context(|| format!("set hostname {hostname:?}"))?;
        }
        if let Some(domainname) = self.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            sys::set_domainname(domainname)
                .with_context(|| format!("set domainname {domainname:?}"))?;
        }
        if let Some(sysctl) = self.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
            for (key, value) in sysctl {
                write_sysctl(key, value)?;
            }
        }
        rootfs.apply_readonly_paths()?;
        rootfs.apply_masked_paths()?;
        logger::phase("init: rootfs finished");

        let cwd = process.cwd();
        chdir(cwd).with_context(|| format!("chdir to cwd {}", cwd.display()))?;
        sys::cloexec_from(self.first_closed_fd).context("mark inherited fds close-on-exec")?;
        reset_signals()?;
        // A parked init may wait for a long time: hand back the heap pages the setup freed (the argument tables, JSON
        // buffers, mountinfo text), which would otherwise stay private dirty memory of every created container.
        // Done before the seccomp filter is loaded, which might not allow madvise/brk.
        // SAFETY: malloc_trim only releases free memory of this single-threaded process's allocator.
        unsafe { libc::malloc_trim(0) };
        let rlimits_by = if self.plan.user_ns {
            RlimitsBy::Parent
        } else {
            RlimitsBy::Itself
        };
        // Until hull has recorded this process, it dies with hull: by the parent death signal, or, if hull died
        // before that was set (or this process was forked since), at this receive, which then finds the channel
        // closed.
        self.channel.send(&Msg::Ready)?;
        self.channel.recv_expect(&["StateSaved"])?;
        sys::set_parent_death_signal(0).context("clear parent death signal")?;
        let linux = self.spec.linux().as_ref();
        let program = become_process(
            &Identity {
                process,
                labels: self.labels,
                personality: linux.and_then(|l| l.personality().as_ref()),
                memory_policy: linux.and_then(|l| l.memory_policy().as_ref()),
                seccomp: self.seccomp,
                rlimits_by,
                dumpable: crate::rootless::enabled(),
            },
            self.channel,
        )?;
        logger::phase("init: parked");
        sys::close_in_child(self.channel.raw_fd());
        self.wait_for_start();
        logger::phase("init: released");
        let hooks = self.spec.hooks().as_ref();
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
        keep.extend(self.joins.iter().map(|(_, fd)| fd.as_raw_fd()));
        keep.extend(self.idmapped.raw_fds());
        keep.extend(logger::keep_or_close_file_in_child());
        sys::close_all_except(self.first_closed_fd, &keep).context("close inherited fds")
    }

    /// Unshare the cgroup namespace (once, and only now that this process is in its cgroups) so that the
    /// container's cgroup is its root: before a forked init inherits it, or before /sys/fs/cgroup is mounted, or
    /// after the rootfs is done, whichever comes first.
    fn join_cgroup_namespace(&self) -> Result<()> {
        if self.cgroup_ns_entered.get() || !self.plan.new_cgroup {
            return Ok(());
        }
        namespaces::unshare_flags(CloneFlags::CLONE_NEWCGROUP)?;
        self.cgroup_ns_entered.set(true);
        Ok(())
    }

    /// Join, unshare, and fork when a pid namespace requires it (see `namespaces`).
    fn enter_namespaces(&self) -> Result<()> {
        namespaces::join(self.joins)?;
        for (_, fd) in self.joins {
            sys::close_in_child(fd.as_raw_fd());
        }
        if self.plan.unshare_user {
            namespaces::unshare_flags(CloneFlags::CLONE_NEWUSER)?;
            self.channel.send(&Msg::MapIds)?;
            self.channel.recv_expect(&["IdsMapped"])?;
        }
        if self.plan.user_ns {
            namespaces::become_root()?;
        }
        namespaces::unshare_flags(self.plan.unshare_flags)?;
        if self.plan.new_time {
            namespaces::unshare_time(self.spec)?;
        }
        if self.plan.fork_init {
            // SAFETY: hull is single-threaded, so the child of fork may keep running Rust code.
            match unsafe { fork() }.context("fork the container init")? {
                ForkResult::Parent { child } => {
                    let _ = self.channel.send(&Msg::Forked {
                        pid: child.as_raw(),
                    });
                    sys::exit_now(0);
                }
                // No parent-death signal here: the intermediate parent exits at once by design. If setup fails, hull
                // kills this process by the pid it was sent.
                ForkResult::Child => {
                    self.channel.recv_expect(&["ForkSeen"])?;
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
        let hooks = self.spec.hooks().as_ref();
        let needs_pid = [
            Kind::Prestart,
            Kind::CreateRuntime,
            Kind::CreateContainer,
            Kind::StartContainer,
        ];
        if !hooks::any(hooks, &needs_pid) {
            return Ok(());
        }
        self.channel.send(&Msg::RunCreateHooks)?;
        match self.channel.recv_expect(&["CreateHooksRan"])? {
            Msg::CreateHooksRan { pid } => self.host_pid.set(pid),
            other => bail!("sync protocol error: unexpected {other:?}"),
        }
        hooks::run(
            Kind::CreateContainer,
            hooks,
            self.hook_state(),
            Some(self.rootfs),
        )
    }

    /// The container state the container's own hooks read (the status is the hook kind's).
    fn hook_state(&self) -> SpecState<'_> {
        SpecState {
            oci_version: default_spec::OCI_VERSION,
            id: self.id,
            status: "",
            pid: self.host_pid.get(),
            bundle: self.bundle,
            annotations: self.annotations,
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

/// The program a container process runs, resolved and ready for execve.
pub struct Program {
    pub name: String,
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// Who sets a new process's rlimits, which may raise hard limits (CAP_SYS_RESOURCE in the initial user namespace).
#[derive(Clone, Copy)]
pub enum RlimitsBy {
    /// The process itself, still privileged in hull's user namespace.
    Itself,
    /// hull, with prlimit(2) (`Msg::SetRlimits`, as runc does at `procReady`): a process in another user namespace
    /// could not raise them.
    Parent,
}

/// As runc's nsexec: every process hull starts in a container leads a session of its own, inside the container's
/// pid namespace (CRIU refuses to dump a container whose session leader is outside it).
pub fn new_session() -> Result<()> {
    match nix::unistd::setsid() {
        Ok(_) => Ok(()),
        Err(nix::errno::Errno::EPERM) if nix::unistd::getsid(None) == Ok(nix::unistd::getpid()) => {
            Ok(())
        }
        Err(e) => Err(e).context("setsid"),
    }
}

/// What a new process becomes before its execve, as the container's init or an exec'd process.
#[derive(Clone, Copy)]
pub struct Identity<'a> {
    pub process: &'a Process,
    pub labels: &'a lsm::Labels,
    /// The container's `linux.personality`.
    pub personality: Option<&'a LinuxPersonality>,
    /// The container's `linux.memoryPolicy`.
    pub memory_policy: Option<&'a LinuxMemoryPolicy>,
    /// The compiled filters, loaded last.
    pub seccomp: Option<&'a seccomp::Compiled>,
    pub rlimits_by: RlimitsBy,
    /// Made dumpable once its credentials are final: the parked init of a rootless container, so that its user,
    /// who has no CAP_SYS_PTRACE on the host, can open its namespaces to `exec` into it before `start` (as into runc's,
    /// which never becomes non-dumpable when it joins nothing). By then it holds nothing of hull's but the exec fifo,
    /// and its credentials, namespaces and filters are the container's own: what a process in the container could
    /// reach through it, it already has. Every other new process stays non-dumpable until its execve.
    pub dumpable: bool,
}

/// In the new process, inside the container with its cwd set: label what it will execve (AppArmor, SELinux), take
/// the process's identity (rlimits first, see [`RlimitsBy`]), check the cwd, resolve the program with the process's
/// environment, and load the seccomp filters. Everything that needs a syscall the profile might deny happens before
/// the filters; after them only the capability sets (without `no_new_privs`), the parent messages, the wait for
/// `start` and execve remain. Without `no_new_privs` loading needs CAP_SYS_ADMIN, so it comes before the capabilities are
/// dropped (as in runc); with it, last.
pub fn become_process(identity: &Identity, channel: &Channel) -> Result<Program> {
    let Identity {
        process,
        labels,
        personality,
        memory_policy,
        seccomp,
        rlimits_by,
        dumpable,
    } = *identity;
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let user = credentials::lookup_user(process.user().uid(), &passwd, &group);
    let env = program::environment(process.env().as_deref().unwrap_or(&[]), &user.home)?;
    let rlimits = process.rlimits().as_deref().unwrap_or(&[]);
    if !rlimits.is_empty() {
        match rlimits_by {
            RlimitsBy::Itself => credentials::apply_rlimits(Pid::from_raw(0), rlimits)?,
            RlimitsBy::Parent => {
                channel.send(&Msg::SetRlimits)?;
                channel.recv_expect(&["RlimitsSet"])?;
            }
        }
    }
    labels.apply()?;
    let supported = caps::runtime::thread_all_supported();
    credentials::switch_user(process, &user.groups, &supported)?;
    verify_cwd()?;
    let args = process.args().as_deref().unwrap_or(&[]);
    let name = args.first().context("args must not be empty")?;
    let path = program::look_path(name, &env)?;
    let program = Program {
        name: name.clone(),
        path: program::c_path(&path)?,
        argv: program::c_strings(args)?,
        envp: program::c_strings(&env)?,
    };
    crate::sched::apply(process)?;
    if let Some(personality) = personality {
        set_personality(personality)?;
    }
    if let Some(policy) = memory_policy {
        MemoryPolicy::of(policy)?.apply()?;
    }
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    // The kernel makes a process non-dumpable again at each change of its credentials except a dropping of
    // capabilities: made dumpable after the last other change, before a filter could deny prctl.
    let make_dumpable = || -> Result<()> {
        if dumpable {
            sys::set_dumpable(true).context("make the parked init dumpable")?;
        }
        Ok(())
    };
    if let Some(filters) = seccomp.filter(|_| !no_new_privs) {
        credentials::raise_permitted()?;
        make_dumpable()?;
        load_seccomp(filters, channel)?;
        credentials::apply_caps(process, &supported)?;
    } else {
        credentials::apply_caps(process, &supported)?;
        make_dumpable()?;
        if let Some(filters) = seccomp {
            load_seccomp(filters, channel)?;
        }
    }
    Ok(program)
}

/// `linux.personality`: the execution domain of the container's processes (`LINUX32` makes `uname -m` say i686), set
/// before the seccomp filters as runc sets it; its flags are ignored, as runc ignores them (with a warning at create).
fn set_personality(personality: &LinuxPersonality) -> Result<()> {
    let domain: libc::c_ulong = match personality.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) takes a plain value and touches no memory of ours.
    let ret = unsafe { libc::personality(domain) };
    nix::errno::Errno::result(ret)
        .map(drop)
        .with_context(|| format!("set personality {}", personality.domain()))
}

/// Load the filters; a notify listener goes to the parent, which passes it on to the profile's agent.
fn load_seccomp(filters: &seccomp::Compiled, channel: &Channel) -> Result<()> {
    if let Some(listener) = filters.load()? {
        channel.send_with_fd(&Msg::SeccompListener, listener.as_fd())?;
    }
    Ok(())
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

/// The working directory must be inside the container's root (CVE-2024-21626: a leaked host fd as cwd).
pub fn verify_cwd() -> Result<()> {
    let cwd = std::env::current_dir().context(
        "getcwd: current working directory is outside of container mount namespace root",
    )?;
    if !cwd.is_absolute() || cwd.to_string_lossy().starts_with("(unreachable)") {
        bail!("current working directory is outside of container mount namespace root");
    }
    Ok(())
}

/// The program starts with an empty signal mask and default dispositions (hull ignores SIGPIPE, as Rust programs
/// do; ignored dispositions would otherwise survive execve).
pub fn reset_signals() -> Result<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no handler code, so it cannot violate signal safety.
        unsafe { sigaction(sig, &default) }.with_context(|| format!("reset {sig}"))?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context("clear signal mask")?;
    Ok(())
}
