//! `linux.seccomp`: the OCI profile compiled to classic BPF, loaded just before execve. hull lays out the filters
//! itself; `seccompiler` compiles the argument conditions of a rule.
//!
//! A filter here has one match action, and the OCI profile has one action per rule. The kernel
//! runs every filter a process has and keeps the result of highest precedence (KILL_PROCESS > KILL_THREAD > TRAP >
//! ERRNO > USER_NOTIF > TRACE > LOG > ALLOW; among equal actions, the newest filter's). So a profile becomes:
//!
//! * one **action filter** per distinct action (kernel return value, errno included): the rules of that action
//!   return it, anything else returns ALLOW;
//! * when the default action is not ALLOW, one **base filter**: every rule of any action returns ALLOW, anything
//!   else returns the default action.
//!
//! The combination gives the profile's meaning: a call matching a rule of action A gets min(A, ALLOW) = A; a call
//! matching no rule gets the default action from the base filter and ALLOW from all others. Rules whose action is
//! the default action are dropped (runc does the same). If one call matches rules of two actions, the
//! higher-precedence action wins (libseccomp's choice there is order-dependent).
//!
//! Beyond that, as runc's `patchbpf` and libseccomp do:
//! * unknown syscall names are skipped (debug log), so one profile serves several kernels;
//! * with a non-permissive default action, syscalls numbered above the highest one the profile names get ENOSYS,
//!   so that a newer libc falls back (clone3) instead of failing with the default errno;
//! * every ABI the profile lists is filtered with its own syscall table (`seccomp/abi.rs`): on x86_64, i386 (a 32-bit
//!   program's `int 0x80`) and x32 beside x86_64, which is always filtered. Each filter first dispatches on
//!   `seccomp_data.arch` (and, for x86_64, the x32 bit of `nr`) to that ABI's section; an ABI the profile does not
//!   list kills the process, as libseccomp's default bad-architecture action does.
//! * the `SCMP_ACT_NOTIFY` filter is loaded with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and its fd goes to
//!   `listenerPath` with the container state (runc's `ContainerProcessState`).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
use serde::Serialize;

use crate::fdpass;
use crate::logger;
use crate::oci::SpecState;
use crate::sys;
use abi::{Abi, X32_SYSCALL_BIT};

mod abi;

/// Kernel return values (`SECCOMP_RET_*`).
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_NOTIFY: u32 = libc::SECCOMP_RET_USER_NOTIF;
/// Offsets of `nr` and `arch` in `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
/// The kernel's limit on one filter (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

/// The architectures whose syscalls hull can filter (what `features` lists), in the profile's spelling.
pub fn filtered_archs() -> Vec<Arch> {
    Abi::ALL.iter().map(|abi| abi.arch()).collect()
}

/// One BPF program and the flags it is loaded with.
#[derive(Debug, Clone)]
pub struct Filter {
    pub program: Vec<libc::sock_filter>,
    pub flags: libc::c_ulong,
    pub notify: bool,
}

/// A profile compiled and ready to load: the filters in load order.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub filters: Vec<Filter>,
}

/// The conditions of one rule; `None` matches unconditionally.
type Rules = Option<Vec<SeccompRule>>;

/// The kernel return value of an action (`errno` for ERRNO and TRACE, EPERM when unset, as runc).
fn return_value(action: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    let data = errno.unwrap_or(libc::EPERM as u32) & libc::SECCOMP_RET_DATA;
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActNotify => RET_NOTIFY,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    }
}

/// Actions that let unknown (newer) syscalls through anyway, so no ENOSYS stub is needed (runc's `isAllowAction`).
fn is_permissive(action: LinuxSeccompAction) -> bool {
    matches!(
        action,
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    )
}

fn condition(arg: &LinuxSeccompArg) -> Result<SeccompCondition> {
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // OCI: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .with_context(|| format!("argument index {} out of range 0-5", arg.index()))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .with_context(|| format!("argument {} condition", arg.index()))
}

/// The rules of one syscall entry: its conditions ANDed in one rule, or, when an argument index repeats, each
/// condition a rule of its own (ORed), as runc does for libseccomp.
fn entry_rules(call: &LinuxSyscall) -> Result<Rules> {
    let args = call.args().as_deref().unwrap_or(&[]);
    if args.is_empty() {
        return Ok(None);
    }
    let conditions = args.iter().map(condition).collect::<Result<Vec<_>>>()?;
    let mut seen = [0u8; 6];
    for arg in args {
        seen[arg.index()] += 1;
    }
    let rules = if seen.iter().any(|&n| n > 1) {
        conditions
            .into_iter()
            .map(|c| SeccompRule::new(vec![c]))
            .collect::<std::result::Result<Vec<_>, _>>()
    } else {
        SeccompRule::new(conditions).map(|r| vec![r])
    };
    Ok(Some(rules.context("seccomp rule")?))
}

