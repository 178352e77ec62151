//! The container's filesystem view, built inside its new mount namespace: root propagation, every `mounts[]` entry,
//! `/dev` (default and configured devices, symlinks, ptmx), `pivot_root` (or `MS_MOVE` + chroot with `--no-pivot`,
//! or a chroot alone in hull's mount namespace when the container has none of its own), then read-only root, `readonlyPaths` and `maskedPaths`. Every path inside the rootfs is resolved in-root through
//! fds (see `inroot`); mount(2) is always aimed at `/proc/self/fd/N`, never at a re-resolved path string.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, makedev, mknodat, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{
    chdir, chroot, fchdir, fchownat, pivot_root, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags,
};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::cgroups::{Cgroup, Hierarchy};
use crate::inroot::{self, fd_path, RESOLVE_NO_SYMLINKS};
use crate::mountopts::{self, MountOptions};
use crate::{copyup, idmap, logger, lsm, mountinfo, sys};

/// What the rootfs setup needs to know besides the spec.
pub struct Rootfs<'a> {
    pub spec: &'a Spec,
    pub path: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: &'a Cgroup,
    /// For a container without a cgroup (`cgroup` has no hierarchy): the host's hierarchies, shown read-only at a
    /// cgroup mount.
    pub host_cgroups: &'a [Hierarchy],
    /// Devices are bind-mounted from the host instead of made with mknod, which needs CAP_MKNOD in the initial user
    /// namespace: the container has a user namespace of its own, or hull is rootless (runc's rule).
    pub bind_devices: bool,
    pub cgroup_ns: bool,
    /// Whether the container has a mount namespace of its own. Without one, everything is mounted into hull's (see
    /// `hostmounts`), hull's propagation is left as it is, and the root is entered with chroot, as runc does.
    pub mount_ns: bool,
    pub no_pivot: bool,
    /// The SELinux label of the container's filesystem mounts (`linux.mountLabel`, when the host has SELinux).
    pub mount_label: Option<&'a str>,
    /// Called before the first cgroup mount: the process must be in its cgroups (and cgroup namespace) by then.
    pub before_cgroup_mount: &'a dyn Fn() -> Result<()>,
    /// The bind mounts hull prepared as host root: the id-mapped ones, and in a user namespace all (see `idmap`).
    pub idmapped: &'a idmap::Trees,
    /// Called once the mounts, devices and cwd are in place, just before `pivot_root`: the create-time hooks.
    pub before_pivot: &'a dyn Fn() -> Result<()>,
}

const NO_FOLLOW_PATH: OFlag = OFlag::O_PATH.union(OFlag::O_NOFOLLOW);

/// Devices every container gets (runc's default device list): path, major, minor.
pub const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

