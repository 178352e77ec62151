//! The compiled filters run through a small classic-BPF interpreter and combined as the kernel combines them, so
//! the profile's meaning is checked syscall by syscall without loading anything. The kernel tests
//! (`tests/seccomp.rs`) check the same with real syscalls.

use super::*;
use serde_json::json;

const X86_64: u32 = 0xc000_003e;
const I386: u32 = 0x4000_0003;

/// Run one classic BPF program over `seccomp_data { nr, arch, ip, args }`.
fn run(program: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let word = |offset: u32| -> u32 {
        match offset {
            0 => nr,
            4 => arch,
            8 | 12 => 0,
            o => {
                let i = ((o - 16) / 8) as usize;
                let value = args[i];
                if (o - 16) % 8 == 0 {
                    value as u32
                } else {
                    (value >> 32) as u32
                }
            }
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let insn = program[pc];
        let code = u32::from(insn.code);
        pc += 1;
        match code & 0x07 {
            c if c == libc::BPF_LD => acc = word(insn.k),
            c if c == libc::BPF_ALU => {
                assert_eq!(code & 0xf0, libc::BPF_AND, "only AND is used");
                acc &= insn.k;
            }
            c if c == libc::BPF_JMP => {
                let taken = match code & 0xf0 {
                    op if op == libc::BPF_JA => {
                        pc += insn.k as usize;
                        continue;
                    }
                    op if op == libc::BPF_JEQ => acc == insn.k,
                    op if op == libc::BPF_JGT => acc > insn.k,
                    op if op == libc::BPF_JGE => acc >= insn.k,
                    op if op == libc::BPF_JSET => acc & insn.k != 0,
                    op => panic!("unexpected jump op {op:#x}"),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            c if c == libc::BPF_RET => return insn.k,
            c => panic!("unexpected instruction class {c:#x}"),
        }
    }
}

/// The kernel's combination: every filter runs, the lowest action (as signed) wins, the newest among equals.
fn outcome(compiled: &Compiled, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let action = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut result = RET_ALLOW;
    for filter in compiled.filters.iter().rev() {
        let ret = run(&filter.program, nr, arch, args);
        if action(ret) < action(result) {
            result = ret;
        }
    }
    result
}

fn profile(value: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(value).expect("valid profile")
}

fn nr(name: &str) -> u32 {
    Abi::Native.number(name).unwrap()
}

/// i386's number of `name` (`asm/unistd_32.h`).
fn nr32(name: &str) -> u32 {
    Abi::I386.number(name).unwrap()
}

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

#[test]
fn deny_list_with_allow_default() {
    let compiled = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["not_a_syscall"], "action": "SCMP_ACT_ERRNO"}
        ]
    })))
    .unwrap();
    assert_eq!(
        compiled.filters.len(),
        2,
        "one filter per action, no base filter"
    );
    let zero = [0; 6];
    assert_eq!(outcome(&compiled, nr("mkdir"), X86_64, zero), errno(13));
    assert_eq!(outcome(&compiled, nr("mkdirat"), X86_64, zero), errno(13));
    assert_eq!(
        outcome(&compiled, nr("getpid"), X86_64, zero),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    assert_eq!(outcome(&compiled, nr("read"), X86_64, zero), RET_ALLOW);
    // The profile lists no other architecture: neither i386 nor the x32 ABI slips past the deny rules.
    assert_eq!(
        outcome(&compiled, 39, I386, zero),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    assert_eq!(
        outcome(&compiled, nr("mkdir") | X32_SYSCALL_BIT, X86_64, zero),
        libc::SECCOMP_RET_KILL_PROCESS
    );
}

#[test]
fn allow_list_with_errno_default_and_conditions() {
    let compiled = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": ["read", "write", "getcwd"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["mkdir"], "action": "SCMP_ACT_LOG"}
        ]
    })))
    .unwrap();
    let with_arg0 = |v: u64| [v, 0, 0, 0, 0, 0];
    let eperm = errno(libc::EPERM);
    assert_eq!(
        outcome(&compiled, nr("read"), X86_64, with_arg0(0)),
        RET_ALLOW
    );
    assert_eq!(outcome(&compiled, nr("mount"), X86_64, with_arg0(0)), eperm);
    assert_eq!(
        outcome(&compiled, nr("personality"), X86_64, with_arg0(0)),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, nr("personality"), X86_64, with_arg0(8)),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, nr("personality"), X86_64, with_arg0(5)),
        eperm
    );
    let newns = libc::CLONE_NEWNS as u64;
    assert_eq!(
        outcome(
            &compiled,
            nr("clone"),
            X86_64,
            with_arg0(libc::SIGCHLD as u64)
        ),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, nr("clone"), X86_64, with_arg0(newns)),
        eperm
    );
    assert_eq!(
        outcome(&compiled, nr("clone3"), X86_64, with_arg0(0)),
        errno(libc::ENOSYS)
    );
    // A permissive action below the restrictive default still applies.
    assert_eq!(
        outcome(&compiled, nr("mkdir"), X86_64, with_arg0(0)),
        libc::SECCOMP_RET_LOG
    );
    // Syscalls newer than any the profile names get ENOSYS (runc's patchbpf stub), older unnamed ones the default.
    assert_eq!(
        outcome(&compiled, 1000, X86_64, with_arg0(0)),
        errno(libc::ENOSYS)
    );
}