/// Add `rules` for `nr` to a filter's map: an unconditional rule absorbs conditional ones.
fn merge(map: &mut BTreeMap<i64, Rules>, nr: i64, rules: &Rules) {
    match (map.get_mut(&nr), rules) {
        (None, _) => {
            map.insert(nr, rules.clone());
        }
        (Some(existing), None) => *existing = None,
        (Some(Some(existing)), Some(more)) => existing.extend(more.iter().cloned()),
        (Some(None), Some(_)) => {}
    }
}

/// The rules of one filter, per ABI.
type AbiRules = BTreeMap<Abi, BTreeMap<i64, Rules>>;

/// Most unconditional syscalls one run of `jeq`s can send to its shared return (a conditional jump reaches 255
/// instructions ahead).
const JEQ_RUN: usize = 255;

/// One ABI's part of a filter: `ld nr`; each syscall with conditions as `jeq nr` into its rules (seccompiler compiles
/// each rule; a rule that fails falls through to the next, the last to `ret mismatched`); then the unconditional
/// syscalls as runs of one `jeq` each, jumping to a `ret matched` after the run; then `ret mismatched`. A syscall
/// the ABI does not name costs one instruction per syscall listed (seccompiler's own filter layout spends five on
/// each unconditional syscall, which put Docker's profile over the kernel's limit once i386 and x32 were added).
fn body(map: BTreeMap<i64, Rules>, matched: u32, mismatched: u32) -> Vec<libc::sock_filter> {
    let mut program = vec![stmt(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        SECCOMP_DATA_NR,
    )];
    let mut unconditional = Vec::new();
    for (nr, rules) in map {
        let Some(rules) = rules else {
            unconditional.push(nr as u32);
            continue;
        };
        let mut chain = Vec::new();
        for rule in rules {
            let compiled: seccompiler::BpfProgram = rule.into();
            chain.extend(compiled.into_iter().map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            }));
            chain.push(ret(matched));
        }
        chain.push(ret(mismatched));
        program.push(jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            nr as u32,
            1,
            0,
        ));
        program.push(stmt(libc::BPF_JMP | libc::BPF_JA, chain.len() as u32));
        program.extend(chain);
    }
    for run in unconditional.chunks(JEQ_RUN) {
        for (i, nr) in run.iter().enumerate() {
            let to_return = (run.len() - i) as u8;
            program.push(jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                *nr,
                to_return,
                0,
            ));
        }
        program.push(stmt(libc::BPF_JMP | libc::BPF_JA, 1));
        program.push(ret(matched));
    }
    program.push(ret(mismatched));
    program
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

fn ret(value: u32) -> libc::sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, value)
}

