//! Where the cgroup hierarchies are on this host and where hull's own cgroup is in each: read from
//! `/proc/self/mountinfo` and `/proc/self/cgroup`, so pure v1, hybrid and pure v2 hosts are handled alike.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use super::{Cgroup, Hierarchy};
use crate::mountinfo;

/// A cgroup mount from /proc/self/mountinfo.
#[derive(Debug)]
struct CgroupMount {
    /// The mount's root inside its hierarchy (field 4), e.g. "/".
    root: PathBuf,
    mountpoint: PathBuf,
    v2: bool,
    super_options: Vec<String>,
}

/// One line of /proc/self/cgroup.
#[derive(Debug)]
struct OwnCgroup {
    /// Controllers of the v1 hierarchy ("name=systemd" included); empty for the cgroup2 line "0::".
    controllers: Vec<String>,
    path: PathBuf,
}

/// The cgroup and cgroup2 mounts among those of mountinfo.
fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>> {
    Ok(mountinfo::parse(text)?
        .into_iter()
        .filter_map(|m| {
            let v2 = match m.fstype.as_str() {
                "cgroup" => false,
                "cgroup2" => true,
                _ => return None,
            };
            Some(CgroupMount {
                root: m.root,
                mountpoint: m.mountpoint,
                v2,
                super_options: m.super_options,
            })
        })
        .collect())
}

/// The mount point of the whole cgroup2 hierarchy on a pure cgroup v2 host: the first cgroup2 mount of its root (a
/// container without a mount namespace of its own adds mounts of its own cgroup to the host's table).
pub(super) fn unified_root(mountinfo: &str) -> Result<PathBuf> {
    let mounts = parse_mountinfo(mountinfo)?;
    let whole = mounts.iter().find(|m| m.root == Path::new("/"));
    match whole {
        Some(mount) if mount.v2 && mounts.iter().all(|m| m.v2) => Ok(mount.mountpoint.clone()),
        _ => bail!(
            "the systemd cgroup driver needs a pure cgroup v2 host; this one mounts cgroup v1 hierarchies \
             (use the cgroupfs driver: no --systemd-cgroup)"
        ),
    }
}

/// Parses /proc/self/cgroup ("ID:controllers:path" per line).
fn parse_proc_cgroup(text: &str) -> Result<Vec<OwnCgroup>> {
    let mut own = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!("malformed /proc/self/cgroup line {line:?}");
        };
        own.push(OwnCgroup {
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            path: PathBuf::from(path),
        });
    }
    Ok(own)
}

/// The pure core of `Cgroup::resolve`: the texts of /proc/self/mountinfo and /proc/self/cgroup in,
/// the container's directory in every hierarchy out.
pub(super) fn resolve_layout(
    mountinfo: &str,
    proc_cgroup: &str,
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<Cgroup> {
    let default_path = PathBuf::from("hull").join(id);
    let requested = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => default_path.as_path(),
    };
    let (absolute, inner) = clean_cgroups_path(requested)?;
    Ok(Cgroup {
        hierarchies: hierarchies_at(mountinfo, proc_cgroup, absolute, &inner)?,
        created: Vec::new(),
        systemd: None,
    })
}

/// The directory `inner` in every hierarchy of this process: below each hierarchy's root when `absolute`, else below
/// this process's own cgroup (its parent on v2).
pub(super) fn hierarchies_at(
    mountinfo: &str,
    proc_cgroup: &str,
    absolute: bool,
    inner: &Path,
) -> Result<Vec<Hierarchy>> {
    let mounts = parse_mountinfo(mountinfo)?;
    let own = parse_proc_cgroup(proc_cgroup)?;
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    let mut outside = Vec::new();
    for mount in &mounts {
        // An absolute path starts at the hierarchy's root: only a mount of the root shows it.
        if absolute && mount.root != Path::new("/") {
            continue;
        }
        let Some(line) = own.iter().find(|o| matches_mount(o, mount)) else {
            continue;
        };
        let seen = |h: &Hierarchy| h.v2 == mount.v2 && h.controllers == line.controllers;
        if hierarchies.iter().any(seen) {
            continue;
        }
        let base = if absolute {
            mount.mountpoint.clone()
        } else {
            let Ok(own_rel) = line.path.strip_prefix(&mount.root) else {
                // A mount of another subtree of the hierarchy; a later mount may show ours.
                outside.push((mount, line));
                continue;
            };
            let start = match (mount.v2, own_rel.parent()) {
                (true, Some(parent)) => parent,
                _ => own_rel,
            };
            mount.mountpoint.join(start)
        };
        hierarchies.push(Hierarchy {
            mountpoint: mount.mountpoint.clone(),
            controllers: line.controllers.clone(),
            v2: mount.v2,
            // `join("")` would add a trailing slash.
            path: if inner.as_os_str().is_empty() {
                base
            } else {
                base.join(inner)
            },
        });
    }
    for (mount, line) in outside {
        let seen = |h: &Hierarchy| h.v2 == mount.v2 && h.controllers == line.controllers;
        if !hierarchies.iter().any(seen) {
            bail!(
                "own cgroup {} is outside the root {} of the cgroup mount at {}",
                line.path.display(),
                mount.root.display(),
                mount.mountpoint.display()
            );
        }
    }
    if hierarchies.is_empty() {
        bail!("no cgroup hierarchy of this process is mounted (see /proc/self/mountinfo)");
    }
    Ok(hierarchies)
}

/// Whether a /proc/self/cgroup line describes the hierarchy mounted by `mount`.
fn matches_mount(own: &OwnCgroup, mount: &CgroupMount) -> bool {
    if mount.v2 {
        return own.controllers.is_empty();
    }
    !own.controllers.is_empty()
        && own
            .controllers
            .iter()
            .all(|c| mount.super_options.contains(c))
}

/// Lexically cleans a cgroups path: returns whether it is absolute and its normal components.
fn clean_cgroups_path(path: &Path) -> Result<(bool, PathBuf)> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    let mut absolute = false;
    for component in path.components() {
        match component {
            Component::RootDir => absolute = true,
            Component::CurDir => {}
            Component::Normal(name) => parts.push(name),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    bail!(
                        "linux.cgroupsPath {:?} escapes its cgroup root with \"..\"",
                        path.display().to_string()
                    );
                }
            }
            Component::Prefix(_) => bail!("linux.cgroupsPath {:?} is invalid", path.display()),
        }
    }
    if parts.is_empty() {
        bail!(
            "linux.cgroupsPath {:?} names the cgroup it starts from, not a cgroup of its own",
            path.display().to_string()
        );
    }
    Ok((absolute, parts.iter().collect()))
}
