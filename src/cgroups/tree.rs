//! The container's cgroup directories in one hierarchy: made (each one made recorded, so that a failed create
//! removes only those), their processes collected, and the tree removed, retried while its processes exit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::{v1, v2, Hierarchy};

pub(super) fn create_in(h: &Hierarchy, created: &mut Vec<PathBuf>) -> Result<()> {
    if h.v2 {
        v2::create(h, created)
    } else if h.controllers.iter().any(|c| c == "cpuset") {
        v1::create_cpuset(h, created)
    } else {
        // The parents usually exist (hull/ under the caller's cgroup): the leaf alone first.
        match fs::create_dir(&h.path) {
            Ok(()) => {
                created.push(h.path.clone());
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(err) => {
                return Err(err).with_context(|| format!("create cgroup {}", h.path.display()))
            }
        }
        for dir in dirs_below(&h.mountpoint, &h.path)? {
            mkdir(&dir, created)?;
        }
        Ok(())
    }
}

/// Every directory from the first level below `mountpoint` down to `path`, in creation order.
pub(super) fn dirs_below(mountpoint: &Path, path: &Path) -> Result<Vec<PathBuf>> {
    let rel = path.strip_prefix(mountpoint).map_err(|_| {
        anyhow!(
            "cgroup {} is not below its mountpoint {}",
            path.display(),
            mountpoint.display()
        )
    })?;
    let mut current = mountpoint.to_path_buf();
    Ok(rel
        .components()
        .map(|c| {
            current.push(c);
            current.clone()
        })
        .collect())
}

/// mkdir(2) that accepts an existing directory and records the ones it made.
pub(super) fn mkdir(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("create cgroup {}", dir.display())),
    }
}

pub(super) fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = match fs::read_to_string(&procs) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("read {}", procs.display())),
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let pid = line
            .parse()
            .with_context(|| format!("parse pid {line:?} in {}", procs.display()))?;
        pids.push(pid);
    }
    for sub in subdirs(dir)? {
        collect_pids(&sub, pids)?;
    }
    Ok(())
}

/// The sub-cgroups of `dir`; none when `dir` is gone.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("list {}", dir.display())),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let is_dir = entry
            .file_type()
            .with_context(|| format!("stat {}", entry.path().display()))?
            .is_dir();
        if is_dir {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// Removes `dir`'s tree, retrying while it is busy until `deadline`.
pub(super) fn remove_with_retry(dir: &Path, deadline: Instant) -> Result<()> {
    let mut backoff = Duration::from_millis(10);
    loop {
        match remove_tree(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
            Err(err) => {
                return Err(err).with_context(|| format!("remove cgroup {}", dir.display()))
            }
        }
    }
}

/// rmdir(2) of a cgroup and its sub-cgroups, deepest first (control files do not block rmdir). The usual cgroup has
/// none, so the rmdir is tried before the directory is read.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}