#[test]
fn conditions_on_one_argument_are_ored_on_different_arguments_anded() {
    let compiled = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}
            ]},
            {"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 100, "op": "SCMP_CMP_GT"},
                {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}
            ]}
        ]
    })))
    .unwrap();
    let eperm = errno(libc::EPERM);
    assert_eq!(
        outcome(&compiled, nr("kill"), X86_64, [1, 9, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        outcome(&compiled, nr("kill"), X86_64, [1, 15, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        outcome(&compiled, nr("kill"), X86_64, [1, 2, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, nr("tkill"), X86_64, [101, 9, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        outcome(&compiled, nr("tkill"), X86_64, [100, 9, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, nr("tkill"), X86_64, [101, 8, 0, 0, 0, 0]),
        RET_ALLOW
    );
    // Full 64-bit comparisons, as libseccomp makes them.
    assert_eq!(
        outcome(
            &compiled,
            nr("kill"),
            X86_64,
            [1, (1 << 32) | 9, 0, 0, 0, 0]
        ),
        RET_ALLOW
    );
}

#[test]
fn notify_is_its_own_listener_filter() {
    let compiled = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["rmdir"], "action": "SCMP_ACT_TRAP"}
        ]
    })))
    .unwrap();
    let notify: Vec<_> = compiled.filters.iter().filter(|f| f.notify).collect();
    assert_eq!(notify.len(), 1);
    assert_eq!(
        notify[0].flags,
        libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
    let other = compiled.filters.iter().find(|f| !f.notify).unwrap();
    assert_eq!(other.flags, libc::SECCOMP_FILTER_FLAG_LOG);
    assert_eq!(outcome(&compiled, nr("mkdir"), X86_64, [0; 6]), RET_NOTIFY);
    assert_eq!(
        outcome(&compiled, nr("rmdir"), X86_64, [0; 6]),
        libc::SECCOMP_RET_TRAP
    );
    assert_eq!(outcome(&compiled, nr("read"), X86_64, [0; 6]), RET_ALLOW);
}

#[test]
fn refused_profiles_say_why() {
    let err = |v| format!("{:#}", compile(&profile(v)).unwrap_err());
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"})),
        "SCMP_ACT_NOTIFY cannot be used as default action"
    );
    assert_eq!(
        err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                   "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]})
        ),
        "SCMP_ACT_NOTIFY cannot be used for the write syscall"
    );
    assert_eq!(
        err(json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})),
        "listenerPath is not set, but SCMP_ACT_NOTIFY is used"
    );
    assert!(err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}
    ]}))
    .contains("argument index 6 out of range"));
    // Unknown actions, operators and architectures fail when the config is parsed.
    for bad in [
        json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NEAR"}]}
        ]}),
    ] {
        assert!(serde_json::from_value::<LinuxSeccomp>(bad).is_err());
    }
}

