//! The CVE-2019-5736 re-exec of `exeseal`, done before the C library starts.
//!
//! Every re-exec costs a whole process start, and on virtual machines most of a static glibc's start is CPUID
//! (its CPU feature and cache detection), which traps to the hypervisor: on this project's test machine ~0.3 ms of
//! a hull start, against ~0.1 ms for the exec itself. So hull's ELF entry point is [`hull_entry`] (set by build.rs):
//! it hands the initial stack to [`preseal`], which makes the same read-only overlay view of hull that
//! `exeseal::ensure_sealed` makes and execs it, and otherwise returns, after which the C library's `_start` runs
//! with the registers the kernel set. Only the sealed image starts the C library and the Rust runtime.
//!
//! Nothing is set up yet when `preseal` runs: no TLS, so no errno; no IFUNC resolution, so no `memcpy` or
//! `memset` (compiler-inserted ones included); no allocator; no panic handling. It uses raw syscalls, stack
//! buffers written and read with volatile accesses (which the compiler never turns into library calls), and
//! explicit bounds checks instead of indexing; `make test` disassembles it to hold that (tools/check-preseal.sh).
//! It is only a fast path: when anything fails, or the command is not one that enters a container, it returns,
//! and `ensure_sealed` decides, re-execs (or falls back to a sealed copy) and reports errors as before.

use core::arch::global_asm;
use core::mem::MaybeUninit;
use core::ptr;

use syscalls::{raw_syscall, Sysno};

use crate::exeseal::{OVERLAYFS_SUPER_MAGIC, REQUIRED_SEALS, SECOND_LAYER};
use crate::sys::{FSCONFIG_CMD_CREATE, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC};

// The kernel starts a process with %rsp at argc (then argv, NULL, envp, NULL, auxv) and %rdx holding a function for
// atexit (0 for a static executable, the dynamic linker's fini otherwise). Both are kept in callee-saved registers
// across the call and restored for `_start`.
global_asm!(
    ".globl hull_entry",
    ".type hull_entry,@function",
    "hull_entry:",
    "mov r12, rsp",
    "mov r13, rdx",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {preseal}",
    "mov rdx, r13",
    "mov rsp, r12",
    "jmp _start",
    preseal = sym preseal,
);

/// The commands that re-exec sealed (`main::dispatch`); any argument spelled like one counts, which at worst
/// seals a command that did not need it.
const SEALED_COMMANDS: [&[u8]; 3] = [b"create", b"run", b"exec"];

/// Longest path of hull handled here (PATH_MAX); longer ones take the ordinary path.
const PATH_MAX: usize = 4096;

/// A byte buffer on the stack, filled without library calls.
struct Buf<const N: usize> {
    bytes: MaybeUninit<[u8; N]>,
    len: usize,
}

impl<const N: usize> Buf<N> {
    #[inline(always)]
    fn new() -> Self {
        Buf {
            bytes: MaybeUninit::uninit(),
            len: 0,
        }
    }

    fn ptr(&self) -> *const u8 {
        self.bytes.as_ptr().cast()
    }

    /// Appends `byte`; false when full.
    fn push(&mut self, byte: u8) -> bool {
        if self.len >= N {
            return false;
        }
        // SAFETY: `len < N`, so the write stays inside the array.
        unsafe { ptr::write_volatile(self.bytes.as_mut_ptr().cast::<u8>().add(self.len), byte) };
        self.len += 1;
        true
    }

    /// The byte at `i` (`i < len`).
    fn at(&self, i: usize) -> u8 {
        if i >= self.len {
            return 0;
        }
        // SAFETY: `i < len <= N`, and every byte below `len` was written.
        unsafe { ptr::read_volatile(self.ptr().add(i)) }
    }
}

/// Whether the C string `arg` equals `word`.
///
/// # Safety
/// `arg` points to a NUL-terminated string.
unsafe fn c_str_is(arg: *const u8, word: &[u8]) -> bool {
    let mut i = 0;
    while i < word.len() {
        // SAFETY: every byte up to the NUL is readable, and the comparison stops at the first difference (a NUL
        // differs from every byte of `word`).
        if unsafe { ptr::read_volatile(arg.add(i)) } != word[i] {
            return false;
        }
        i += 1;
    }
    // SAFETY: as above; `arg` matched `word.len()` non-NUL bytes, so this byte is still inside the string.
    unsafe { ptr::read_volatile(arg.add(i)) == 0 }
}

fn close(fd: usize) {
    // SAFETY: closes a descriptor this function opened; nothing else refers to it.
    unsafe { raw_syscall!(Sysno::close, fd) };
}

/// A syscall's return value as a result (the kernel returns -errno in the top 4095 values).
fn ok(ret: usize) -> Option<usize> {
    (ret <= usize::MAX - 4095).then_some(ret)
}

/// Whether `exe` is already sealed: the same test as `exeseal::is_sealed`.
fn is_sealed(exe: usize) -> bool {
    // SAFETY: F_GET_SEALS only reads the seals of a descriptor we hold; non-memfds give -EINVAL.
    let seals = unsafe { raw_syscall!(Sysno::fcntl, exe, libc::F_GET_SEALS) };
    if let Some(seals) = ok(seals) {
        return seals as libc::c_int & REQUIRED_SEALS == REQUIRED_SEALS;
    }
    let mut fs = MaybeUninit::<libc::statfs64>::uninit();
    // SAFETY: fstatfs fills the struct it is given a pointer to (on x86_64 the kernel's statfs is glibc's statfs64).
    if ok(unsafe { raw_syscall!(Sysno::fstatfs, exe, fs.as_mut_ptr()) }).is_none() {
        return false;
    }
    // SAFETY: the kernel filled the struct.
    let fs = unsafe { fs.assume_init() };
    fs.f_type == OVERLAYFS_SUPER_MAGIC && fs.f_flags & libc::ST_RDONLY as libc::c_long != 0
}

