//! The cgroup2 device controller: the container's device policy compiled into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program (the design of runc's `devicefilter`), loaded with bpf(2)
//! and attached to the container's cgroup in place of the programs attached there before.

use std::ffi::CStr;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::LinuxResources;

use super::devices::{self, DevicePolicy, ANY, MKNOD, READ, WRITE};
use crate::sys;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    code: u8,
    /// `dst_reg:4, src_reg:4` (see [`regs`]).
    regs: u8,
    off: i16,
    imm: i32,
}

/// Opcode parts (linux/bpf_common.h, linux/bpf.h): classes, size, mode, operations, source.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_CLASS_MASK: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;

/// Registers: R0 holds the verdict, R1 the context on entry; R2-R5 are loaded from the context.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// `struct bpf_cgroup_dev_ctx`: `access_type` (device type in the low 16 bits, access in the high
/// 16), `major`, `minor`, all u32.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;

/// bpf(2) commands, the program and attach types, and the attach flag used here (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// As runc's program (the format of the kernel's MODULE_LICENSE).
const LICENSE: &CStr = c"Apache";
/// The program's name, as `bpftool prog` shows it.
const PROG_NAME: &[u8] = b"hull_devices";
/// Room for the verifier's explanation when the kernel refuses the program.
const LOG_SIZE: usize = 256 * 1024;
/// The kernel attaches at most 64 programs of one type to a cgroup (BPF_CGROUP_MAX_PROGS).
const MAX_PROGS: usize = 64;

/// The device filter for `r`'s device policy (see `devices::policy`); `None` when the policy
/// allows every access, which needs no program.
pub(super) fn device_filter(r: &LinuxResources) -> Result<Option<Vec<Insn>>> {
    let policy = devices::policy(r)?;
    if policy.default_allow && policy.exceptions.is_empty() {
        return Ok(None);
    }
    Ok(Some(program(&policy)))
}

/// Makes `filter` the only device filter attached to the cgroup2 directory `dir` (`None` leaves
/// none). Like runc, the programs attached before are detached only after the new one is attached,
/// so the cgroup is never without a filter while one is replaced.
pub(super) fn apply_devices(dir: &Path, filter: Option<&[Insn]>) -> Result<()> {
    let dir_file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .with_context(|| format!("open {}", dir.display()))?;
    let cgroup = dir_file.as_fd();
    let old = attached(cgroup)
        .with_context(|| format!("query the device filters of cgroup {}", dir.display()))?;
    if let Some(insns) = filter {
        let prog = load(insns)
            .with_context(|| format!("load the device filter for cgroup {}", dir.display()))?;
        prog_attach(cgroup, prog.as_fd())
            .with_context(|| format!("attach the device filter to cgroup {}", dir.display()))?;
    }
    for (id, prog) in old {
        match prog_detach(cgroup, prog.as_fd()) {
            // Detached meanwhile by someone else: gone all the same.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "detach the old device filter (program {id}) from cgroup {}",
                        dir.display()
                    )
                })
            }
        }
    }
    Ok(())
}

/// The program for `policy`, as runc's: load the device type (R2), the access (R3), the major
/// (R4) and the minor (R5); then one block per exception, in the policy's order, that returns the
/// exception's verdict when the type matches, the access asked for is within the exception's, and
/// the major and minor match (a wildcard is not checked); then return the default verdict.
fn program(policy: &DevicePolicy) -> Vec<Insn> {
    let mut insns = vec![
        ldx_w(R2, R1, CTX_ACCESS_TYPE),
        alu32_imm(BPF_AND, R2, 0xffff),
        ldx_w(R3, R1, CTX_ACCESS_TYPE),
        alu32_imm(BPF_RSH, R3, 16),
        ldx_w(R4, R1, CTX_MAJOR),
        ldx_w(R5, R1, CTX_MINOR),
    ];
    for (&(major, minor, typ), &access) in &policy.exceptions {
        insns.extend(exception(typ, major, minor, access, !policy.default_allow));
    }
    insns.extend(verdict(policy.default_allow));
    insns
}