/// One filter over every ABI in `abis` (the native one first):
///
/// ```text
///   ld arch; (jeq <other ABI's arch>; ja <its section>)...; jeq <native arch> else ret KILL_PROCESS
///   native: ld nr; jset X32_BIT: ja <x32 section> (or ret KILL_PROCESS when x32 is not listed); [ENOSYS]; body
///   i386, x32: [ld nr; ENOSYS]; body
/// ```
///
/// With `enosys_above`, an ABI's syscalls numbered above the highest one the profile names there return ENOSYS.
fn assemble(
    abis: &[Abi],
    mut rules: AbiRules,
    matched: u32,
    mismatched: u32,
    enosys_above: Option<&BTreeMap<Abi, u32>>,
) -> Result<Vec<libc::sock_filter>> {
    let enosys = |abi: Abi| -> Vec<libc::sock_filter> {
        match enosys_above.and_then(|above| above.get(&abi)) {
            Some(&max) => vec![
                jump(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K, max, 0, 1),
                ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            ],
            None => Vec::new(),
        }
    };
    let load_nr = stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, SECCOMP_DATA_NR);
    let mut sections: Vec<(Abi, Vec<libc::sock_filter>)> = Vec::new();
    for &abi in abis {
        let mut section = vec![load_nr];
        if abi == Abi::Native {
            section.push(jump(
                libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
                X32_SYSCALL_BIT,
                0,
                1,
            ));
            // Patched below into a jump to the x32 section when there is one.
            section.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
        }
        section.extend(enosys(abi));
        section.extend(body(
            rules.remove(&abi).unwrap_or_default(),
            matched,
            mismatched,
        ));
        sections.push((abi, section));
    }
    let native_arch = Abi::Native.audit_arch();
    let dispatched: Vec<Abi> = abis
        .iter()
        .copied()
        .filter(|abi| abi.audit_arch() != native_arch)
        .collect();
    let head_len = 1 + 2 * dispatched.len() + 2;
    let mut starts = BTreeMap::new();
    let mut at = head_len;
    for (abi, section) in &sections {
        starts.insert(*abi, at);
        at += section.len();
    }
    if at > MAX_INSTRUCTIONS {
        bail!(
            "seccomp filter too long: {at} instructions, the kernel takes {MAX_INSTRUCTIONS} (fewer architectures \
             or rules)"
        );
    }
    let ja = |from: usize, to: usize| stmt(libc::BPF_JMP | libc::BPF_JA, (to - from - 1) as u32);
    let mut program = vec![stmt(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        SECCOMP_DATA_ARCH,
    )];
    for abi in &dispatched {
        program.push(jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            abi.audit_arch(),
            0,
            1,
        ));
        program.push(ja(program.len(), starts[abi]));
    }
    program.push(jump(
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        native_arch,
        1,
        0,
    ));
    program.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
    for (abi, mut section) in sections {
        if abi == Abi::Native {
            if let Some(&x32) = abis
                .iter()
                .find(|a| a.audit_arch() == native_arch && **a != Abi::Native)
                .and_then(|a| starts.get(a))
            {
                section[2] = ja(program.len() + 2, x32);
            }
        }
        program.extend(section);
    }
    Ok(program)
}

/// Check what libseccomp and runc refuse, and what hull cannot honour.
fn validate(profile: &LinuxSeccomp) -> Result<()> {
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        bail!("SCMP_ACT_NOTIFY cannot be used as default action");
    }
    let notify: Vec<&LinuxSyscall> = profile
        .syscalls()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
        .collect();
    if notify
        .iter()
        .any(|c| c.names().iter().any(|n| n == "write"))
    {
        bail!("SCMP_ACT_NOTIFY cannot be used for the write syscall");
    }
    let no_listener = profile
        .listener_path()
        .as_ref()
        .is_none_or(|p| p.as_os_str().is_empty());
    if !notify.is_empty() && no_listener {
        bail!("listenerPath is not set, but SCMP_ACT_NOTIFY is used");
    }
    for arch in profile.architectures().as_deref().unwrap_or(&[]) {
        if Abi::of(*arch).is_none() {
            logger::debug(format!(
                "seccomp: architecture {arch:?} is accepted but not filtered: its syscalls kill the process"
            ));
        }
    }
    Ok(())
}

/// The ABIs a profile's filters cover: the native one always (libseccomp's filter starts with it), then those of the
/// architectures it lists that hull can filter.
fn profile_abis(profile: &LinuxSeccomp) -> Vec<Abi> {
    let listed: Vec<Abi> = profile
        .architectures()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter_map(|arch| Abi::of(*arch))
        .collect();
    Abi::ALL
        .iter()
        .copied()
        .filter(|abi| *abi == Abi::Native || listed.contains(abi))
        .collect()
}