/// Entered from `hull_entry` with the initial stack; returns unless it execs.
///
/// # Safety
/// `stack` is the process's initial stack as the kernel laid it out, and nothing else runs yet.
unsafe extern "C" fn preseal(stack: *const usize) {
    // SAFETY: the initial stack is argc, then argc argument pointers and NULL, then the environment and NULL.
    let (argc, argv) = unsafe { (*stack, stack.add(1).cast::<*const u8>()) };
    // SAFETY: as above.
    let envp = unsafe { argv.add(argc + 1) };
    let mut wanted = false;
    for i in 1..argc {
        // SAFETY: i < argc, and every argument is NUL-terminated.
        let arg = unsafe { *argv.add(i) };
        for word in SEALED_COMMANDS {
            // SAFETY: as above.
            wanted |= unsafe { c_str_is(arg, word) };
        }
    }
    if !wanted {
        return;
    }
    let flags = libc::O_RDONLY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path and integer flags.
    let Some(exe) = ok(unsafe {
        raw_syscall!(
            Sysno::openat,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            flags
        )
    }) else {
        return;
    };
    let sealed = is_sealed(exe);
    close(exe);
    if sealed {
        return;
    }
    if let Some(view) = overlay_view() {
        // SAFETY: argv and envp are the NULL-terminated arrays the kernel gave this process; "" with AT_EMPTY_PATH
        // execs the file `view` refers to. On success this never returns.
        unsafe {
            raw_syscall!(
                Sysno::execveat,
                view,
                c"".as_ptr(),
                argv,
                envp,
                libc::AT_EMPTY_PATH
            )
        };
        close(view);
    }
}

/// hull opened through a detached read-only overlayfs whose lower layers are hull's directory and
/// `exeseal::SECOND_LAYER`, as `exeseal::overlay_view` makes it.
fn overlay_view() -> Option<usize> {
    let mut path = Buf::<{ PATH_MAX + 1 }>::new();
    // SAFETY: readlink writes at most PATH_MAX bytes into the buffer, which holds PATH_MAX + 1.
    let len = ok(unsafe {
        raw_syscall!(
            Sysno::readlink,
            c"/proc/self/exe".as_ptr(),
            path.bytes.as_mut_ptr(),
            PATH_MAX
        )
    })?;
    if len >= PATH_MAX {
        return None;
    }
    path.len = len;
    let slash = (0..len).rev().find(|&i| path.at(i) == b'/')?;
    path.len = slash;
    let mut name = Buf::<{ PATH_MAX + 1 }>::new();
    for i in slash + 1..len {
        // SAFETY: readlink wrote bytes 0..len; `at` only reads below `path.len`, so read them directly here.
        name.push(unsafe { ptr::read_volatile(path.ptr().add(i)) });
    }
    if name.len == 0 || !name.push(0) {
        return None;
    }

    let mut lower = Buf::<{ 2 * PATH_MAX + 32 }>::new();
    let view = lower_dirs(&path, &mut lower).then(|| {
        // SAFETY: a NUL-terminated filesystem name and a flag.
        let overlay =
            ok(unsafe { raw_syscall!(Sysno::fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })?;
        // SAFETY: the key and the value are NUL-terminated and outlive the call.
        let configured = ok(unsafe {
            raw_syscall!(
                Sysno::fsconfig,
                overlay,
                FSCONFIG_SET_STRING,
                c"lowerdir".as_ptr(),
                lower.ptr(),
                0
            )
        });
        let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
        let mount = configured.and_then(|_| create_and_mount(overlay, attrs));
        close(overlay);
        let mount = mount?;
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        // SAFETY: a NUL-terminated name relative to the mount's fd.
        let view = ok(unsafe { raw_syscall!(Sysno::openat, mount, name.ptr(), flags) });
        close(mount);
        view
    });
    view.flatten()
}

/// `fsconfig(ctx, FSCONFIG_CMD_CREATE)`, then `fsmount` with `attrs`: the new mount's fd.
fn create_and_mount(ctx: usize, attrs: u64) -> Option<usize> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    ok(unsafe { raw_syscall!(Sysno::fsconfig, ctx, FSCONFIG_CMD_CREATE, 0, 0, 0) })?;
    // SAFETY: integer arguments on a valid context fd.
    ok(unsafe { raw_syscall!(Sysno::fsmount, ctx, FSMOUNT_CLOEXEC, attrs) })
}

/// Writes overlayfs's `lowerdir` into `lower`: `dir` with ':', ',' and '\' escaped, then `exeseal::SECOND_LAYER`.
/// False when it does not fit.
fn lower_dirs(dir: &Buf<{ PATH_MAX + 1 }>, lower: &mut Buf<{ 2 * PATH_MAX + 32 }>) -> bool {
    if dir.len == 0 && !lower.push(b'/') {
        return false;
    }
    for i in 0..dir.len {
        let byte = dir.at(i);
        if matches!(byte, b':' | b',' | b'\\') && !lower.push(b'\\') {
            return false;
        }
        if !lower.push(byte) {
            return false;
        }
    }
    if !lower.push(b':') {
        return false;
    }
    for &byte in SECOND_LAYER.as_bytes() {
        if !lower.push(byte) {
            return false;
        }
    }
    lower.push(0)
}
