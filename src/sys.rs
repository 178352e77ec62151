//! Thin wrappers for the system calls nix does not cover (or covers without the flags we need): every raw
//! `libc::syscall` of hull is here. Each returns `nix::Result` so callers add context the same way as for nix's own
//! calls. (The one exception, `preseal`, runs before the C library is initialised and makes its own raw syscalls.)

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Outcome of a fork-like `clone`.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `clone(flags | SIGCHLD)` with no new stack: fork semantics, plus the namespace flags in `flags`.
///
/// The caller must be single-threaded (hull never starts threads before exec), so the child's copy of the address
/// space is consistent: no lock can be held by a thread that does not exist in the child.
pub fn clone_fork(flags: libc::c_int) -> nix::Result<Forked> {
    // SAFETY: a raw clone without CLONE_VM and with a null stack behaves like fork(2): the child gets a private
    // copy-on-write copy of the address space and continues from this call; all pointer arguments are null, which
    // the kernel accepts. The process is single-threaded (see above).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0usize,
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// `clone3` with fork semantics (no new stack, SIGCHLD on exit), the namespace flags in `flags`, and
/// `CLONE_INTO_CGROUP` into the cgroup2 directory `cgroup`: the child is born in that cgroup, so nothing has to
/// migrate it there (a migration write-locks a global rwsem and waits for an RCU grace period).
/// Kernels before 5.3 fail with ENOSYS; 5.3 to 5.6 with E2BIG (the `cgroup` field is unknown to them).
///
/// The caller must be single-threaded, as for [`clone_fork`].
pub fn clone3_into_cgroup(flags: libc::c_int, cgroup: BorrowedFd<'_>) -> nix::Result<Forked> {
    /// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: `args` is a fully initialised clone_args of the size we pass; with a zero stack the child continues
    // from this call on a copy-on-write copy of the address space, like fork(2). The process is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// `pidfd_open(pid, 0)`: a handle that keeps naming this process even if the PID is reused.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: plain integer arguments; on success the kernel returns a new fd that we take ownership of.
    owned_fd_result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> nix::Result<()> {
    // SAFETY: the fd is valid for the borrow; a null siginfo asks the kernel to fill in a default one.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `close_range(first, last, 0)`: close every fd in `first..=last`.
fn close_range(first: RawFd, last: RawFd) -> nix::Result<()> {
    // SAFETY: closing descriptors touches no memory; callers own the numbers they close (see `close_all_except`).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    Errno::result(ret).map(drop)
}

/// In a cloned child about to enter the container: close every fd from `first` upwards except those in `keep`, so
/// that nothing the caller or hull left open (a cgroup directory, an engine's pipe) is reachable through
/// `/proc/<pid>/fd` from inside. The values owning the closed fds are never dropped: the child ends in execve or
/// `_exit` without running destructors.
pub fn close_all_except(first: RawFd, keep: &[RawFd]) -> nix::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut next = first;
    for fd in keep {
        if fd > next {
            close_range(next, fd - 1)?;
        }
        next = fd + 1;
    }
    close_range(next, RawFd::MAX)
}

/// In a cloned child: close one fd that a value copied from the parent owns, once it has served its purpose. That
/// value is never used or dropped again (see [`close_all_except`]).
pub fn close_in_child(fd: RawFd) {
    // SAFETY: closing a descriptor touches no memory; its owner in this process is never used again.
    unsafe { libc::close(fd) };
}

/// Mark every fd from `first` upwards close-on-exec (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`).
pub fn cloexec_from(first: RawFd) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// `openat2(dirfd, path, how)`: path resolution with `RESOLVE_*` restrictions.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    // SAFETY: open_how is a plain struct of integers, for which all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string and `how` a fully initialised open_how whose size we pass.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match Errno::result(ret) {
            // openat2 returns EAGAIN when a concurrent rename or mount raced the RESOLVE_IN_ROOT walk; retry.
            Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
            // SAFETY: a new fd returned by the kernel, owned by nobody else.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        }
    }
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: join (creating if needed) a new session keyring.
pub fn join_session_keyring(name: &CStr) -> nix::Result<i32> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    Errno::result(ret).map(|id| id as i32)
}

/// `keyctl(KEYCTL_SETPERM, key, perm)`.
pub fn set_key_permissions(key: i32, perm: u32) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_SETPERM, key, perm) };
    Errno::result(ret).map(drop)
}

/// `setdomainname(2)` (not in nix).
pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_DUMPABLE, value)`.
pub fn set_dumpable(dumpable: bool) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            libc::c_ulong::from(dumpable),
            0,
            0,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`.