/// Compile `profile` into the filters to load, in load order.
pub fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    validate(profile)?;
    let default = return_value(profile.default_action(), profile.default_errno_ret());
    let abis = profile_abis(profile);
    // Per action: the rules returning it, in the order the actions first appear in the profile.
    let mut groups: Vec<(u32, AbiRules)> = Vec::new();
    let mut all_rules = AbiRules::new();
    let mut highest: BTreeMap<Abi, u32> = BTreeMap::new();
    for call in profile.syscalls().as_deref().unwrap_or(&[]) {
        let ret = return_value(call.action(), call.errno_ret());
        let rules = entry_rules(call)
            .with_context(|| format!("seccomp rule for {}", call.names().join(",")))?;
        for name in call.names() {
            let numbers: Vec<(Abi, u32)> = abis
                .iter()
                .filter_map(|abi| abi.number(name).map(|nr| (*abi, nr)))
                .collect();
            if numbers.is_empty() {
                logger::debug(format!("seccomp: unknown syscall {name:?} ignored"));
            }
            for (abi, nr) in numbers {
                let top = highest.entry(abi).or_insert(nr);
                *top = (*top).max(nr);
                if ret == default {
                    continue;
                }
                merge(all_rules.entry(abi).or_default(), nr.into(), &rules);
                if ret == RET_ALLOW {
                    continue;
                }
                let group = match groups.iter().position(|(r, _)| *r == ret) {
                    Some(i) => &mut groups[i].1,
                    None => {
                        groups.push((ret, AbiRules::new()));
                        &mut groups.last_mut().expect("just pushed").1
                    }
                };
                merge(group.entry(abi).or_default(), nr.into(), &rules);
            }
        }
    }

    let mut flags: libc::c_ulong = 0;
    let mut notify_flags: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    for flag in profile.flags().as_deref().unwrap_or(&[]) {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flags |= libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // hull is single-threaded when it loads the filters: there is nothing to synchronise.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
            // Only meaningful (and only accepted by the kernel) with a listener.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                notify_flags |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        }
    }

    let mut filters = Vec::new();
    if default != RET_ALLOW {
        let enosys_above = match profile.default_errno_ret() {
            Some(errno) if errno == libc::ENOSYS as u32 => None,
            _ if is_permissive(profile.default_action()) => None,
            _ => Some(&highest),
        };
        let program = assemble(&abis, all_rules, RET_ALLOW, default, enosys_above)?;
        filters.push(Filter {
            program,
            flags,
            notify: false,
        });
    }
    // The newest filter wins among equal actions: load the first-listed action last.
    for (ret, rules) in groups.into_iter().rev() {
        let program = assemble(&abis, rules, ret, RET_ALLOW, None)?;
        let notify = ret == RET_NOTIFY;
        filters.push(Filter {
            program,
            flags: if notify { flags | notify_flags } else { flags },
            notify,
        });
    }
    if filters.len() > 1 {
        // The notify filter first: its syscalls then see only filters loaded after it, which are the ones that
        // could refuse them anyway.
        filters.sort_by_key(|f| !f.notify);
    }
    Ok(Compiled { filters })
}

impl Compiled {
    /// Load every filter into this process; returns the notify listener fd when the profile has one. Without
    /// `no_new_privs` this needs CAP_SYS_ADMIN in the process's user namespace.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let mut listener = None;
        for filter in &self.filters {
            // The kernel would refuse it as EINVAL; this names the cause.
            u16::try_from(filter.program.len()).context("seccomp filter too long")?;
            let loaded =
                sys::seccomp_set_mode_filter(&filter.program, filter.flags).with_context(|| {
                    format!(
                        "load seccomp filter ({} instructions, flags {:#x})",
                        filter.program.len(),
                        filter.flags
                    )
                })?;
            if loaded.is_some() {
                listener = loaded;
            }
        }
        Ok(listener)
    }
}

/// What the seccomp agent at `listenerPath` receives with the listener fd (runtime-spec `ContainerProcessState`).
#[derive(Serialize)]
struct ProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'static str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: SpecState<'a>,
}

/// hull's part of the protocol's `SeccompListener` step: pass the listener the process sent on to the profile's
/// agent.
pub fn forward_listener(
    profile: Option<&LinuxSeccomp>,
    listener: OwnedFd,
    pid: i32,
    state: SpecState,
) -> Result<()> {
    let profile = profile.context("seccomp listener message without a profile")?;
    send_listener(profile, listener, pid, state)
}

/// Send the notify `listener` of process `pid` to the profile's `listenerPath`, as runc does: one message whose
/// payload is the JSON `ContainerProcessState` and whose `SCM_RIGHTS` carries the fd.
fn send_listener(
    profile: &LinuxSeccomp,
    listener: OwnedFd,
    pid: i32,
    state: SpecState,
) -> Result<()> {
    let path = profile
        .listener_path()
        .as_deref()
        .context("listenerPath is not set, but SCMP_ACT_NOTIFY is used")?;
    let message = ProcessState {
        oci_version: state.oci_version,
        fds: ["seccompFd"],
        pid,
        metadata: profile.listener_metadata().as_deref().unwrap_or(""),
        state,
    };
    let payload = serde_json::to_vec(&message).context("encode seccomp listener state")?;
    let socket = UnixStream::connect(path)
        .with_context(|| format!("connect to seccomp listener {}", path.display()))?;
    fdpass::send_fds(socket.as_fd(), &payload, &[listener.as_fd()])
        .with_context(|| format!("send seccomp listener fd to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests;
