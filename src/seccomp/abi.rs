//! The system call ABIs a seccomp filter tells apart, and each one's syscall numbers.
//!
//! The kernel hands a filter `seccomp_data.arch` (the `AUDIT_ARCH_*` value of the calling ABI) and `nr`, numbered in
//! that ABI's own table. On x86_64 three ABIs reach the kernel: x86_64 itself, i386 (`int 0x80`, a 32-bit program;
//! arch `AUDIT_ARCH_I386`) and x32 (arch `AUDIT_ARCH_X86_64` with bit 30 set in `nr`). A profile's syscall names
//! are looked up in the table of each ABI it lists, as libseccomp does.

use std::str::FromStr;

use oci_spec::runtime::Arch;

/// The x32 ABI marks its syscall numbers with this bit.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One ABI hull filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Abi {
    /// The architecture hull is built for.
    Native,
    #[cfg(target_arch = "x86_64")]
    I386,
    #[cfg(target_arch = "x86_64")]
    X32,
}

/// The native architecture: the profile's name for it, and its `AUDIT_ARCH_*` (`linux/audit.h`). Its arguments, as
/// those of a 32-bit ABI (zero-extended), are compared as little-endian 64-bit words.
#[cfg(target_arch = "x86_64")]
const NATIVE: (Arch, u32) = (Arch::ScmpArchX86_64, 0xc000_003e);
#[cfg(target_arch = "aarch64")]
const NATIVE: (Arch, u32) = (Arch::ScmpArchAarch64, 0xc000_00b7);
#[cfg(target_arch = "riscv64")]
const NATIVE: (Arch, u32) = (Arch::ScmpArchRiscv64, 0xc000_00f3);

/// `AUDIT_ARCH_I386` (`EM_386`, little endian, no 64-bit flag).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

impl Abi {
    /// Every ABI hull can filter on this architecture, native first.
    pub const ALL: &'static [Abi] = &[
        Abi::Native,
        #[cfg(target_arch = "x86_64")]
        Abi::I386,
        #[cfg(target_arch = "x86_64")]
        Abi::X32,
    ];

    /// The ABI a profile's architecture names, if hull filters it.
    pub fn of(arch: Arch) -> Option<Abi> {
        if arch == NATIVE.0 || arch == Arch::ScmpArchNative {
            return Some(Abi::Native);
        }
        match arch {
            #[cfg(target_arch = "x86_64")]
            Arch::ScmpArchX86 => Some(Abi::I386),
            #[cfg(target_arch = "x86_64")]
            Arch::ScmpArchX32 => Some(Abi::X32),
            _ => None,
        }
    }

    /// The profile architecture this ABI is (what `features` lists).
    pub fn arch(self) -> Arch {
        match self {
            Abi::Native => NATIVE.0,
            #[cfg(target_arch = "x86_64")]
            Abi::I386 => Arch::ScmpArchX86,
            #[cfg(target_arch = "x86_64")]
            Abi::X32 => Arch::ScmpArchX32,
        }
    }

    /// `seccomp_data.arch` of a syscall made through this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Abi::I386 => AUDIT_ARCH_I386,
            _ => NATIVE.1,
        }
    }

    /// `nr` of the syscall `name` in this ABI, if the ABI has it.
    pub fn number(self, name: &str) -> Option<u32> {
        match self {
            Abi::Native => syscalls::Sysno::from_str(name).ok().map(|s| s.id() as u32),
            #[cfg(target_arch = "x86_64")]
            Abi::I386 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            #[cfg(target_arch = "x86_64")]
            Abi::X32 => x32_number(name).map(|nr| nr | X32_SYSCALL_BIT),
        }
    }
}

/// Syscalls of the x86_64 table that x32 does not have (`64` entries of the kernel's `syscall_64.tbl`).
#[cfg(target_arch = "x86_64")]
const X86_64_ONLY: [&str; 11] = [
    "uselib",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "set_thread_area",
    "get_thread_area",
    "epoll_ctl_old",
    "epoll_wait_old",
    "vserver",
];

/// Syscalls x32 enters through a compat entry point of its own, numbered from 512 in this order (the `x32` entries
/// of `syscall_64.tbl`).
#[cfg(target_arch = "x86_64")]
const X32_COMPAT: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// The x32 table: x86_64's numbers, without its 64-bit-only entries, with the compat entries moved to 512 and up.
#[cfg(target_arch = "x86_64")]
fn x32_number(name: &str) -> Option<u32> {
    if X86_64_ONLY.contains(&name) {
        return None;
    }
    if let Some(i) = X32_COMPAT.iter().position(|n| *n == name) {
        return Some(512 + i as u32);
    }
    syscalls::x86_64::Sysno::from_str(name)
        .ok()
        .map(|s| s.id() as u32)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Numbers from the kernel's uapi headers (`asm/unistd_32.h`, `unistd_64.h`, `unistd_x32.h`).
    #[test]
    fn each_abi_numbers_from_its_own_table() {
        assert_eq!(Abi::Native.number("getpid"), Some(39));
        assert_eq!(Abi::I386.number("getpid"), Some(20));
        assert_eq!(Abi::I386.number("socketcall"), Some(102));
        assert_eq!(Abi::I386.number("arch_prctl"), Some(384));
        assert_eq!(Abi::X32.number("getpid"), Some(X32_SYSCALL_BIT | 39));
        assert_eq!(Abi::X32.number("rt_sigaction"), Some(X32_SYSCALL_BIT | 512));
        assert_eq!(Abi::X32.number("pwritev2"), Some(X32_SYSCALL_BIT | 547));
        assert_eq!(
            Abi::X32.number("io_uring_setup"),
            Some(X32_SYSCALL_BIT | 425)
        );
        assert_eq!(Abi::X32.number("uselib"), None);
        assert_eq!(Abi::Native.number("socketcall"), None);
    }

    #[test]
    fn profile_architectures_name_the_abis() {
        assert_eq!(Abi::of(Arch::ScmpArchX86_64), Some(Abi::Native));
        assert_eq!(Abi::of(Arch::ScmpArchNative), Some(Abi::Native));
        assert_eq!(Abi::of(Arch::ScmpArchX86), Some(Abi::I386));
        assert_eq!(Abi::of(Arch::ScmpArchX32), Some(Abi::X32));
        assert_eq!(Abi::of(Arch::ScmpArchAarch64), None);
        assert_eq!(Abi::I386.audit_arch(), 0x4000_0003);
        assert_eq!(Abi::X32.audit_arch(), 0xc000_003e);
    }
}