pub fn set_child_subreaper() -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, sig)`; 0 clears it.
pub fn set_parent_death_signal(sig: libc::c_int) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_KEEPCAPS, value)`.
pub fn set_keep_caps(keep: bool) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(keep), 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_NAME, name)`: the process name shown by ps (truncated by the kernel to 15 bytes).
pub fn set_process_name(name: &CStr) -> nix::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string; the kernel copies at most 16 bytes.
    let ret = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `sched_setaffinity(0, mask)`: run this process on the CPUs of `mask` (the kernel's `cpumask` layout, bit `n % 8`
/// of byte `n / 8` being CPU `n`).
pub fn sched_setaffinity(mask: &[u8]) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `mask`, which outlives the call; the kernel only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, mask.len(), mask.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// `struct sched_attr` as `SCHED_ATTR_SIZE_VER0` (48 bytes) lays it out.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)`: this process's scheduling policy and its parameters.
pub fn sched_setattr(attr: &SchedAttr) -> nix::Result<()> {
    // The size the kernel reads is the struct's own, whatever the caller put there.
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..*attr
    };
    // SAFETY: `attr` is a live `struct sched_attr` of the size it states; the kernel only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// `IOPRIO_WHO_PROCESS`: ioprio_set(2) for one process, 0 being the caller.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, value)`: this process's I/O priority (class and data, ioprio(2)).
pub fn ioprio_set(value: libc::c_int) -> nix::Result<()> {
    // SAFETY: ioprio_set(2) takes plain values.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(ret).map(drop)
}

/// `set_mempolicy(mode, nodes)`: this process's NUMA memory policy; `nodes` a node mask in the `cpumask` layout,
/// or none.
pub fn set_mempolicy(mode: libc::c_int, nodes: Option<&[u8]>) -> nix::Result<()> {
    let (mask, bits) = match nodes {
        Some(nodes) => (nodes.as_ptr(), nodes.len() * 8),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `mask` is null or points at `bits` bits of `nodes`, which outlives the call; the kernel only reads
    // it. maxnode counts one more than the bits it reads (set_mempolicy(2)).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            mode,
            mask,
            if bits == 0 { 0 } else { bits + 1 },
        )
    };
    Errno::result(ret).map(drop)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`: one 32-bit half of each set.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `capset(2)` of this process's three capability sets (bit `n` is capability `n`), in the v3 ABI.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid, properly laid out (repr(C)) structures of the v3 ABI, which takes two
    // data elements; the kernel only reads them.
    let ret =
        unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, program)`: install a filter on this process. With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` in `flags`, the notify listener fd it returns. A program longer than a
/// `sock_fprog` can state fails with EINVAL, as one longer than the kernel takes does.
pub fn seccomp_set_mode_filter(
    program: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> nix::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, a live instruction array of the length it states; the kernel copies it
    // and keeps no reference to our memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
}

/// Whether the kernel knows these seccomp filter flags: with a null program it fails with EFAULT once the flags
/// passed its check, and EINVAL when they did not (runc probes the same way).
pub fn seccomp_knows_filter_flags(flags: libc::c_ulong) -> bool {
    // SAFETY: a null program is never installed; the kernel only validates the flags and fails to copy it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret == -1 && Errno::last() == Errno::EFAULT
}

/// bpf(2) with `attr` as its `union bpf_attr` argument; the typed commands are `cgroups::bpf`'s.
///
/// # Safety
///
/// `attr` must be the `#[repr(C)]` layout, without implicit padding, of the leading fields of
/// `union bpf_attr` for `cmd`; every pointer in it must be valid for what the kernel does with it
/// during the call.
pub unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: `attr` is valid and writable for its size, which we pass; its contents are the
    // caller's responsibility (see above).
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    Errno::result(ret)
}