/// One exception's block: each check that fails jumps to the instruction after the block.
fn exception(typ: char, major: i64, minor: i64, access: u8, allow: bool) -> Vec<Insn> {
    // Exceptions are of type 'b' or 'c' only (see `DevicePolicy`).
    let dev_type = if typ == 'b' {
        BPF_DEVCG_DEV_BLOCK
    } else {
        BPF_DEVCG_DEV_CHAR
    };
    let mut block = vec![jne_imm(R2, dev_type)];
    let bits = bpf_access(access);
    if bits != BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE {
        // R3 & bits != R3: some access asked for is not in the exception (R1 serves as scratch).
        block.extend([
            mov32_reg(R1, R3),
            alu32_imm(BPF_AND, R1, bits),
            jne_reg(R1, R3),
        ]);
    }
    if major != ANY {
        block.push(jne_imm(R4, number(major)));
    }
    if minor != ANY {
        block.push(jne_imm(R5, number(minor)));
    }
    let end = block.len() + 2;
    for (i, check) in block.iter_mut().enumerate() {
        if check.code & BPF_CLASS_MASK == BPF_JMP {
            check.off = (end - i - 1) as i16;
        }
    }
    block.extend(verdict(allow));
    block
}

fn verdict(allow: bool) -> [Insn; 2] {
    [mov32_imm(R0, i32::from(allow)), exit()]
}

fn bpf_access(access: u8) -> i32 {
    [
        (READ, BPF_DEVCG_ACC_READ),
        (WRITE, BPF_DEVCG_ACC_WRITE),
        (MKNOD, BPF_DEVCG_ACC_MKNOD),
    ]
    .iter()
    .filter(|(bit, _)| access & bit != 0)
    .fold(0, |bits, (_, bpf)| bits | bpf)
}

/// A major or minor number (0 to u32::MAX, see `devices`) as a compare immediate. The compare is
/// 64-bit against a zero-extended u32 and sign-extends the immediate, so a number above i32::MAX
/// matches nothing, as runc's program does; no device has one (majors have 12 bits, minors 20).
fn number(n: i64) -> i32 {
    n as u32 as i32
}

/// `dst_reg:4, src_reg:4` as the C bitfield lays them out in a byte.
fn regs(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "big") {
        dst << 4 | src
    } else {
        src << 4 | dst
    }
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: regs(dst, src),
        off,
        imm,
    }
}

/// dst = *(u32 *)(src + off)
fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
}

/// dst = (u32)(dst op imm)
fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
}

/// dst = (u32)imm
fn mov32_imm(dst: u8, imm: i32) -> Insn {
    alu32_imm(BPF_MOV, dst, imm)
}

/// dst = (u32)src
fn mov32_reg(dst: u8, src: u8) -> Insn {
    insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
}

/// if dst != imm goto end of block (the offset is set by `exception`)
fn jne_imm(dst: u8, imm: i32) -> Insn {
    insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm)
}

/// if dst != src goto end of block (the offset is set by `exception`)
fn jne_reg(dst: u8, src: u8) -> Insn {
    insn(BPF_JMP | BPF_JNE | BPF_X, dst, src, 0, 0)
}

