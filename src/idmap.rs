//! Id-mapped bind mounts: the `idmap`/`ridmap` options and `mounts[].uidMappings`/`gidMappings`, through
//! mount_setattr(2) `MOUNT_ATTR_IDMAP` (Linux 5.12). Only a process privileged over the filesystem's user namespace
//! may id-map a mount, so hull prepares each one as host root before it clones the init: a detached copy of the
//! source (open_tree `OPEN_TREE_CLONE`, with the mounts below it for `rbind`), id-mapped through a user namespace
//! that holds the mapping (every mount of the copy for `ridmap`). The init attaches the copy at the destination
//! with move_mount and applies the other options as for any bind mount. As in runc, a mount's own mappings win;
//! without them the container's user namespace gives the mapping (a joined one by its path).
//!
//! Unlike runc, which opens the source inside the container's mount namespace before `pivot_root`, hull opens it in
//! its own (the host's) before the clone: a source below another of the container's mounts is not seen.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use crate::{mountopts, namespaces, sys};

/// Whether `m` is an id-mapped mount: an `idmap`/`ridmap` option or mappings of its own.
pub fn is_idmapped(m: &Mount, opts: &mountopts::MountOptions) -> bool {
    opts.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some()
}

/// The detached trees hull prepared for the spec's bind mounts (id-mapped ones, and in a user namespace all), by
/// their index in `mounts`.
#[derive(Default)]
pub struct Trees {
    by_mount: Vec<(usize, OwnedFd)>,
}

impl Trees {
    /// The fds of the prepared trees.
    pub fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.by_mount.iter().map(|(_, fd)| fd.as_raw_fd())
    }

    /// The prepared tree of mount number `index`, if hull prepared one.
    pub fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.by_mount
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }
}

/// Prepare every id-mapped mount of `spec` (see the module doc); `bundle` anchors relative sources. The config has
/// been validated (`validate`), so each such mount is a bind mount with a mapping to use.
///
/// With `sources_for_user_namespace` (a container in a user namespace, made by a privileged hull), every other bind
/// mount's source is opened here too, as host root, and attached by the init like an id-mapped one: inside its user
/// namespace the init could not traverse a host directory only host root may enter (mode 0700), as runc 1.2+ also
/// opens these sources before the user namespace.
pub fn prepare(spec: &Spec, bundle: &Path, sources_for_user_namespace: bool) -> Result<Trees> {
    let mut trees = Trees::default();
    let mut user_namespaces: HashMap<String, OwnedFd> = HashMap::new();
    for (index, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        if !is_idmapped(m, &opts) {
            let bind = m.typ().as_deref() == Some("bind") || opts.is_bind();
            if sources_for_user_namespace && bind {
                let source = bind_source(m, bundle)?;
                let c_source = CString::new(source.as_os_str().as_bytes()).with_context(|| {
                    format!("mount source {} contains a NUL byte", source.display())
                })?;
                let tree = sys::open_tree_clone(
                    &c_source,
                    opts.flags.contains(nix::mount::MsFlags::MS_REC),
                )
                .with_context(|| format!("open bind mount source {}", source.display()))?;
                trees.by_mount.push((index, tree));
            }
            continue;
        }
        let source = bind_source(m, bundle)?;
        let c_source = CString::new(source.as_os_str().as_bytes())
            .with_context(|| format!("mount source {} contains a NUL byte", source.display()))?;
        let tree =
            sys::open_tree_clone(&c_source, opts.flags.contains(nix::mount::MsFlags::MS_REC))
                .with_context(|| format!("open_tree(OPEN_TREE_CLONE) {}", source.display()))?;
        let userns = match mapping_of(spec, m)? {
            Mapping::Path(path) => File::open(path)
                .map(OwnedFd::from)
                .with_context(|| format!("open user namespace {}", path.display()))?,
            Mapping::Ids(uids, gids) => {
                let key = format!(
                    "{}|{}",
                    namespaces::map_text(uids),
                    namespaces::map_text(gids)
                );
                match user_namespaces.get(&key) {
                    Some(fd) => fd.try_clone().context("duplicate a user namespace fd")?,
                    None => {
                        let fd = user_namespace_with(uids, gids).with_context(|| {
                            format!(
                                "create a user namespace for the id mapping of {}",
                                source.display()
                            )
                        })?;
                        user_namespaces.insert(
                            key,
                            fd.try_clone().context("duplicate a user namespace fd")?,
                        );
                        fd
                    }
                }
            }
        };
        let recursive = opts.idmap.unwrap_or(false);
        sys::set_idmap(tree.as_fd(), userns.as_fd(), recursive).map_err(|errno| {
            let hint = if errno == Errno::EINVAL {
                " (the filesystem may not support id-mapped mounts on this kernel)"
            } else {
                ""
            };
            anyhow::Error::new(errno).context(format!(
                "set MOUNT_ATTR_IDMAP on {}{hint}",
                source.display()
            ))
        })?;
        trees.by_mount.push((index, tree));
    }
    Ok(trees)
}