fn null_terminated(items: &[std::ffi::CString]) -> Vec<*const libc::c_char> {
    items
        .iter()
        .map(|i| i.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[std::ffi::CString], envp: &[std::ffi::CString]) -> Errno {
    let (argv, envp) = (null_terminated(argv), null_terminated(envp));
    // SAFETY: both arrays are NULL-terminated and point into CStrings that outlive the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// `fexecve(fd, argv, envp)`; returns only on failure.
pub fn fexecve(
    fd: BorrowedFd<'_>,
    argv: &[std::ffi::CString],
    envp: &[std::ffi::CString],
) -> Errno {
    let (argv, envp) = (null_terminated(argv), null_terminated(envp));
    // SAFETY: both arrays are NULL-terminated and point into CStrings that outlive the call; fd is valid.
    unsafe { libc::fexecve(fd.as_raw_fd(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// Leave the process immediately without running destructors or flushing stdio buffers copied from the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], {set, clear})`: change a mount's attributes by fd.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    setattr(fd, recursive, &attr)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr)`.
fn setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &libc::mount_attr) -> nix::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is an empty NUL-terminated string, `attr` is fully initialised and its size is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Whether the kernel has mount_setattr(2) (Linux 5.12), which the recursive mount options need.
pub fn has_mount_setattr() -> bool {
    // SAFETY: an invalid fd and null pointers: the kernel fails with EBADF/EINVAL, or ENOSYS without the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            std::ptr::null::<libc::c_char>(),
            0,
            std::ptr::null::<libc::mount_attr>(),
            0,
        )
    };
    ret == 0 || Errno::last() != Errno::ENOSYS
}

/// New mount API constants (linux/mount.h) that the libc crate does not export.
pub const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
pub const FSCONFIG_SET_STRING: libc::c_uint = 1;
pub const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
pub const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;

fn owned_fd_result(ret: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: a new descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fsopen(fstype, FSOPEN_CLOEXEC)`: a filesystem context to configure.
pub fn fsopen(fstype: &CStr) -> nix::Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated string and a flag.
    owned_fd_result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

/// `fsconfig(ctx, FSCONFIG_SET_STRING, key, value, 0)`.
pub fn fsconfig_set_string(ctx: BorrowedFd<'_>, key: &CStr, value: &CStr) -> nix::Result<()> {
    // SAFETY: both strings are valid and NUL-terminated for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `fsconfig(ctx, FSCONFIG_CMD_CREATE)`: create the superblock.
pub fn fsconfig_create(ctx: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: null key and value are what FSCONFIG_CMD_CREATE takes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `fsmount(ctx, FSMOUNT_CLOEXEC, attrs)`: a detached mount, reachable only through the returned fd.
pub fn fsmount(ctx: BorrowedFd<'_>, attrs: u64) -> nix::Result<OwnedFd> {
    // SAFETY: integer arguments on a valid context fd.
    owned_fd_result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    })
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE])`: a detached copy of the
/// mount at `path` (with the mounts below it when `recursive`), reachable only through the returned fd.
pub fn open_tree_clone(path: &CStr, recursive: bool) -> nix::Result<OwnedFd> {
    let mut flags = (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid NUL-terminated path and integer flags.
    owned_fd_result(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags)
    })
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH [| AT_RECURSIVE], {MOUNT_ATTR_IDMAP, userns})`: id-map a detached tree
/// through the mapping of the user namespace `userns`.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    setattr(tree, recursive, &attr)
}

/// `move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`: attach the detached
/// `tree` on the directory or file `target` (an `O_PATH` fd) in the caller's mount namespace.
pub fn move_mount_onto(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: empty NUL-terminated paths and valid fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    Errno::result(ret).map(drop)
}

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`: a counter the kernel can signal (cgroup v1 notifications); reads
/// return and reset the count, or fail with EAGAIN while it is zero.
pub fn eventfd_nonblocking() -> nix::Result<OwnedFd> {
    // SAFETY: integer arguments only; on success the kernel returns a new fd that we take ownership of.
    owned_fd_result(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }.into())
}

/// A /proc or cgroupfs file's text. They report a size of 0, so `fs::read_to_string` starts with 32-byte probe reads
/// and grows from there (nine reads for a 2 KiB mountinfo); a page-sized buffer takes one read and one for the end.
pub fn read_proc_file(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(4096);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_flags_probe_tells_known_from_unknown() {
        assert!(seccomp_knows_filter_flags(0));
        assert!(seccomp_knows_filter_flags(libc::SECCOMP_FILTER_FLAG_LOG));
        assert!(!seccomp_knows_filter_flags(1 << 31));
    }

    #[test]
    fn a_seccomp_program_longer_than_a_sock_fprog_states_is_refused_unloaded() {
        let nop = libc::sock_filter {
            code: 0,
            jt: 0,
            jf: 0,
            k: 0,
        };
        let program = vec![nop; usize::from(u16::MAX) + 1];
        assert_eq!(
            seccomp_set_mode_filter(&program, 0).err(),
            Some(Errno::EINVAL)
        );
    }

    #[test]
    fn affinity_to_every_cpu_the_mask_can_name() {
        assert_eq!(sched_setaffinity(&[0xff; 1024]), Ok(()));
    }
}