#[test]
fn docker_default_profile_compiles_small_and_fast() {
    let text = include_str!("../../tests/fixtures/docker-default-seccomp.json");
    let docker: LinuxSeccomp = serde_json::from_str(text).unwrap();
    let started = std::time::Instant::now();
    let compiled = compile(&docker).unwrap();
    let elapsed = started.elapsed();
    for filter in &compiled.filters {
        let len = filter.program.len();
        assert!(len <= MAX_INSTRUCTIONS, "{len} instructions");
    }
    assert!(
        elapsed < std::time::Duration::from_millis(20),
        "compiling Docker's profile took {elapsed:?}"
    );
    let zero = [0; 6];
    for denied in ["unshare", "mount", "keyctl"] {
        assert_eq!(
            outcome(&compiled, nr(denied), X86_64, zero),
            errno(libc::EPERM),
            "{denied}"
        );
    }
    for allowed in ["read", "getcwd", "execve", "mkdir"] {
        assert_eq!(
            outcome(&compiled, nr(allowed), X86_64, zero),
            RET_ALLOW,
            "{allowed}"
        );
    }
    // The profile lists x86 and x32: a 32-bit program's syscalls are filtered with i386's numbers, x32's with its own.
    for allowed in [
        "read",
        "write",
        "getpid",
        "socketcall",
        "exit_group",
        "set_thread_area",
    ] {
        assert_eq!(
            outcome(&compiled, nr32(allowed), I386, zero),
            RET_ALLOW,
            "i386 {allowed}"
        );
    }
    for denied in ["unshare", "mount", "keyctl"] {
        assert_eq!(
            outcome(&compiled, nr32(denied), I386, zero),
            errno(libc::EPERM),
            "i386 {denied}"
        );
    }
    assert_eq!(
        outcome(
            &compiled,
            Abi::X32.number("rt_sigaction").unwrap(),
            X86_64,
            zero
        ),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, Abi::X32.number("mount").unwrap(), X86_64, zero),
        errno(libc::EPERM)
    );
}

/// Each listed ABI is filtered with its own numbers: i386's getpid (20) is denied, i386's 39 (mkdir there) is not,
/// and syscalls above the highest the profile names get ENOSYS in each ABI's own numbering. An ABI the profile does
/// not list (x32 here) and any other architecture are killed.
#[test]
fn each_listed_architecture_is_filtered_with_its_own_table() {
    let compiled = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "mkdir"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .unwrap();
    let zero = [0; 6];
    assert_eq!(outcome(&compiled, nr("getpid"), X86_64, zero), errno(99));
    assert_eq!(outcome(&compiled, nr32("getpid"), I386, zero), errno(99));
    assert_eq!(outcome(&compiled, nr32("mkdir"), I386, zero), RET_ALLOW);
    // x86_64's getpid, 39, is mkdir on i386.
    assert_eq!(nr("getpid"), 39);
    assert_eq!(nr32("mkdir"), 39);
    assert_eq!(outcome(&compiled, 39, I386, zero), RET_ALLOW);
    let all_ones = [0xffff_ffff, 0, 0, 0, 0, 0];
    assert_eq!(
        outcome(&compiled, nr32("personality"), I386, all_ones),
        RET_ALLOW
    );
    assert_eq!(
        outcome(&compiled, nr32("personality"), I386, zero),
        errno(libc::EPERM)
    );
    let i386_highest = [
        "read",
        "write",
        "exit_group",
        "mkdir",
        "getpid",
        "personality",
    ]
    .map(nr32)
    .into_iter()
    .max()
    .unwrap();
    assert_eq!(
        outcome(&compiled, i386_highest + 1, I386, zero),
        errno(libc::ENOSYS)
    );
    assert_eq!(
        outcome(&compiled, nr("read") | X32_SYSCALL_BIT, X86_64, zero),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    assert_eq!(
        outcome(&compiled, nr("read"), 0xc000_00b7, zero),
        libc::SECCOMP_RET_KILL_PROCESS,
        "aarch64"
    );
}
