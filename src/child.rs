//! What every new process in a container does between hull's clone and its execve, as the container's init
//! (`init.rs`) or an exec'd process (`enter.rs`): take the process's identity (rlimits, LSM labels, user, groups,
//! capabilities, scheduler, personality, memory policy), resolve the program, and load the seccomp filters last.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain, Process};

use crate::mempolicy::MemoryPolicy;
use crate::protocol::{ChildEnd, Request};
use crate::{credentials, lsm, program, seccomp, sys};

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
    /// hull, with prlimit(2) (protocol step `Rlimits`, as runc does at `procReady`): a process in another user namespace
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
pub fn become_process(identity: &Identity, channel: &ChildEnd) -> Result<Program> {
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
                // sync 6
                channel.request(Request::SetRlimits)?;
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
fn load_seccomp(filters: &seccomp::Compiled, channel: &ChildEnd) -> Result<()> {
    if let Some(listener) = filters.load()? {
        // sync 7
        channel.tell(Request::SeccompListener, Some(listener.as_fd()))?;
    }
    Ok(())
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