struct Device {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Mount flags that the kernel locks on a bind mount (and that a remount must therefore repeat).
fn current_flags(fd: BorrowedFd<'_>) -> Result<MsFlags> {
    let st = fstatvfs(fd).context("statvfs mount")?;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    Ok(out)
}

/// Remount a bind mount with `wanted` flags, keeping the locked flags it already has unless explicitly cleared.
fn remount_bind(fd: &OwnedFd, wanted: MsFlags, cleared: MsFlags, what: &str) -> Result<()> {
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    let mut keep = current_flags(fd.as_fd())? & !cleared & !MsFlags::MS_RDONLY;
    if wanted.intersects(atime) {
        keep &= !atime;
    }
    // `difference`, not `& !`: the complement of nix's flags drops bits nix does not name (MS_NOSYMFOLLOW).
    let flags = wanted.difference(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
        | keep
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND;
    mount(
        None::<&str>,
        fd_path(fd).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .with_context(|| format!("remount {what} with {flags:?}"))
}

impl Rootfs<'_> {
    fn root_fd(&self) -> Result<File> {
        File::open(self.path).with_context(|| format!("open rootfs {}", self.path.display()))
    }

    /// Everything before the switch of root, then `pivot_root` (or the chroot of a container without a mount namespace).
    pub fn prepare_and_pivot(&self) -> Result<()> {
        let linux = self.spec.linux().as_ref();
        let propagation = linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .filter(|p| !p.is_empty())
            .and_then(mountopts::propagation_flag);
        if self.mount_ns {
            let root_flag = propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
            mount(None::<&str>, "/", None::<&str>, root_flag, None::<&str>)
                .with_context(|| format!("set propagation {root_flag:?} on /"))?;
            // Unless / is now a slave (the default), the rootfs' parent mount may be shared (pivot_root fails, the
            // bind below would propagate to the host) or unbindable (the bind fails): make it private, as runc's
            // `rootfsParentMountPropagation` does.
            if propagation.is_some_and(|p| !p.contains(MsFlags::MS_SLAVE)) {
                self.make_parent_mount_private()?;
            }
        }
        mount(
            Some(self.path),
            self.path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("bind mount rootfs {} onto itself", self.path.display()))?;
        let root = self.root_fd()?;

        let mounts = self.spec.mounts().as_deref().unwrap_or(&[]);
        for (index, m) in mounts.iter().enumerate() {
            self.mount_entry(root.as_fd(), index, m).with_context(|| {
                format!("mount {} on {}", source_text(m), m.destination().display())
            })?;
        }
        if needs_dev_setup(mounts) {
            self.create_devices(root.as_fd())?;
            create_dev_links(root.as_fd())?;
        }
        if let Some(process) = self.spec.process() {
            inroot::mkdir_all(root.as_fd(), process.cwd(), 0o755)
                .with_context(|| format!("create cwd {}", process.cwd().display()))?;
        }
        drop(root);
        (self.before_pivot)()?;
        if !self.mount_ns {
            self.change_root()
        } else if self.no_pivot {
            self.move_root()
        } else {
            self.pivot()
        }?;
        if let Some(flag) = propagation {
            mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
                .with_context(|| format!("set rootfsPropagation {flag:?} on /"))?;
        }
        Ok(())
    }

    /// pivot_root needs the rootfs' parent mount not to be shared, and the rootfs bind needs it not to be unbindable.
    fn make_parent_mount_private(&self) -> Result<()> {
        let parent = mountinfo::read()?
            .into_iter()
            .map(|m| m.mountpoint)
            .filter(|mp| self.path.starts_with(mp))
            .max_by_key(|mp| mp.as_os_str().len())
            .unwrap_or_else(|| PathBuf::from("/"));
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_context(|| format!("make {} private", parent.display()))
    }

    fn mount_entry(&self, root: BorrowedFd<'_>, index: usize, m: &Mount) -> Result<()> {
        let dest = m.destination();
        if inroot::clean(dest).as_os_str().is_empty() {
            bail!("invalid mount destination {:?}", dest);
        }
        let typ = m.typ().as_deref().unwrap_or("");
        let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        let bind = typ == "bind" || opts.is_bind();
        check_proc_mount(&inroot::clean(dest), !bind && typ == "proc", || {
            bind && self.bind_source_is_procfs(m)
        })?;
        if bind {
            return self.bind_mount(root, m, &opts, self.idmapped.get(index));
        }
        if typ == "cgroup" || typ == "cgroup2" {
            return self.mount_cgroup(root, dest, &opts);
        }
        // proc, sysfs and /dev must sit on real directories, not on symlinks even inside the rootfs
        // (CVE-2023-27561, CVE-2026-41579): refused before anything is created along the symlink.
        let extra = if matches!(typ, "proc" | "sysfs") || inroot::clean(dest) == Path::new("dev") {
            RESOLVE_NO_SYMLINKS
        } else {
            0
        };
        if extra != 0 {
            // runc's words for a procfs or sysfs destination that is not a directory lead, hull's detail follows.
            let lead = if matches!(typ, "proc" | "sysfs") {
                format!("filesystem {typ:?} must be mounted on ordinary directory: ")
            } else {
                String::new()
            };
            match inroot::open(root, dest, OFlag::O_PATH, extra) {
                Err(Errno::ELOOP) => {
                    bail!("{lead}mount destination {} is a symlink", dest.display())
                }
                Ok(fd)
                    if !fstat(&fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) =>
                {
                    bail!(
                        "{lead}mount destination {} is not a directory",
                        dest.display()
                    )
                }
                _ => {}
            }
        }
        let covered_mode = if typ == "tmpfs" {
            existing_dir_mode(root, dest)?
        } else {
            None
        };
        inroot::mkdir_all(root, dest, 0o755)?;
        let target = open_dest(root, dest, extra)?;
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_owned());
        let data = match covered_mode {
            Some(mode) => tmpfs_data_with_mode(&opts.data, mode),
            None => opts.data_string(),
        };
        let data = if matches!(typ, "proc" | "sysfs" | "mqueue") {
            data
        } else {
            lsm::with_mount_label(&data, self.mount_label)
        };
        let copy_up = opts.copy_up && typ == "tmpfs" && covered_mode.is_some();
        // A read-only tmpfs is mounted writable and made read-only once everything in it is in place (after the
        // pivot, see `make_tmpfs_readonly`), as runc's `finalizeRootfs` does: a copied-up one is filled first, a
        // read-only /dev gets its sub-mounts and device nodes.
        let flags = if typ == "tmpfs" {
            opts.flags - MsFlags::MS_RDONLY
        } else {
            opts.flags
        };
        let result = mount(
            Some(source.as_str()),
            fd_path(&target).as_str(),
            Some(typ),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        match result {
            Ok(()) => {}
            // Without a network namespace of its own (or in a user namespace) sysfs cannot be mounted: bind the host's.
            Err(Errno::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    fd_path(&target).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .context("bind /sys (sysfs mount not permitted)")?;
                let mounted = open_dest(root, dest, extra)?;
                remount_bind(&mounted, opts.flags, opts.cleared, "/sys")?;
            }
            Err(e) => return Err(e.into()),
        }
        let mounted = open_dest(root, dest, extra)?;
        if copy_up {
            copyup::copy_tree(target.as_fd(), mounted.as_fd(), &dest.display().to_string())?;
        }
        apply_after_mount(&mounted, &opts)
    }

    /// A bind mount's source on the host: absolute, or relative to the bundle.
    fn bind_source(&self, m: &Mount) -> Result<PathBuf> {
        idmap::bind_source(m, self.bundle)
    }

    fn bind_source_is_procfs(&self, m: &Mount) -> bool {
        self.bind_source(m)
            .ok()
            .and_then(|src| nix::sys::statfs::statfs(&src).ok())
            .is_some_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
    }

    /// A bind mount; `idmapped` is the tree hull prepared for it, if any (attached instead of binding the source).
    fn bind_mount(
        &self,
        root: BorrowedFd<'_>,
        m: &Mount,
        opts: &MountOptions,
        idmapped: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let src = self.bind_source(m)?;
        let source = match idmapped {
            Some(tree) => tree
                .try_clone_to_owned()
                .context("duplicate a prepared bind mount tree")?,
            None => open_path_only(&src)
                .with_context(|| format!("open bind mount source {}", src.display()))?
                .into(),
        };
        let is_dir = fstat(&source)
            .with_context(|| format!("stat {}", src.display()))
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)?;
        let dest = m.destination();
        if is_dir {
            inroot::mkdir_all(root, dest, 0o755)?;
        } else {
            inroot::ensure_file(root, dest)?;
        }
        let target = open_dest(root, dest, 0)?;
        if idmapped.is_some() {
            sys::move_mount_onto(source.as_fd(), target.as_fd()).with_context(|| {
                format!("attach the prepared {} with move_mount", src.display())
            })?;
        } else {
            let flags = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            mount(
                Some(fd_path(&source).as_str()),
                fd_path(&target).as_str(),
                None::<&str>,
                flags | MsFlags::MS_BIND,
                None::<&str>,
            )?;
        }
        let mounted = open_dest(root, dest, 0)?;
        if !opts
            .flags
            .difference(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
            .is_empty()
        {
            remount_bind(
                &mounted,
                opts.flags,
                opts.cleared,
                &dest.display().to_string(),
            )?;
        }
        apply_after_mount(&mounted, opts)
    }

    /// `/sys/fs/cgroup`: with a cgroup namespace the hierarchies are mounted natively (they show the container's
    /// cgroup as their root); without one, the container's own cgroup directories are bind-mounted.
    fn mount_cgroup(&self, root: BorrowedFd<'_>, dest: &Path, opts: &MountOptions) -> Result<()> {
        (self.before_cgroup_mount)()?;
        let (hierarchies, flags) = if self.cgroup.hierarchies().is_empty() {
            (self.host_cgroups, opts.flags | MsFlags::MS_RDONLY)
        } else {
            (self.cgroup.hierarchies(), opts.flags)
        };
        let cleared = opts.cleared;
        inroot::mkdir_all(root, dest, 0o755)?;
        if let [hierarchy] = hierarchies {
            if hierarchy.v2 {
                return self.mount_unified(root, dest, hierarchy, flags, cleared);
            }
        }
        // cgroup v1 (or hybrid): a tmpfs holding one directory per hierarchy, made read-only at the end if asked.
        let target = open_dest(root, dest, 0)?;
        let tmpfs_flags = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        mount(
            Some("tmpfs"),
            fd_path(&target).as_str(),
            Some("tmpfs"),
            tmpfs_flags,
            Some("mode=755"),
        )
        .context("mount tmpfs for cgroup hierarchies")?;
        // The fresh tmpfs holds nothing but what is made here, so its directories are made and opened relative to
        // it, without resolving the destination again for each hierarchy.
        let tmpfs = open_dest(root, dest, 0)?;
        for hierarchy in hierarchies {
            let name = hierarchy
                .mountpoint
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "unified".to_owned());
            let sub = dest.join(&name);
            nix::sys::stat::mkdirat(
                tmpfs.as_fd(),
                name.as_str(),
                Mode::from_bits_truncate(0o755),
            )
            .with_context(|| format!("mkdir {}", sub.display()))?;
            let sub_fd = nix::fcntl::openat(
                tmpfs.as_fd(),
                name.as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", sub.display()))?;
            let result: Result<()> = if self.cgroup_ns {
                let (fstype, data) = if hierarchy.v2 {
                    ("cgroup2", String::new())
                } else {
                    ("cgroup", hierarchy.controllers.join(","))
                };
                mount(
                    Some(fstype),
                    fd_path(&sub_fd).as_str(),
                    Some(fstype),
                    flags,
                    (!data.is_empty()).then_some(data.as_str()),
                )
                .map_err(Into::into)
            } else {
                mount(
                    Some(&hierarchy.path),
                    fd_path(&sub_fd).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(anyhow::Error::from)
                .and_then(|()| remount_bind(&open_dest(root, &sub, 0)?, flags, cleared, &name))
            };
            result
                .with_context(|| format!("mount cgroup hierarchy {name} on {}", sub.display()))?;
        }
        if flags.contains(MsFlags::MS_RDONLY) {
            mount(
                None::<&str>,
                fd_path(&tmpfs).as_str(),
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
                Some("mode=755"),
            )
            .context("remount cgroup tmpfs read-only")?;
        }
        Ok(())
    }

    /// cgroup v2 only: a fresh cgroup2 mount in the container's cgroup namespace, else a bind of `hierarchy`'s
    /// directory (the container's cgroup, or the host's root for a container without one).
    fn mount_unified(
        &self,
        root: BorrowedFd<'_>,
        dest: &Path,
        hierarchy: &Hierarchy,
        flags: MsFlags,
        cleared: MsFlags,
    ) -> Result<()> {
        let target = open_dest(root, dest, 0)?;
        if self.cgroup_ns {
            // In a user namespace the kernel may refuse a cgroup2 mount (EPERM, or EBUSY for a superblock the
            // namespace does not own); as runc, the container's own cgroup is bind-mounted instead, which
            // shows what the namespace would.
            match mount(
                Some("cgroup2"),
                fd_path(&target).as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            ) {
                Ok(()) => return Ok(()),
                Err(e @ (Errno::EPERM | Errno::EBUSY)) => logger::debug(format!(
                    "mount cgroup2 on {}: {e}; bind-mounting {} instead",
                    dest.display(),
                    hierarchy.path.display()
                )),
                Err(e) => return Err(e.into()),
            }
        }
        mount(
            Some(&hierarchy.path),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        let mounted = open_dest(root, dest, 0)?;
        remount_bind(&mounted, flags, cleared, &dest.display().to_string())
    }

    fn devices(&self) -> Vec<Device> {
        let mut list: Vec<Device> = DEFAULT_DEVICES
            .iter()
            .map(|&(path, major, minor)| Device {
                path: PathBuf::from(path),
                kind: SFlag::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            })
            .collect();
        let configured = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_deref())
            .unwrap_or(&[]);
        for d in configured {
            list.retain(|existing| existing.path != *d.path());
            list.push(Device {
                path: d.path().clone(),
                kind: match d.typ() {
                    LinuxDeviceType::B => SFlag::S_IFBLK,
                    LinuxDeviceType::P => SFlag::S_IFIFO,
                    _ => SFlag::S_IFCHR,
                },
                major: d.major() as u64,
                minor: d.minor() as u64,
                mode: d.file_mode().unwrap_or(0o666),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            });
        }
        list
    }

    /// mknod each device (in a user namespace mknod is not allowed: bind-mount the host's node instead).
    fn create_devices(&self, root: BorrowedFd<'_>) -> Result<()> {
        for dev in self.devices() {
            let parent = dev.path.parent().unwrap_or(Path::new("/dev"));
            let name = dev.path.file_name().context("device path without a name")?;
            let parent_fd = inroot::mkdir_all(root, parent, 0o755)
                .with_context(|| format!("create device directory {}", parent.display()))?;
            if self.bind_devices {
                let host = open_path_only(&dev.path)
                    .with_context(|| format!("open host device {}", dev.path.display()))?;
                let target = inroot::ensure_file(root, &dev.path)?;
                mount(
                    Some(fd_path(&host).as_str()),
                    fd_path(&target).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .with_context(|| format!("bind device {}", dev.path.display()))?;
                continue;
            }
            mknodat(
                parent_fd.as_fd(),
                name,
                dev.kind,
                Mode::from_bits_truncate(dev.mode),
                makedev(dev.major, dev.minor),
            )
            .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
            .with_context(|| format!("mknod {}", dev.path.display()))?;
            fchownat(
                parent_fd.as_fd(),
                name,
                Some(Uid::from_raw(dev.uid)),
                Some(Gid::from_raw(dev.gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(|| format!("chown {}", dev.path.display()))?;
        }
        Ok(())
    }

    fn pivot(&self) -> Result<()> {
        let old_root = File::open("/").context("open old root")?;
        let new_root = self.root_fd()?;
        fchdir(&new_root).context("chdir into rootfs")?;
        pivot_root(".", ".").with_context(|| format!("pivot_root into {}", self.path.display()))?;
        // The old root is now mounted on top of the new one; make it a slave so the unmount does not propagate to
        // the host, then detach it.
        fchdir(&old_root).context("chdir into old root")?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("make old root a slave")?;
        umount2(".", MntFlags::MNT_DETACH).context("unmount old root")?;
        chdir("/").context("chdir /")?;
        Ok(())
    }

    /// Without a mount namespace of its own: chroot into the rootfs bind, in hull's mount namespace (runc's `chroot`).
    fn change_root(&self) -> Result<()> {
        fchdir(&self.root_fd()?).context("chdir into rootfs")?;
        chroot(".").with_context(|| format!("chroot into {}", self.path.display()))?;
        chdir("/").context("chdir /")
    }

    /// `--no-pivot`: move the rootfs mount onto / and chroot into it (for roots on ramfs, where pivot_root fails).
    /// The old root stays in the mount namespace, below the chroot: first its procfs and sysfs mounts are taken away
    /// (covered with a tmpfs where they cannot be unmounted), as runc's `msMoveRoot` does. Otherwise the kernel, which
    /// lets a user namespace mount a fresh procfs or sysfs only where one is already fully visible in its mount
    /// namespace, would let a nested user namespace mount an unmasked /proc beside the container's masked one.
    fn move_root(&self) -> Result<()> {
        for mount_point in host_proc_and_sys(&mountinfo::read()?, self.path) {
            hide_mount(&mount_point)?;
        }
        chdir(self.path).with_context(|| format!("chdir {}", self.path.display()))?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .context("move rootfs onto /")?;
        chroot(".").context("chroot into rootfs")?;
        chdir("/").context("chdir /")?;
        Ok(())
    }

    /// After pivot, when hull made `/dev`: a standard stream that is a null device (the host's /dev/null, given by
    /// the caller) is replaced by the container's own /dev/null, as runc's `reOpenDevNull` does, so that the container
    /// holds no file of the host's mounts there (CRIU cannot dump one).
    pub fn reopen_dev_null(&self) -> Result<()> {
        if !needs_dev_setup(self.spec.mounts().as_deref().unwrap_or(&[])) {
            return Ok(());
        }
        let null_streams: Vec<RawFd> = (0..3)
            .filter(|&stream| {
                // SAFETY: fstat on a descriptor number; a closed one fails with EBADF and is left alone.
                fstat(unsafe { BorrowedFd::borrow_raw(stream) }).is_ok_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
                        && st.st_rdev == makedev(1, 3)
                })
            })
            .collect();
        if null_streams.is_empty() {
            return Ok(());
        }
        let root = File::open("/").context("open /")?;
        let verified = verified_dev_null(root.as_fd())?;
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(fd_path(&verified))
            .context("reopen /dev/null")?;
        for stream in null_streams {
            // SAFETY: dup3 onto a standard stream number this process owns; `null` stays open for the call.
            let ret = unsafe { libc::dup3(null.as_raw_fd(), stream, 0) };
            Errno::result(ret).with_context(|| format!("reopen /dev/null as fd {stream}"))?;
        }
        Ok(())
    }

    /// After pivot, before `root.readonly`: the tmpfs mounts the config wants read-only, mounted writable so far
    /// (see `mount_entry`), are remounted read-only with their other flags.
    pub fn make_tmpfs_readonly(&self) -> Result<()> {
        let mounts = self.spec.mounts().as_deref().unwrap_or(&[]);
        let read_only_tmpfs = mounts
            .iter()
            .filter(|m| m.typ().as_deref() == Some("tmpfs"))
            .filter_map(|m| {
                let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
                opts.flags
                    .contains(MsFlags::MS_RDONLY)
                    .then_some((m.destination(), opts.flags))
            });
        let mut root = None;
        for (dest, flags) in read_only_tmpfs {
            let root = match &root {
                Some(root) => root,
                None => root.insert(File::open("/").context("open /")?),
            };
            let mounted = open_dest(root.as_fd(), dest, 0)?;
            mount(
                None::<&str>,
                fd_path(&mounted).as_str(),
                None::<&str>,
                flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .with_context(|| format!("remount tmpfs {} read-only", dest.display()))?;
        }
        Ok(())
    }

    /// After pivot: `root.readonly`.
    pub fn make_root_readonly(&self) -> Result<()> {
        if !self
            .spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly().unwrap_or(false))
        {
            return Ok(());
        }
        let root = File::open("/").context("open /")?;
        let fd: OwnedFd = root.into();
        remount_bind(&fd, MsFlags::MS_RDONLY, MsFlags::empty(), "/")
    }

    /// After pivot and sysctl: `readonlyPaths`, bind-mounted onto themselves and remounted read-only.
    pub fn apply_readonly_paths(&self) -> Result<()> {
        let root = File::open("/").context("open /")?;
        let paths = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[]);
        for path in paths {
            let Some(fd) = open_existing(root.as_fd(), Path::new(path))? else {
                continue;
            };
            mount(
                Some(fd_path(&fd).as_str()),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind readonly path {path}"))?;
            let mounted = open_dest(root.as_fd(), Path::new(path), 0)?;
            remount_bind(&mounted, MsFlags::MS_RDONLY, MsFlags::empty(), path)?;
        }
        Ok(())
    }

    /// After pivot: `maskedPaths`; directories get a read-only tmpfs, files the container's `/dev/null`, verified to
    /// really be the null device before it is mounted (CVE-2025-31133).
    pub fn apply_masked_paths(&self) -> Result<()> {
        let paths = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[]);
        if paths.is_empty() {
            return Ok(());
        }
        let root = File::open("/").context("open /")?;
        let mut dev_null: Option<OwnedFd> = None;
        for path in paths {
            // Never through a symlink: masking its target would mount over whatever the image points it at, such
            // as a volume's host file (CVE-2025-31133).
            let fd = match inroot::open(
                root.as_fd(),
                Path::new(path),
                OFlag::O_PATH,
                RESOLVE_NO_SYMLINKS,
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(Errno::ELOOP) => bail!("masked path {path} is a symlink"),
                Err(e) => return Err(e).with_context(|| format!("open masked path {path}")),
            };
            let st = fstat(&fd).with_context(|| format!("stat masked path {path}"))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                mount(
                    Some("tmpfs"),
                    fd_path(&fd).as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .with_context(|| format!("mask directory {path}"))?;
                continue;
            }
            let null = match &dev_null {
                Some(null) => null,
                None => dev_null.insert(verified_dev_null(root.as_fd())?),
            };
            mount(
                Some(fd_path(null).as_str()),
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .with_context(|| format!("mask file {path}"))?;
        }
        Ok(())
    }
}

/// The path of a bind source as the error message shows it.
/// The entries lxcfs emulates: the only places under /proc a mount may go (runc's `checkProcMount`).
const LXCFS_PROC_ENTRIES: [&str; 10] = [
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "net/dev",
    "sys/kernel/ns_last_pid",
];

/// runc's `checkProcMount` (CVE-2019-16884): at /proc only a fresh procfs or a bind of procfs; below /proc only the
/// entries lxcfs emulates. `dest` is the cleaned destination relative to the root.
fn check_proc_mount(
    dest: &Path,
    fresh_proc: bool,
    bind_from_procfs: impl FnOnce() -> bool,
) -> Result<()> {
    let Ok(rest) = dest.strip_prefix("proc") else {
        return Ok(());
    };
    let shown = Path::new("/").join(dest);
    if rest.as_os_str().is_empty() {
        if fresh_proc || bind_from_procfs() {
            return Ok(());
        }
        bail!("{shown:?} cannot be mounted because it is not of type proc");
    }
    if LXCFS_PROC_ENTRIES
        .iter()
        .any(|entry| rest == Path::new(entry))
    {
        return Ok(());
    }
    bail!("{shown:?} cannot be mounted because it is inside /proc")
}

fn source_text(m: &Mount) -> String {
    m.source()
        .as_ref()
        .map(|s| s.display().to_string())
        .or_else(|| m.typ().clone())
        .unwrap_or_default()
}

/// runc sets up /dev itself when the config mounts something at /dev that is not a bind of the host's /dev.
fn needs_dev_setup(mounts: &[Mount]) -> bool {
    mounts.iter().any(|m| {
        inroot::clean(m.destination()) == Path::new("dev")
            && m.typ().as_deref() != Some("bind")
            && !m
                .options()
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|o| o == "bind" || o == "rbind")
    })
}

fn open_dest(root: BorrowedFd<'_>, dest: &Path, extra: u64) -> Result<OwnedFd> {
    inroot::open(root, dest, OFlag::O_PATH, extra).map_err(|e| match e {
        Errno::ELOOP if extra & RESOLVE_NO_SYMLINKS != 0 => {
            anyhow::anyhow!("mount destination {} is a symlink", dest.display())
        }
        e => anyhow::Error::new(e).context(format!("open mount destination {}", dest.display())),
    })
}

fn open_existing(root: BorrowedFd<'_>, path: &Path) -> Result<Option<OwnedFd>> {
    match inroot::open(root, path, OFlag::O_PATH, 0) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {}", path.display())),
    }
}

fn verified_dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let fd = inroot::open(
        root,
        Path::new("/dev/null"),
        NO_FOLLOW_PATH,
        RESOLVE_NO_SYMLINKS,
    )
    .context("open /dev/null")?;
    let st = fstat(&fd).context("stat /dev/null")?;
    let is_char = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_char || st.st_rdev != makedev(1, 3) {
        bail!("/dev/null in the container is not the null device (1:3)");
    }
    Ok(fd)
}

/// The permission bits of the directory at `dest`, when there is one before hull creates anything: a tmpfs mounted
/// over it keeps them unless its options say `mode=` (runc since 1.1.8, crun since 1.12; runc#3911).
fn existing_dir_mode(root: BorrowedFd<'_>, dest: &Path) -> Result<Option<u32>> {
    match inroot::open(root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY, 0) {
        Ok(dir) => {
            let st = fstat(&dir).with_context(|| format!("stat {}", dest.display()))?;
            Ok(Some(st.st_mode & 0o7777))
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {}", dest.display())),
    }
}

/// A tmpfs's data with the covered directory's mode first, so that a `mode=` of its own options wins.
fn tmpfs_data_with_mode(data: &[String], mode: u32) -> String {
    std::iter::once(format!("mode={mode:o}"))
        .chain(data.iter().cloned())
        .collect::<Vec<_>>()
        .join(",")
}

/// Propagation changes and recursive attributes (`rro`, ...) on a fresh mount.
fn apply_after_mount(mounted: &OwnedFd, opts: &MountOptions) -> Result<()> {
    for flag in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(mounted).as_str(),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .with_context(|| format!("set propagation {flag:?}"))?;
    }
    if opts.recursive_set != 0 || opts.recursive_clear != 0 {
        sys::mount_setattr(
            mounted.as_fd(),
            true,
            opts.recursive_set,
            opts.recursive_clear,
        )
        .context("set recursive mount attributes")?;
    }
    Ok(())
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/core` and `/dev/ptmx → pts/ptmx`.
fn create_dev_links(root: BorrowedFd<'_>) -> Result<()> {
    let dev = inroot::open(
        root,
        Path::new("/dev"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        RESOLVE_NO_SYMLINKS,
    )
    .context("open /dev in the container")?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name}")),
        }
    }
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).context("remove /dev/ptmx"),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").context("symlink /dev/ptmx")?;
    Ok(())
}

/// Open a host path with `O_PATH`: it is only ever mounted from, never read.
fn open_path_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
}

/// The whole procfs and sysfs mounts outside the rootfs (bind mounts of a part of one, and those the container's own
/// mounts made inside the rootfs, are left alone), as runc's `msMoveRoot` picks them.
fn host_proc_and_sys(mounts: &[mountinfo::Mount], rootfs: &Path) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| {
            matches!(m.fstype.as_str(), "proc" | "sysfs")
                && m.root == Path::new("/")
                && !m.mountpoint.starts_with(rootfs)
        })
        .map(|m| m.mountpoint.clone())
        .collect()
}

/// Takes a host mount out of the container's mount namespace: made a slave first so that the unmount cannot reach the
/// host, then detached; where it cannot be unmounted (locked in a user namespace), covered with an empty tmpfs. A
/// mount point already gone with an earlier, enclosing mount is skipped.
fn hide_mount(mount_point: &Path) -> Result<()> {
    match mount(
        None::<&str>,
        mount_point,
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(Errno::ENOENT) => return Ok(()),
        result => result.with_context(|| format!("make {} a slave", mount_point.display()))?,
    }
    match umount2(mount_point, MntFlags::MNT_DETACH) {
        Err(Errno::EINVAL | Errno::EPERM) => mount(
            Some("tmpfs"),
            mount_point,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .with_context(|| format!("cover {} with a tmpfs", mount_point.display())),
        result => result.with_context(|| format!("unmount {}", mount_point.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount_at(dest: &str, typ: Option<&str>, options: &[&str]) -> Mount {
        let mut v = serde_json::json!({"destination": dest, "options": options});
        if let Some(t) = typ {
            v["type"] = t.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn no_pivot_hides_whole_proc_and_sys_mounts_outside_the_rootfs() {
        let mounts = mountinfo::parse(
            "22 1 0:21 / /proc rw - proc proc rw\n\
             23 1 0:22 / /sys rw - sysfs sysfs rw\n\
             24 23 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
             25 1 0:21 /sys /mnt/procsys rw - proc proc rw\n\
             26 1 0:24 / /run/c/rootfs/proc rw - proc proc rw\n\
             27 1 0:25 / /run/c/rootfs/sys ro - sysfs sysfs ro\n",
        )
        .unwrap();
        assert_eq!(
            host_proc_and_sys(&mounts, Path::new("/run/c/rootfs")),
            [Path::new("/proc"), Path::new("/sys")]
        );
    }

    #[test]
    fn a_tmpfs_takes_the_covered_mode_unless_it_names_one() {
        let data = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(tmpfs_data_with_mode(&data(&[]), 0o755), "mode=755");
        assert_eq!(
            tmpfs_data_with_mode(&data(&["size=1m", "mode=1770"]), 0o1777),
            "mode=1777,size=1m,mode=1770"
        );
    }

    #[test]
    fn proc_mounts_are_checked_as_runc_does() {
        let check = |dest: &str, fresh: bool, procfs_bind: bool| {
            check_proc_mount(Path::new(dest), fresh, || procfs_bind).map_err(|e| e.to_string())
        };
        assert_eq!(check("proc", true, false), Ok(()));
        assert_eq!(check("proc", false, true), Ok(()), "a bind of procfs");
        assert_eq!(
            check("proc", false, false),
            Err("\"/proc\" cannot be mounted because it is not of type proc".to_owned())
        );
        assert_eq!(check("proc/cpuinfo", false, false), Ok(()), "lxcfs");
        assert_eq!(check("proc/sys/kernel/ns_last_pid", false, false), Ok(()));
        assert_eq!(
            check("proc/sys/kernel/core_pattern", false, false),
            Err(
                "\"/proc/sys/kernel/core_pattern\" cannot be mounted because it is inside /proc"
                    .to_owned()
            )
        );
        assert_eq!(check("procfs", false, false), Ok(()), "not /proc");
        assert_eq!(check("data/proc", false, false), Ok(()));
    }

    #[test]
    fn dev_setup_follows_runc() {
        assert!(needs_dev_setup(&[mount_at(
            "/dev",
            Some("tmpfs"),
            &["mode=755"]
        )]));
        assert!(!needs_dev_setup(&[mount_at(
            "/dev",
            Some("bind"),
            &["rbind"]
        )]));
        assert!(!needs_dev_setup(&[mount_at("/dev", None, &["rbind"])]));
        assert!(!needs_dev_setup(&[mount_at("/proc", Some("proc"), &[])]));
    }
}
