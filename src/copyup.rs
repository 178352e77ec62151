//! `tmpcopyup`: a tmpfs mounted over a directory of the image starts with a copy of that directory's contents (podman
//! asks for it on `/tmp`, `/var/tmp` and `/run` with `--read-only`). The copy walks the covered directory through an
//! fd opened before the mount and never follows a symlink of the (untrusted) image: every entry is opened relative
//! to its parent with `O_NOFOLLOW`, and links are copied as links. Modes are set explicitly (no umask), with owners.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

/// Copy everything under the directory `from` into the (empty) directory `to`; `where_` names `to` in errors.
pub fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, where_: &str) -> Result<()> {
    let names = entry_names(from).with_context(|| format!("list {where_} before the tmpfs"))?;
    for name in names {
        let shown = format!("{where_}/{}", name.to_string_lossy());
        copy_entry(from, to, &name, &shown).with_context(|| format!("copy up {shown}"))?;
    }
    Ok(())
}

fn entry_names(dir: BorrowedFd<'_>) -> Result<Vec<CString>> {
    let reopened = openat(
        dir,
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut listing = Dir::from_fd(reopened)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_c_str() != c"." && name.as_c_str() != c".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &CStr, shown: &str) -> Result<()> {
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(to, name, Mode::S_IRWXU)?;
            let source = open_nofollow(from, name, OFlag::O_DIRECTORY)?;
            let target = open_nofollow(to, name, OFlag::O_DIRECTORY)?;
            copy_tree(source.as_fd(), target.as_fd(), shown)?;
            fchown(&target, uid, gid)?;
            fchmod(&target, mode)?;
        }
        SFlag::S_IFREG => {
            let mut source = File::from(open_nofollow(from, name, OFlag::O_RDONLY)?);
            let mut target = File::from(openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )?);
            std::io::copy(&mut source, &mut target)?;
            fchown(&target, uid, gid)?;
            fchmod(&target, mode)?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name)?;
            symlinkat(target.as_os_str(), to, name)?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        }
        SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
            mknodat(to, name, kind, Mode::S_IRUSR, st.st_rdev)?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            fchmodat(to, name, mode, FchmodatFlags::FollowSymlink)?;
        }
        // A socket is bound to the filesystem it lives on; a copy would not be one.
        _ => {}
    }
    Ok(())
}

fn open_nofollow(dir: BorrowedFd<'_>, name: &CStr, flags: OFlag) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}