/// Check the id-mapped mounts of `spec` (runc's `checkIDMapMounts`): bind mounts only, both mappings or neither,
/// and without them a user namespace of the container to take the mapping from; not for a non-root hull.
pub fn validate(spec: &Spec) -> Result<()> {
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        if !is_idmapped(m, &opts) {
            continue;
        }
        let what = || format!("invalid mount on {}", m.destination().display());
        if !(opts.is_bind() || m.typ().as_deref() == Some("bind")) {
            bail!(
                "{}: id-mapped mounts are only supported for bind-mounts",
                what()
            );
        }
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "{}: id-mapped mounts are not supported for rootless containers",
                what()
            );
        }
        if let Mapping::Ids(uids, gids) = mapping_of(spec, m).with_context(what)? {
            namespaces::check_id_mappings("uidMappings", uids).with_context(what)?;
            namespaces::check_id_mappings("gidMappings", gids).with_context(what)?;
        }
    }
    Ok(())
}

/// Where an id-mapped mount's mapping comes from.
enum Mapping<'a> {
    /// The user namespace at this path (the container joins it).
    Path(&'a Path),
    Ids(&'a [LinuxIdMapping], &'a [LinuxIdMapping]),
}

fn mapping_of<'a>(spec: &'a Spec, m: &'a Mount) -> Result<Mapping<'a>> {
    const BOTH: &str = "id-mapped mounts must have both uid and gid mappings specified";
    match (m.uid_mappings().as_deref(), m.gid_mappings().as_deref()) {
        (Some(uids), Some(gids)) if !uids.is_empty() && !gids.is_empty() => {
            return Ok(Mapping::Ids(uids, gids))
        }
        (None, None) => {}
        _ => bail!(BOTH),
    }
    let user_ns = namespaces::configured(spec)
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::User);
    match user_ns {
        Some(ns) => match ns.path() {
            Some(path) => Ok(Mapping::Path(path)),
            None => {
                let linux = spec.linux().as_ref().context(BOTH)?;
                match (
                    linux.uid_mappings().as_deref(),
                    linux.gid_mappings().as_deref(),
                ) {
                    (Some(uids), Some(gids)) if !uids.is_empty() && !gids.is_empty() => {
                        Ok(Mapping::Ids(uids, gids))
                    }
                    _ => bail!(BOTH),
                }
            }
        },
        None => bail!("{BOTH} (the container has no user namespace to take them from)"),
    }
}

/// A bind mount's source: absolute, or relative to the bundle (as the init resolves it).
pub fn bind_source(m: &Mount, bundle: &Path) -> Result<std::path::PathBuf> {
    let src = m.source().as_ref().context("bind mount without a source")?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    })
}

/// A user namespace holding `uids` and `gids`: a child is cloned into a new one, hull writes its maps, opens its
/// `ns/user` and kills it (the namespace lives on through the fd).
fn user_namespace_with(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    match sys::clone_fork(CloneFlags::CLONE_NEWUSER.bits())
        .context("clone into a new user namespace")?
    {
        sys::Forked::Child => {
            // Killed by hull once it has the namespace; if hull dies first, by the kernel.
            let _ = sys::set_parent_death_signal(libc::SIGKILL);
            loop {
                // SAFETY: pause(2) has no preconditions; it returns only when a handled signal arrives.
                unsafe { libc::pause() };
            }
        }
        sys::Forked::Parent(pid) => {
            let result = namespaces::write_maps(pid, uids, gids).and_then(|()| {
                let path = format!("/proc/{pid}/ns/user");
                File::open(&path)
                    .map(OwnedFd::from)
                    .with_context(|| format!("open {path}"))
            });
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            result
        }
    }
}
