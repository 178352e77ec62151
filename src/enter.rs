//! `exec`: a new process entering an existing container.
//!
//! hull clones one child straight into the container's cgroups (see `cgroups::Entry`). The child joins the init's
//! namespaces (user first, mount late: runc's order), and when a pid or time namespace only applies to its children
//! it forks once more with `CLONE_PARENT`, so the process that runs the program is still hull's child (hull can
//! wait for it) while living inside the namespace. Then it takes the process's credentials and calls execve. hull
//! knows the program runs when the sync channel, close-on-exec, closes after the child's `Exec` message. Both ends'
//! steps of the sync protocol (`protocol::EXEC`) are marked `// sync N`.

use std::convert::Infallible;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, chroot, fchdir, Pid};
use oci_spec::runtime::Process;

use crate::affinity::ExecAffinity;
use crate::cgroups::{Entry, SubPaths};
use crate::child::{self, Identity, RlimitsBy};
use crate::console::ConsoleLink;
use crate::container::Container;
use crate::namespaces::{self, CLONE_NEWTIME};
use crate::protocol::{self, ChildEnd, ParentEnd, ParentSteps, Step};
use crate::state::{self, Status};
use crate::{console, credentials, foreground, logger, lsm, rootless, seccomp, spawn, sys};

/// What `hull exec` asks for, its flags already folded into `process`.
pub struct Request<'a> {
    pub container: &'a Container,
    pub process: &'a Process,
    pub sub_cgroups: &'a SubPaths,
    pub preserve_fds: u32,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub pidfd_socket: Option<&'a Path>,
}

/// A namespace of the container's init that differs from hull's own.
struct Join {
    name: &'static str,
    flag: CloneFlags,
    fd: OwnedFd,
}

/// Open the init's namespaces that hull is not already in. A namespace hull shares with the init needs no
/// joining (and joining one's own user namespace is refused by the kernel).
fn open_namespaces(init: i32) -> Result<Vec<Join>> {
    let mut joins = Vec::new();
    for kind in namespaces::JOIN_ORDER {
        let (name, flag) = (namespaces::proc_name(kind), namespaces::clone_flag(kind));
        let Ok(ours) = fs::metadata(format!("/proc/self/ns/{name}")) else {
            // This kernel has no such namespace type.
            continue;
        };
        let path = format!("/proc/{init}/ns/{name}");
        let file = File::open(&path).with_context(|| format!("open {path}"))?;
        let theirs = file.metadata().with_context(|| format!("stat {path}"))?;
        if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
            joins.push(Join {
                name,
                flag,
                fd: file.into(),
            });
        }
    }
    Ok(joins)
}

/// The init's root, when the init shares hull's mount namespace but not its root: a container without a mount
/// namespace of its own, whose init chrooted into the rootfs. The new process chroots there too (runc leaves it at
/// the host's /, where the process's cwd and program would be the host's).
fn open_chroot(init: i32, joins: &[Join]) -> Result<Option<OwnedFd>> {
    if joins.iter().any(|j| j.flag == CloneFlags::CLONE_NEWNS) {
        return Ok(None);
    }
    let path = format!("/proc/{init}/root");
    let root = File::open(&path).with_context(|| format!("open {path}"))?;
    let theirs = root.metadata().with_context(|| format!("stat {path}"))?;
    let ours = fs::metadata("/").context("stat /")?;
    Ok(((theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino())).then(|| root.into()))
}

/// As runc, a rootless exec that may not join the container's cgroup runs outside it: an unprivileged user may move
/// processes only within a subtree delegated to it, and hull may have been started outside that subtree.
fn may_run_outside_cgroup(err: &anyhow::Error) -> bool {
    let outside = rootless::enabled() && spawn::permission_denied(err);
    if outside {
        logger::debug(format!(
            "rootless exec outside the container's cgroup: {err:#}"
        ));
    }
    outside
}