fn exit() -> Insn {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// Loads the program; when the kernel refuses it, loads it again with the verifier's log, whose
/// text goes into the error.
fn load(insns: &[Insn]) -> Result<OwnedFd> {
    if let Ok(prog) = prog_load(insns, &mut []) {
        return Ok(prog);
    }
    let mut log = vec![0u8; LOG_SIZE];
    let err = match prog_load(insns, &mut log) {
        Ok(prog) => return Ok(prog),
        Err(err) => err,
    };
    let text = CStr::from_bytes_until_nul(&log)
        .map(|text| text.to_string_lossy().trim_end().to_owned())
        .unwrap_or_default();
    if text.is_empty() {
        return Err(anyhow!(err));
    }
    Err(anyhow!("{err}: verifier log: {text}"))
}

/// The programs attached directly to `cgroup` as device filters, by id. Like runc, programs that
/// cannot be opened for lack of permission (an LSM policy) are left alone: another filter can only
/// deny more. Programs gone since the query are skipped.
fn attached(cgroup: BorrowedFd<'_>) -> nix::Result<Vec<(u32, OwnedFd)>> {
    let mut progs = Vec::new();
    for id in prog_query(cgroup)? {
        match prog_get_fd_by_id(id) {
            Ok(prog) => progs.push((id, prog)),
            Err(Errno::EPERM | Errno::EACCES | Errno::ENOENT) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(progs)
}

/// `bpf(BPF_PROG_LOAD)` of a cgroup device program; `log` empty for no verifier log.
fn prog_load(insns: &[Insn], log: &mut [u8]) -> nix::Result<OwnedFd> {
    /// `union bpf_attr` for BPF_PROG_LOAD, up to `prog_name`.
    #[repr(C)]
    struct Attr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
    }
    let mut prog_name = [0u8; 16];
    prog_name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let mut attr = Attr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len().try_into().map_err(|_| Errno::E2BIG)?,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len().try_into().map_err(|_| Errno::EINVAL)?,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
    };
    // SAFETY: `Attr` is the BPF_PROG_LOAD prefix of bpf_attr without padding; `insns` points to
    // `insn_cnt` instructions, `license` to a NUL-terminated string and `log_buf` to `log_size`
    // writable bytes, all of which outlive the call.
    let fd = unsafe { sys::bpf(BPF_PROG_LOAD, &mut attr) }?;
    // SAFETY: a new descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `union bpf_attr` for BPF_PROG_ATTACH and BPF_PROG_DETACH, up to `attach_flags`.
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// `bpf(BPF_PROG_ATTACH)` of a device program to a cgroup, alongside those already there.
fn prog_attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> nix::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: `AttachAttr` is the BPF_PROG_ATTACH prefix of bpf_attr without padding or pointers.
    unsafe { sys::bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// `bpf(BPF_PROG_DETACH)` of one device program from a cgroup.
fn prog_detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> nix::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: `AttachAttr` is the BPF_PROG_DETACH prefix of bpf_attr without padding or pointers.
    unsafe { sys::bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// `bpf(BPF_PROG_QUERY)`: the ids of the device programs attached directly to a cgroup.
fn prog_query(cgroup: BorrowedFd<'_>) -> nix::Result<Vec<u32>> {
    /// `union bpf_attr` for BPF_PROG_QUERY, up to `prog_cnt` (and the padding after it, which
    /// must be zero).
    #[repr(C)]
    struct Attr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        padding: u32,
    }
    let mut ids = vec![0u32; MAX_PROGS];
    let mut attr = Attr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: MAX_PROGS as u32,
        padding: 0,
    };
    // SAFETY: `Attr` is the BPF_PROG_QUERY prefix of bpf_attr with its padding explicit;
    // `prog_ids` points to `prog_cnt` writable u32s that outlive the call.
    unsafe { sys::bpf(BPF_PROG_QUERY, &mut attr) }?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// `bpf(BPF_PROG_GET_FD_BY_ID)`.
fn prog_get_fd_by_id(id: u32) -> nix::Result<OwnedFd> {
    /// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID, up to `open_flags`.
    #[repr(C)]
    struct Attr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut attr = Attr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: `Attr` is the BPF_PROG_GET_FD_BY_ID prefix of bpf_attr without padding or pointers.
    let fd = unsafe { sys::bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }?;
    // SAFETY: a new descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn policy(default_allow: bool, exceptions: &[((i64, i64, char), u8)]) -> DevicePolicy {
        DevicePolicy {
            default_allow,
            exceptions: exceptions.iter().copied().collect::<BTreeMap<_, _>>(),
        }
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    /// The six loads every program starts with.
    fn prologue() -> Vec<Insn> {
        vec![
            insn(0x61, 2, 1, 0, 0),
            insn(0x54, 2, 0, 0, 0xffff),
            insn(0x61, 3, 1, 0, 0),
            insn(0x74, 3, 0, 0, 16),
            insn(0x61, 4, 1, 4, 0),
            insn(0x61, 5, 1, 8, 0),
        ]
    }

    #[test]
    fn exact_program_for_a_small_deny_list() {
        let p = policy(
            false,
            &[
                ((ANY, ANY, 'b'), MKNOD),
                ((1, 3, 'c'), READ | WRITE | MKNOD),
                ((136, ANY, 'c'), READ | WRITE),
            ],
        );
        let mut expected = prologue();
        expected.extend([
            // b *:* m
            insn(0x55, 2, 0, 5, 1),
            insn(0xbc, 1, 3, 0, 0),
            insn(0x54, 1, 0, 0, 1),
            insn(0x5d, 1, 3, 2, 0),
            insn(0xb4, 0, 0, 0, 1),
            insn(0x95, 0, 0, 0, 0),
            // c 1:3 rwm
            insn(0x55, 2, 0, 4, 2),
            insn(0x55, 4, 0, 3, 1),
            insn(0x55, 5, 0, 2, 3),
            insn(0xb4, 0, 0, 0, 1),
            insn(0x95, 0, 0, 0, 0),
            // c 136:* rw
            insn(0x55, 2, 0, 6, 2),
            insn(0xbc, 1, 3, 0, 0),
            insn(0x54, 1, 0, 0, 6),
            insn(0x5d, 1, 3, 3, 0),
            insn(0x55, 4, 0, 2, 136),
            insn(0xb4, 0, 0, 0, 1),
            insn(0x95, 0, 0, 0, 0),
            // default: deny
            insn(0xb4, 0, 0, 0, 0),
            insn(0x95, 0, 0, 0, 0),
        ]);
        assert_eq!(program(&p), expected);
    }

    #[test]
    fn allow_list_with_a_denied_device() {
        let mut expected = prologue();
        expected.extend([
            insn(0x55, 2, 0, 4, 1),
            insn(0x55, 4, 0, 3, 8),
            insn(0x55, 5, 0, 2, 0),
            insn(0xb4, 0, 0, 0, 0),
            insn(0x95, 0, 0, 0, 0),
            insn(0xb4, 0, 0, 0, 1),
            insn(0x95, 0, 0, 0, 0),
        ]);
        let r = resources(
            r#"{"devices":[{"allow":true,"access":"rwm"},
                           {"allow":false,"type":"b","major":8,"minor":0,"access":"rwm"}]}"#,
        );
        assert_eq!(device_filter(&r).unwrap(), Some(expected));
    }

    #[test]
    fn allow_all_needs_no_program() {
        let r = resources(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#);
        assert_eq!(device_filter(&r).unwrap(), None);
        let r = resources(r#"{"devices":[{"allow":true,"type":"c","major":1,"access":"rq"}]}"#);
        assert_eq!(
            format!("{:#}", device_filter(&r).unwrap_err()),
            "linux.resources.devices[0]: access \"rq\" has 'q': only r, w and m are allowed"
        );
    }

    #[test]
    fn instruction_encoding() {
        // r2 = *(u32 *)(r1 + 0) and if r5 != 0x1234 goto +2, as the kernel reads them.
        let bytes = |i: Insn| {
            let mut b = vec![i.code, i.regs];
            b.extend(i.off.to_ne_bytes());
            b.extend(i.imm.to_ne_bytes());
            b
        };
        assert_eq!(size_of::<Insn>(), 8);
        if cfg!(target_endian = "little") {
            assert_eq!(bytes(ldx_w(R2, R1, 0)), [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
            let mut jump = jne_imm(R5, 0x1234);
            jump.off = 2;
            assert_eq!(bytes(jump), [0x55, 0x05, 2, 0, 0x34, 0x12, 0, 0]);
        }
    }

    #[test]
    fn runc_default_policy_is_well_formed() {
        let p = devices::policy(&LinuxResources::default()).unwrap();
        let insns = program(&p);
        // b *:* m and c *:* m: 6 each; c 136:* rwm: 4; the eight single devices: 5 each.
        assert_eq!(insns.len(), 6 + 6 + 6 + 4 + 8 * 5 + 2);
        for (pc, i) in insns.iter().enumerate() {
            if i.code == BPF_JMP | BPF_EXIT {
                continue;
            }
            if i.code & BPF_CLASS_MASK == BPF_JMP {
                let target = pc as i64 + 1 + i64::from(i.off);
                assert!(i.off > 0, "jump {pc} does not go forward");
                assert!(target < insns.len() as i64, "jump {pc} leaves the program");
                let before = &insns[target as usize - 1];
                assert_eq!(
                    before.code,
                    BPF_JMP | BPF_EXIT,
                    "jump {pc} is not to a block"
                );
            }
        }
        assert_eq!(insns.last(), Some(&exit()));
        let verdicts: Vec<i32> = insns
            .windows(2)
            .filter(|w| w[1] == exit())
            .map(|w| w[0].imm)
            .collect();
        let mut expected = vec![1; p.exceptions.len()];
        expected.push(0);
        assert_eq!(verdicts, expected);
    }

    /// Real-kernel tests: they need root and a cgroup2 mount, and skip otherwise.
    mod kernel {
        use super::*;
        use crate::cgroups::{Cgroup, Hierarchy};
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        use std::ffi::CString;
        use std::path::PathBuf;

        /// A cgroup2 directory for one test, removed even when the test fails.
        struct TestCgroup {
            path: PathBuf,
        }

        impl TestCgroup {
            fn new(test: &str) -> Option<TestCgroup> {
                if !nix::unistd::geteuid().is_root() {
                    println!("SKIP: {test}: needs root");
                    return None;
                }
                let name = format!("/hull-test-{}-bpf-{test}", std::process::id());
                let cg = match Cgroup::resolve(Some(Path::new(&name)), test) {
                    Ok(cg) => cg,
                    Err(err) => {
                        println!("SKIP: {test}: no cgroup layout: {err:#}");
                        return None;
                    }
                };
                let Some(h) = cg.hierarchies().iter().find(|h| h.v2) else {
                    println!("SKIP: {test}: no cgroup2 mount");
                    return None;
                };
                fs::create_dir(&h.path).unwrap();
                Some(TestCgroup {
                    path: h.path.clone(),
                })
            }

            fn apply(&self, json: &str) {
                let filter = device_filter(&resources(json)).unwrap();
                apply_devices(&self.path, filter.as_deref()).unwrap();
            }

            fn attached(&self) -> usize {
                let dir = fs::File::open(&self.path).unwrap();
                prog_query(dir.as_fd()).unwrap().len()
            }

            /// Forks a child that joins the cgroup and opens `device` with `flags`: 0 when the
            /// open succeeds, else its errno.
            fn open_inside(&self, device: &str, flags: libc::c_int) -> i32 {
                let procs_file = fs::OpenOptions::new()
                    .write(true)
                    .open(self.path.join("cgroup.procs"))
                    .unwrap();
                let procs = procs_file.as_raw_fd();
                let device = CString::new(device).unwrap();
                // SAFETY: the child (of a multi-threaded process) only makes async-signal-safe
                // calls on memory prepared before the fork: write(2), open(2), reading errno and
                // _exit(2).
                match unsafe { fork() }.unwrap() {
                    ForkResult::Child => {
                        // SAFETY: as above: raw calls on a valid fd, a valid C string and errno.
                        unsafe {
                            if libc::write(procs, b"0".as_ptr().cast(), 1) != 1 {
                                libc::_exit(255);
                            }
                            if libc::open(device.as_ptr(), flags | libc::O_CLOEXEC) >= 0 {
                                libc::_exit(0);
                            }
                            libc::_exit(*libc::__errno_location());
                        }
                    }
                    ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                        WaitStatus::Exited(_, 255) => panic!("child could not join the cgroup"),
                        WaitStatus::Exited(_, code) => code,
                        other => panic!("child ended with {other:?}"),
                    },
                }
            }
        }

        impl Drop for TestCgroup {
            fn drop(&mut self) {
                let _ = fs::remove_dir(&self.path);
            }
        }

        const DENY_ALL: &str = r#"{"devices":[{"allow":false,"access":"rwm"}]}"#;
        const EPERM: i32 = libc::EPERM;

        #[test]
        fn kernel_refusal_carries_the_verifier_log() {
            if !nix::unistd::geteuid().is_root() {
                println!("SKIP: verifier log: needs root");
                return;
            }
            let err = format!("{:#}", load(&[exit()]).unwrap_err());
            assert!(
                err.starts_with("EACCES: Permission denied: verifier log: ") && err.contains("R0"),
                "{err}"
            );
        }

        #[test]
        fn kernel_default_devices_only() {
            let Some(cg) = TestCgroup::new("defaults") else {
                return;
            };
            assert_eq!(cg.open_inside("/dev/kmsg", libc::O_RDONLY), 0);
            cg.apply(DENY_ALL);
            assert_eq!(cg.attached(), 1);
            assert_eq!(cg.open_inside("/dev/kmsg", libc::O_RDONLY), EPERM);
            assert_eq!(cg.open_inside("/dev/null", libc::O_RDWR), 0);
        }

        #[test]
        fn kernel_pure_v2_apply_attaches_the_filter() {
            let Some(tc) = TestCgroup::new("apply") else {
                return;
            };
            let unified = Cgroup {
                hierarchies: vec![Hierarchy {
                    mountpoint: tc.path.parent().unwrap().to_owned(),
                    controllers: Vec::new(),
                    v2: true,
                    path: tc.path.clone(),
                }],
                created: Vec::new(),
                systemd: None,
            };
            unified.apply(&resources(DENY_ALL)).unwrap();
            assert_eq!(tc.attached(), 1);
            assert_eq!(tc.open_inside("/dev/kmsg", libc::O_RDONLY), EPERM);
            let bad = r#"{"devices":[{"allow":true,"access":"rwm"},
                                     {"allow":true,"type":"c","major":1,"minor":3,"access":"x"}]}"#;
            assert_eq!(
                format!("{:#}", unified.apply(&resources(bad)).unwrap_err()),
                "linux.resources.devices[1]: access \"x\" has 'x': only r, w and m are allowed"
            );
            assert_eq!(tc.open_inside("/dev/kmsg", libc::O_RDONLY), EPERM);
        }

        #[test]
        fn kernel_update_replaces_the_filter() {
            let Some(cg) = TestCgroup::new("replace") else {
                return;
            };
            cg.apply(DENY_ALL);
            assert_eq!(cg.open_inside("/dev/kmsg", libc::O_RDONLY), EPERM);
            cg.apply(
                r#"{"devices":[{"allow":false,"access":"rwm"},
                               {"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]}"#,
            );
            assert_eq!(cg.attached(), 1);
            assert_eq!(cg.open_inside("/dev/kmsg", libc::O_RDONLY), 0);
            assert_eq!(cg.open_inside("/dev/kmsg", libc::O_WRONLY), EPERM);
            assert_eq!(cg.open_inside("/dev/null", libc::O_WRONLY), 0);
            cg.apply(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#);
            assert_eq!(cg.attached(), 0);
            assert_eq!(cg.open_inside("/dev/kmsg", libc::O_WRONLY), 0);
        }
    }
}
