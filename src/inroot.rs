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

/// How many dangling symlinks a creation may follow (the kernel's limit for one lookup).
const MAX_SYMLINK_HOPS: u32 = 40;

/// Where the dangling symlink `name` in the directory `dir` (at `link_path` in the root) points, as a clean path
/// inside the root followed by `rest`. A relative target is taken from the link's directory; `..` is applied
/// lexically and can never climb above the root (everything is then opened in-root anyway).
fn follow_dangling(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    link_path: &Path,
    rest: &Path,
    hops: &mut u32,
) -> Result<PathBuf> {
    let shown = Path::new("/").join(link_path);
    *hops += 1;
    if *hops > MAX_SYMLINK_HOPS {
        bail!("{}: too many levels of symbolic links", shown.display());
    }
    let link = nix::fcntl::readlinkat(dir, name)
        .with_context(|| format!("{} exists but cannot be opened", shown.display()))?;
    let base = if Path::new(&link).is_absolute() {
        PathBuf::new()
    } else {
        link_path.parent().unwrap_or(Path::new("")).to_path_buf()
    };
    Ok(clean(&base.join(link).join(rest)))
}

/// `mkdir -p` inside `root`; returns an `O_PATH` fd of the final directory. A dangling symlink on the way is
/// followed inside the root and its target created there (as runc's `MkdirAllInRoot` does), never on the host.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd> {
    let mut target = clean(path);
    let mut hops = 0;
    loop {
        match mkdir_all_once(root, &target, mode)? {
            Created::Dir(fd) => return Ok(fd),
            Created::Dangling { dir, name, at } => {
                let rest = target
                    .strip_prefix(&at)
                    .unwrap_or(Path::new(""))
                    .to_path_buf();
                target = follow_dangling(dir.as_fd(), &name, &at, &rest, &mut hops)?;
            }
        }
    }
}

enum Created {
    Dir(OwnedFd),
    /// `name` in `dir` (at `at` in the root) exists but does not resolve: a dangling symlink.
    Dangling {
        dir: OwnedFd,
        name: CString,
        at: PathBuf,
    },
}

fn mkdir_all_once(root: BorrowedFd<'_>, target: &Path, mode: u32) -> Result<Created> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let parts: Vec<_> = target.components().collect();
    // The deepest ancestor that opens as a directory, searched from the target up: most targets exist already or
    // miss only their last component, so this takes one or two lookups where a walk from the root takes one per
    // component. Below it, each component is made and opened in turn, which reports whatever stopped the lookup
    // (a file in the way, a symlink loop) at the component where it is.
    let mut have = parts.len();
    let mut current = loop {
        let prefix: PathBuf = parts[..have].iter().collect();
        match open(root, &prefix, dir_flags, 0) {
            Ok(fd) => break fd,
            Err(_) if have > 0 => have -= 1,
            Err(e) => return Err(e).context("open root directory"),
        }
    };
    let mut prefix: PathBuf = parts[..have].iter().collect();
    for part in &parts[have..] {
        prefix.push(part);
        let name = c_path(Path::new(part.as_os_str()))?;
        match nix::sys::stat::mkdirat(
            current.as_fd(),
            name.as_c_str(),
            Mode::from_bits_truncate(mode),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("mkdir {}", Path::new("/").join(&prefix).display()))
            }
        }
        current = match open(root, &prefix, dir_flags, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                return Ok(Created::Dangling {
                    dir: current,
                    name,
                    at: prefix,
                })
            }
            Err(Errno::ENOTDIR) => bail!(
                "{} is not a directory",
                Path::new("/").join(&prefix).display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("open {}", Path::new("/").join(&prefix).display()))
            }
        };
    }
    Ok(Created::Dir(current))
}

/// Make sure a regular file (or any non-directory) exists at `path` inside `root`, creating parents; returns an
/// `O_PATH` fd of it. Used for file bind-mount targets and masked device nodes. A dangling symlink at `path` is
/// followed inside the root and the file created there (crun CVE-2019-18837), never on the host.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    let mut target = clean(path);
    let mut hops = 0;
    loop {
        if let Ok(fd) = open(root, &target, OFlag::O_PATH, 0) {
            return Ok(fd);
        }
        let parent = target.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = target
            .file_name()
            .with_context(|| format!("{} has no file name", path.display()))?;
        let parent_fd = mkdir_all(root, &parent, 0o755)?;
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
        match open(root, &target, OFlag::O_PATH, 0) {
            Ok(fd) => return Ok(fd),
            // mkdir_all resolved the parent, so `target` itself is a dangling symlink: create where it points.
            Err(Errno::ENOENT) => {
                target = follow_dangling(
                    parent_fd.as_fd(),
                    &c_name,
                    &target,
                    Path::new(""),
                    &mut hops,
                )?;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("open {}", Path::new("/").join(&target).display()))
            }
        }
    }
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
    fn dangling_symlinks_are_created_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let host = dir.path().join("host");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir(&host).unwrap();
        // Absolute links to a host path that does not exist in the root, and a relative one.
        std::os::unix::fs::symlink(&host, root.join("evil")).unwrap();
        std::os::unix::fs::symlink(host.join("file"), root.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("../made/rel", root.join("etc/rel")).unwrap();
        let root_fd = fs::File::open(&root).unwrap();
        mkdir_all(root_fd.as_fd(), Path::new("/evil/sub"), 0o755).unwrap();
        ensure_file(root_fd.as_fd(), Path::new("/etc/resolv.conf")).unwrap();
        mkdir_all(root_fd.as_fd(), Path::new("/etc/rel/x"), 0o755).unwrap();
        let inside = root.join(host.strip_prefix("/").unwrap());
        assert!(
            inside.join("sub").is_dir(),
            "directory made inside the root"
        );
        assert!(inside.join("file").is_file(), "file made inside the root");
        assert!(
            root.join("made/rel/x").is_dir(),
            "relative link followed inside the root"
        );
        assert_eq!(
            fs::read_dir(&host).unwrap().count(),
            0,
            "nothing made on the host"
        );
    }

    #[test]
    fn symlink_loops_end_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("/a", dir.path().join("b")).unwrap();
        let root_fd = fs::File::open(dir.path()).unwrap();
        let err = mkdir_all(root_fd.as_fd(), Path::new("/a/x"), 0o755).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("open /a: ")
                && format!("{err:#}").contains("symbolic links"),
            "expected the loop reported at /a, got: {err:#}"
        );
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
