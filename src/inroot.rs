//! Path operations confined to a root directory: every lookup goes through `openat2(RESOLVE_IN_ROOT)`, so a symlink or
//! `..` inside an (untrusted, possibly concurrently modified) rootfs can never lead outside it, and every creation is
//! relative to an already-resolved parent fd (CVE-2021-30465, CVE-2024-45310, crun CVE-2019-18837).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys;

pub const RESOLVE_NO_SYMLINKS: u64 = libc::RESOLVE_NO_SYMLINKS;
const BASE_RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// `path` without `.`, leading `/` or `..` that would climb above the root (what the kernel would do in the root).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn c_path(path: &Path) -> Result<CString> {
    let bytes = if path.as_os_str().is_empty() {
        b".".as_slice()
    } else {
        path.as_os_str().as_bytes()
    };
    CString::new(bytes).with_context(|| format!("path {} contains a NUL byte", path.display()))
}

/// Open `path` inside `root` (flags as for open(2); `O_CLOEXEC` is always added). `extra` adds `RESOLVE_*` bits.
pub fn open(root: BorrowedFd<'_>, path: &Path, flags: OFlag, extra: u64) -> nix::Result<OwnedFd> {
    let c = c_path(&clean(path)).map_err(|_| Errno::EINVAL)?;
    sys::openat2(root, &c, flags.bits(), BASE_RESOLVE | extra)
}

/// `/proc/self/fd/N`: a path that names exactly the object behind `fd` (mount(2) targets and sources).
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `mkdir -p` inside `root`; returns an `O_PATH` fd of the final directory.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd> {
    let target = clean(path);
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut current = open(root, Path::new(""), dir_flags, 0).context("open root directory")?;
    let mut prefix = PathBuf::new();
    for part in target.components() {
        prefix.push(part);
        match open(root, &prefix, dir_flags, 0) {
            Ok(fd) => current = fd,
            Err(Errno::ENOENT) => {
                let name = c_path(Path::new(part.as_os_str()))?;
                match nix::sys::stat::mkdirat(
                    current.as_fd(),
                    name.as_c_str(),
                    Mode::from_bits_truncate(mode),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("mkdir {}", Path::new("/").join(&prefix).display())
                        })
                    }
                }
                current = open(root, &prefix, dir_flags, 0)
                    .with_context(|| format!("open {}", Path::new("/").join(&prefix).display()))?;
            }
            Err(Errno::ENOTDIR) => bail!(
                "{} is not a directory",
                Path::new("/").join(&prefix).display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("open {}", Path::new("/").join(&prefix).display()))
            }
        }
    }
    Ok(current)
}

/// Make sure a regular file (or any non-directory) exists at `path` inside `root`, creating parents; returns an
/// `O_PATH` fd of it. Used for file bind-mount targets and masked device nodes.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    let target = clean(path);
    if let Ok(fd) = open(root, &target, OFlag::O_PATH, 0) {
        return Ok(fd);
    }
    let parent = target.parent().unwrap_or(Path::new(""));
    let name = target
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let parent_fd = mkdir_all(root, parent, 0o755)?;
    let c_name = c_path(Path::new(name))?;
    // O_PATH directory fds cannot create files with openat; use mknodat for an empty regular file instead.
    match nix::sys::stat::mknodat(
        parent_fd.as_fd(),
        c_name.as_c_str(),
        nix::sys::stat::SFlag::S_IFREG,
        Mode::from_bits_truncate(0o644),
        0,
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("create {}", Path::new("/").join(&target).display()))
        }
    }
    open(root, &target, OFlag::O_PATH, 0)
        .with_context(|| format!("open {}", Path::new("/").join(&target).display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn clean_never_climbs_above_root() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(
            clean(Path::new("../../etc/passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../", root.join("dots")).unwrap();
        let root_fd = fs::File::open(&root).unwrap();
        let fd = mkdir_all(root_fd.as_fd(), Path::new("/escape/made/here"), 0o755).unwrap();
        drop(fd);
        assert!(
            root.join("etc/made/here").is_dir(),
            "created inside the root"
        );
        assert!(
            !Path::new("/etc/made").exists(),
            "nothing created on the host"
        );
        mkdir_all(root_fd.as_fd(), Path::new("/dots/inside"), 0o755).unwrap();
        assert!(root.join("inside").is_dir());
    }

    #[test]
    fn ensure_file_creates_parents_and_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let root_fd = fs::File::open(dir.path()).unwrap();
        ensure_file(root_fd.as_fd(), Path::new("/a/b/file")).unwrap();
        assert!(dir.path().join("a/b/file").is_file());
        ensure_file(root_fd.as_fd(), Path::new("/a/b/file")).unwrap();
    }

    #[test]
    fn mkdir_all_reports_a_file_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "").unwrap();
        let root_fd = fs::File::open(dir.path()).unwrap();
        let err = mkdir_all(root_fd.as_fd(), Path::new("/f/sub"), 0o755).unwrap_err();
        assert_eq!(err.to_string(), "/f is not a directory");
    }
}