/// Run `req.process` in the container; returns hull's exit code (the process's, when in the foreground).
pub fn exec(req: &Request) -> Result<i32> {
    let terminal = req.process.terminal().unwrap_or(false);
    spawn::check_terminal(terminal, req.console_socket.is_some(), req.detach)?;
    // Socket activation fds are for the container's init only (runc passes none to exec).
    spawn::check_passed_fds(0, req.preserve_fds)?;
    let joins = open_namespaces(req.container.state.init_pid)?;
    let root = open_chroot(req.container.state.init_pid, &joins)?;
    // The namespaces and root opened above are the init's own only if its pid still names it now (start time checked).
    if req.container.status() == Status::Stopped {
        bail!("cannot exec in a stopped container");
    }
    let mut entry = match req.container.state.cgroup.entry_at(req.sub_cgroups) {
        Err(err) if may_run_outside_cgroup(&err) => Entry::outside(),
        entry => entry?,
    };
    let signals = if req.detach {
        None
    } else {
        Some(foreground::block_signals()?)
    };
    let console = ConsoleLink::open(req.process, req.console_socket)?;
    let labels = lsm::labels(req.process, lsm::Host::detect())?;
    let profile = req.container.state.seccomp.as_ref();
    let filters = profile
        .map(seccomp::compile)
        .transpose()
        .context("linux.seccomp")?;
    // The exec'd process's own execCPUAffinity, else the container's (runc's `ExecCPUAffinity`).
    let affinity = ExecAffinity::of(
        req.process
            .exec_cpu_affinity()
            .as_ref()
            .or(req.container.state.exec_cpu_affinity.as_ref()),
    )?;
    affinity.apply_initial()?;
    let (parent_end, child_end) = protocol::pair()?;
    // Non-dumpable until its execve: the child runs inside the container's namespaces, where nothing may ptrace
    // it or open its /proc files (CVE-2016-9962).
    sys::set_dumpable(false).context("set hull non-dumpable")?;
    let first = match spawn::with_oom_score_adj(req.process.oom_score_adj(), || {
        match spawn::clone_into_cgroup(0, &mut entry) {
            Err(err) if may_run_outside_cgroup(&err) => {
                entry = Entry::outside();
                spawn::clone_into_cgroup(0, &mut entry)
            }
            forked => forked,
        }
    })? {
        sys::Forked::Child => {
            drop(parent_end);
            Child {
                process: req.process,
                joins: &joins,
                root: root.as_ref(),
                entry: &entry,
                channel: child_end,
                console: console.as_ref(),
                labels: &labels,
                affinity: &affinity,
                personality: req.container.state.personality.as_ref(),
                memory_policy: req.container.state.memory_policy.as_ref(),
                seccomp: filters.as_ref(),
                first_closed_fd: (3 + req.preserve_fds) as i32,
            }
            .run()
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(child_end);
    let mut pids = vec![first];
    let pid = match sync_with_child(&parent_end, first, req, &mut pids) {
        Ok(pid) => pid,
        Err(err) => {
            for pid in &pids {
                let _ = kill(*pid, Signal::SIGKILL);
                let _ = waitpid(*pid, None);
            }
            return Err(err.context("unable to start container process"));
        }
    };
    let master = match &console {
        Some(link) => link.master()?,
        None => None,
    };
    if let Some(path) = req.pidfd_socket {
        spawn::send_pidfd(path, pid, "setns")?;
    }
    // As runc, also in the foreground: the pid file is written once the process runs.
    if let Some(path) = req.pid_file {
        state::write_atomic(path, pid.as_raw().to_string().as_bytes(), 0o644)
            .with_context(|| format!("write pid file {}", path.display()))?;
    }
    match signals {
        None => Ok(0),
        Some(signals) => foreground::wait(&signals, pid, master),
    }
}

/// Drive the child through `protocol::EXEC` to its execve; returns the pid of the process that runs the program.
fn sync_with_child(
    parent: &ParentEnd,
    first: Pid,
    req: &Request,
    pids: &mut Vec<Pid>,
) -> Result<Pid> {
    let rdt_group = req.container.state.intel_rdt.as_ref().map(|rdt| &rdt.group);
    // As runc's setnsProcess: the new process joins the container's resctrl group (its children follow it there).
    if let Some(group) = rdt_group {
        group.add(first.as_raw())?;
    }
    let mut steps = ExecSteps {
        req,
        first,
        pid: first,
        pids,
    };
    parent.drive(&protocol::EXEC, &mut steps)?;
    Ok(steps.pid)
}

/// exec's part of each protocol step.
struct ExecSteps<'a, 'p> {
    req: &'a Request<'a>,
    /// The cloned process.
    first: Pid,
    /// The process that runs the program: the cloned one, or the one it forked.
    pid: Pid,
    /// Every process made, killed if the exec fails.
    pids: &'p mut Vec<Pid>,
}

impl ParentSteps for ExecSteps<'_, '_> {
    // sync 3
    fn forked(&mut self, pid: Pid) -> Result<()> {
        self.pid = pid;
        self.pids.push(pid);
        // It may have forked before its parent joined the group.
        if let Some(rdt) = &self.req.container.state.intel_rdt {
            rdt.group.add(pid.as_raw())?;
        }
        let _ = waitpid(self.first, None);
        Ok(())
    }

    // sync 6
    fn set_rlimits(&mut self) -> Result<()> {
        let rlimits = self.req.process.rlimits().as_deref().unwrap_or(&[]);
        credentials::apply_rlimits(self.pid, rlimits)
    }

    // sync 7
    fn seccomp_listener(&mut self, listener: OwnedFd) -> Result<()> {
        let state = &self.req.container.state;
        seccomp::forward_listener(
            state.seccomp.as_ref(),
            listener,
            self.pid.as_raw(),
            state.spec_state("running"),
        )
    }
}

/// The cloned child, running hull's code until its execve.
struct Child<'a> {
    process: &'a Process,
    joins: &'a [Join],
    /// The init's root to chroot into (see `open_chroot`).
    root: Option<&'a OwnedFd>,
    entry: &'a Entry,
    channel: ChildEnd,
    /// Where to send the pty master when the process has a terminal.
    console: Option<&'a ConsoleLink>,
    /// The process's AppArmor/SELinux labels, checked against the host.
    labels: &'a lsm::Labels,
    /// The CPUs the process runs on once in the container's cgroups.
    affinity: &'a ExecAffinity,
    /// The container's `linux.personality`.
    personality: Option<&'a oci_spec::runtime::LinuxPersonality>,
    /// The container's `linux.memoryPolicy`.
    memory_policy: Option<&'a oci_spec::runtime::LinuxMemoryPolicy>,
    /// The container's seccomp filters, compiled by hull before the clone.
    seccomp: Option<&'a seccomp::Compiled>,
    /// The first fd not passed to the program (3 + --preserve-fds).
    first_closed_fd: i32,
}

impl Child<'_> {
    fn run(&self) -> ! {
        self.channel.run(|| self.setup())
    }

    fn setup(&self) -> Result<Infallible> {
        // If hull dies before the program runs, the half-made process must not outlive it.
        sys::set_parent_death_signal(libc::SIGKILL).context("set parent death signal")?;
        self.entry.enter()?;
        self.affinity.apply_final()?;
        // Nothing but what the setup uses may come along into the container (see `Init::close_unneeded_fds`).
        let mut keep = vec![self.channel.raw_fd()];
        keep.extend(self.console.map(|link| link.socket.as_raw_fd()));
        keep.extend(self.joins.iter().map(|join| join.fd.as_raw_fd()));
        keep.extend(self.root.map(|fd| fd.as_raw_fd()));
        keep.extend(logger::keep_or_close_file_in_child());
        sys::close_all_except(self.first_closed_fd, &keep).context("close inherited fds")?;
        self.join_namespaces()?;
        child::new_session()?;
        let process = self.process;
        let cwd = process.cwd();
        chdir(cwd).with_context(|| format!("chdir to cwd {}", cwd.display()))?;
        if let Some(link) = self.console {
            console::set_up(link.socket.as_fd(), link.size, false, process.user().uid())?;
            sys::close_in_child(link.socket.as_raw_fd());
        }
        sys::cloexec_from(self.first_closed_fd).context("mark inherited fds close-on-exec")?;
        child::reset_signals()?;
        sys::set_parent_death_signal(0).context("clear parent death signal")?;
        let rlimits_by = if self
            .joins
            .iter()
            .any(|j| j.flag == CloneFlags::CLONE_NEWUSER)
        {
            RlimitsBy::Parent
        } else {
            RlimitsBy::Itself
        };
        // sync 6, sync 7
        let program = child::become_process(
            &Identity {
                process,
                labels: self.labels,
                personality: self.personality,
                memory_policy: self.memory_policy,
                seccomp: self.seccomp,
                rlimits_by,
                dumpable: false,
            },
            &self.channel,
        )?;
        // sync 8
        self.channel.tell(protocol::Request::Exec, None)?;
        let errno = sys::execve(&program.path, &program.argv, &program.envp);
        Err(anyhow!(errno.desc())).with_context(|| format!("exec {}", program.name))
    }

    /// Join the init's namespaces, and its root when it is not its mount namespace's; fork once (see the module
    /// comment) when a pid or time namespace was joined.
    fn join_namespaces(&self) -> Result<()> {
        let mut fork = false;
        for join in self.joins {
            setns(join.fd.as_fd(), join.flag)
                .with_context(|| format!("join {} namespace", join.name))?;
            if join.flag == CloneFlags::CLONE_NEWUSER {
                namespaces::become_root()?;
            }
            fork |= join.flag == CloneFlags::CLONE_NEWPID || join.flag == CLONE_NEWTIME;
        }
        for join in self.joins {
            sys::close_in_child(join.fd.as_raw_fd());
        }
        if let Some(root) = self.root {
            fchdir(root).context("chdir into the container's root")?;
            chroot(".").context("chroot into the container's root")?;
            sys::close_in_child(root.as_raw_fd());
        }
        if !fork {
            return Ok(());
        }
        match sys::clone_fork(libc::CLONE_PARENT).context("fork into the pid namespace")? {
            sys::Forked::Parent(pid) => {
                // sync 3
                let _ = self
                    .channel
                    .tell(protocol::Request::Forked { pid: pid.as_raw() }, None);
                sys::exit_now(0)
            }
            // The new process's parent is hull (CLONE_PARENT): it dies with hull until its execve, as before.
            sys::Forked::Child => {
                sys::set_parent_death_signal(libc::SIGKILL).context("set parent death signal")?;
                // sync 3
                self.channel.wait_for(Step::Fork).map(drop)
            }
        }
    }
}
