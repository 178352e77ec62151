//! The rootfs setup as data: what [`super::Rootfs`] will do, computed from the spec and the few facts it needs about
//! the host and the container's namespaces, passed in as plain values. Planning touches no filesystem, so every rule
//! (mount flags and data, the SELinux mount label, bind or recursive bind, the remount after a bind, tmpfs copy-up,
//! the symlink and destination policy, the cgroup mount's form, the fallbacks) is unit-tested without mounting. What
//! only the rootfs can tell at the time of the mount (whether a directory is already there, the kind of a bind
//! source) is left to the executor, as the plan says.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::cgroups::Hierarchy;
use crate::mountopts::{self, MountOptions};
use crate::{idmap, inroot, lsm};

/// What the plan depends on besides the spec.
pub struct Facts<'a> {
    /// Where relative bind sources start (the bundle).
    pub bundle: &'a Path,
    /// The container's cgroup, in every hierarchy; empty for a container without a cgroup.
    pub cgroup: &'a [Hierarchy],
    /// For a container without a cgroup: the host's hierarchies, shown read-only at a cgroup mount.
    pub host_cgroups: &'a [Hierarchy],
    /// Whether the container has a cgroup namespace of its own (unshared before any cgroup filesystem is mounted).
    pub cgroup_ns: bool,
    /// Devices are bind-mounted from the host instead of made with mknod, which needs CAP_MKNOD in the initial user
    /// namespace: the container has a user namespace of its own, or hull is rootless (runc's rule).
    pub bind_devices: bool,
    /// Whether the container has a mount namespace of its own. Without one, everything is mounted into hull's (see
    /// `hostmounts`), hull's propagation is left as it is, and the root is entered with chroot, as runc does.
    pub mount_ns: bool,
    pub no_pivot: bool,
    /// The SELinux label of the container's filesystem mounts (`linux.mountLabel`, when the host has SELinux).
    pub mount_label: Option<&'a str>,
}

/// Everything the rootfs setup does, in the order of its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub root: RootPlan,
    /// `mounts[]`, in order.
    pub mounts: Vec<Entry>,
    /// `/dev`, when hull makes it (see [`needs_dev_setup`]).
    pub dev: Option<DevPlan>,
    /// `process.cwd`, created if missing.
    pub cwd: Option<PathBuf>,
    /// After the pivot: the tmpfs mounts the config wants read-only, remounted so with all their flags.
    pub readonly_tmpfs: Vec<ReadonlyRemount>,
    /// After the pivot and sysctl: `linux.readonlyPaths`, then `linux.maskedPaths`.
    pub readonly_paths: Vec<String>,
    pub masked_paths: Vec<String>,
}

/// The root mount: its propagation, how the root is switched, `root.readonly`.
#[derive(Debug, Clone, PartialEq)]
pub struct RootPlan {
    /// Set on `/` before anything is mounted, in a mount namespace of the container's own: `rootfsPropagation`,
    /// else `rslave`.
    pub propagation_before: Option<MsFlags>,
    /// Whether the rootfs' parent mount is made private after that: unless `/` is now a slave, it may be shared
    /// (pivot_root fails, the rootfs bind would propagate to the host) or unbindable (the bind fails), as runc's
    /// `rootfsParentMountPropagation` has it.
    pub private_parent: bool,
    pub switch: Switch,
    /// `rootfsPropagation`, set again on the new `/` once the root is switched.
    pub propagation_after: Option<MsFlags>,
    /// `root.readonly`: `/` is remounted read-only after the pivot.
    pub readonly: bool,
}

/// How the container enters its root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Switch {
    PivotRoot,
    /// `--no-pivot`: the rootfs is moved onto `/` and chrooted into.
    MoveRoot,
    /// No mount namespace of its own: a chroot in hull's.
    Chroot,
}

/// One `mounts[]` entry: the context its errors are given, and its plan or why it is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `mount SOURCE on DESTINATION`.
    pub context: String,
    pub plan: Result<MountPlan, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MountPlan {
    Bind(BindMount),
    Cgroup(CgroupMount),
    Filesystem(FsMount),
}

/// A bind mount of a host path. Its destination is created as a directory or a file, as the source is one; symlinks
/// on the destination's path are followed inside the root.
#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    pub destination: PathBuf,
    /// The host path (a relative source starts at the bundle).
    pub source: PathBuf,
    /// Attach the tree hull prepared for this mount (id-mapped, or opened as host root for a user namespace) with
    /// move_mount, instead of binding `source`.
    pub prepared_tree: bool,
    /// `rbind`: the mounts below the source come along.
    pub recursive: bool,
    /// A bind at `/proc` is allowed only from a procfs (runc's `checkProcMount`), checked on the source.
    pub source_must_be_procfs: bool,
    /// The flags the bind is remounted with, when the options set more than the bind itself.
    pub remount: Option<Remount>,
    pub attributes: Attributes,
}

/// A remount of a bind mount with `flags`: the flags the kernel locked on it are kept unless `cleared` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remount {
    pub flags: MsFlags,
    pub cleared: MsFlags,
}

/// What is applied to a fresh mount once it is in place: propagation changes, in order, then recursive
/// `MOUNT_ATTR_*` bits (`rro`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    pub propagation: Vec<MsFlags>,
    pub recursive_set: u64,
    pub recursive_clear: u64,
}

/// A fresh filesystem (proc, sysfs, tmpfs, devpts, mqueue, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct FsMount {
    pub destination: PathBuf,
    pub fstype: String,
    pub source: String,
    /// The mount(2) flags; a read-only tmpfs is mounted writable and remounted read-only after the pivot (see
    /// [`Plan::readonly_tmpfs`]), as runc's `finalizeRootfs` does: a copied-up one is filled first, a read-only
    /// /dev gets its sub-mounts and device nodes.
    pub flags: MsFlags,
    pub data: MountData,
    pub destination_rule: DestinationRule,
    /// A tmpfs: it takes the mode of the directory it covers, if there is one before hull creates anything (unless
    /// its options say `mode=`; runc since 1.1.8, crun since 1.12; runc#3911), and with `tmpcopyup` a copy of that
    /// directory's contents.
    pub covered_dir: Option<CoveredDir>,
    /// Tried when the kernel refuses the mount with EPERM.
    pub fallback: Option<Fallback>,
    pub attributes: Attributes,
}

/// The filesystem data of a mount: its options that are no flags, then the SELinux mount label where it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct MountData {
    pub options: Vec<String>,
    pub label: Option<String>,
}

impl MountData {
    /// The data string; a tmpfs over a directory gets that directory's mode first, so that a `mode=` of its own
    /// options wins.
    pub fn text(&self, covered_mode: Option<u32>) -> String {
        let data = match covered_mode {
            Some(mode) => std::iter::once(format!("mode={mode:o}"))
                .chain(self.options.iter().cloned())
                .collect::<Vec<_>>()
                .join(","),
            None => self.options.join(","),
        };
        lsm::with_mount_label(&data, self.label.as_deref())
    }
}

/// What the destination of a fresh filesystem may be.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationRule {
    /// Anything; symlinks on its path are followed inside the root.
    InRoot,
    /// proc, sysfs and /dev must sit on real directories, not on symlinks even inside the rootfs (CVE-2023-27561,
    /// CVE-2026-41579): refused before anything is created along the symlink. `lead` starts the refusal (runc's
    /// words for a procfs or sysfs destination that is not a directory; hull's detail follows).
    OrdinaryDirectory { lead: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoveredDir {
    pub copy_up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fallback {
    /// Without a network namespace of its own (or in a user namespace) sysfs cannot be mounted: the host's /sys is
    /// bound recursively instead, then remounted with the entry's flags.
    BindHostSys(Remount),
}

/// A cgroup filesystem mount (`cgroup` or `cgroup2`): with a cgroup namespace the hierarchies are mounted natively
/// (they show the container's cgroup as their root); without one, the container's own cgroup directories (or, for a
/// container without a cgroup, the host's roots, read-only) are bind-mounted.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupMount {
    pub destination: PathBuf,
    pub form: CgroupForm,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CgroupForm {
    /// cgroup v2 only, with a cgroup namespace: a fresh cgroup2 mount with `flags`. In a user namespace the kernel
    /// may refuse it (EPERM, or EBUSY for a superblock the namespace does not own): then, as runc, `fallback`,
    /// which shows what the namespace would.
    Cgroup2 {
        flags: MsFlags,
        fallback: HierarchyBind,
    },
    /// cgroup v2 only, without a cgroup namespace.
    Cgroup2Bind(HierarchyBind),
    /// cgroup v1 or hybrid: a tmpfs (mode 755, with `tmpfs_flags`) holding one directory per hierarchy, remounted
    /// read-only at the end when `readonly`.
    PerHierarchy {
        tmpfs_flags: MsFlags,
        hierarchies: Vec<HierarchyMount>,
        readonly: bool,
    },
}

/// A bind of a hierarchy's directory on the host, remounted with the entry's flags.
#[derive(Debug, Clone, PartialEq)]
pub struct HierarchyBind {
    pub path: PathBuf,
    pub remount: Remount,
}

/// One hierarchy in the cgroup v1 (or hybrid) tmpfs: the directory `name` (the host mountpoint's name).
#[derive(Debug, Clone, PartialEq)]
pub struct HierarchyMount {
    pub name: String,
    pub form: HierarchyForm,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HierarchyForm {
    /// In a cgroup namespace: a fresh mount (`cgroup` with the controllers as data, or `cgroup2`).
    Fresh {
        fstype: &'static str,
        data: String,
        flags: MsFlags,
    },
    Bind(HierarchyBind),
}

/// `/dev` as hull makes it: the devices, then the links `/dev/fd`, `/dev/std*`, `/dev/core` and `/dev/ptmx`.
#[derive(Debug, Clone, PartialEq)]
pub struct DevPlan {
    pub devices: Vec<Device>,
    pub creation: DeviceCreation,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceCreation {
    Mknod,
    /// The host's node is bind-mounted (mknod is not allowed, see [`Facts::bind_devices`]).
    BindHost,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A tmpfs remounted read-only after the pivot, with the flags of its options.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadonlyRemount {
    pub destination: PathBuf,
    pub flags: MsFlags,
}

/// Devices every container gets (runc's default device list): path, major, minor.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

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

/// The plan of the whole rootfs setup; `prepared_trees` are the indexes in `mounts` of the bind mounts hull prepared
/// a detached tree for as host root (see `idmap`).
pub fn plan(spec: &Spec, facts: &Facts, prepared_trees: &[usize]) -> Plan {
    let linux = spec.linux().as_ref();
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let list = |paths: Option<&Vec<String>>| paths.cloned().unwrap_or_default();
    Plan {
        root: root_plan(spec, facts),
        mounts: mounts
            .iter()
            .enumerate()
            .map(|(index, m)| Entry {
                context: format!("mount {} on {}", source_text(m), m.destination().display()),
                plan: plan_mount(m, facts, prepared_trees.contains(&index)),
            })
            .collect(),
        dev: needs_dev_setup(mounts).then(|| DevPlan {
            devices: devices(spec),
            creation: if facts.bind_devices {
                DeviceCreation::BindHost
            } else {
                DeviceCreation::Mknod
            },
        }),
        cwd: spec.process().as_ref().map(|p| p.cwd().clone()),
        readonly_tmpfs: readonly_tmpfs(mounts),
        readonly_paths: list(linux.and_then(|l| l.readonly_paths().as_ref())),
        masked_paths: list(linux.and_then(|l| l.masked_paths().as_ref())),
    }
}

fn root_plan(spec: &Spec, facts: &Facts) -> RootPlan {
    let propagation = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
        .and_then(mountopts::propagation_flag);
    RootPlan {
        propagation_before: facts
            .mount_ns
            .then(|| propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC)),
        private_parent: facts.mount_ns
            && propagation.is_some_and(|p| !p.contains(MsFlags::MS_SLAVE)),
        switch: if !facts.mount_ns {
            Switch::Chroot
        } else if facts.no_pivot {
            Switch::MoveRoot
        } else {
            Switch::PivotRoot
        },
        propagation_after: propagation,
        readonly: spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly().unwrap_or(false)),
    }
}

fn plan_mount(m: &Mount, facts: &Facts, prepared_tree: bool) -> Result<MountPlan, String> {
    let dest = m.destination();
    let clean_dest = inroot::clean(dest);
    if clean_dest.as_os_str().is_empty() {
        return Err(format!("invalid mount destination {dest:?}"));
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
    let bind = typ == "bind" || opts.is_bind();
    let source_must_be_procfs = check_proc_mount(&clean_dest, !bind && typ == "proc", bind)?;
    if bind {
        let source = idmap::bind_source(m, facts.bundle);
        if source_must_be_procfs && source.is_err() {
            // No source, so not a procfs either: refused as the check refuses any other source.
            return Err(not_of_type_proc());
        }
        return Ok(MountPlan::Bind(BindMount {
            destination: dest.clone(),
            source: source.map_err(|e| format!("{e:#}"))?,
            prepared_tree,
            recursive: opts.flags.contains(MsFlags::MS_REC),
            source_must_be_procfs,
            remount: (!opts
                .flags
                .difference(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
                .is_empty())
            .then_some(Remount {
                flags: opts.flags,
                cleared: opts.cleared,
            }),
            attributes: attributes(&opts),
        }));
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return Ok(MountPlan::Cgroup(CgroupMount {
            destination: dest.clone(),
            form: cgroup_form(&opts, facts),
        }));
    }
    Ok(MountPlan::Filesystem(plan_filesystem(
        m,
        typ,
        &clean_dest,
        &opts,
        facts,
    )))
}

fn plan_filesystem(
    m: &Mount,
    typ: &str,
    clean_dest: &Path,
    opts: &MountOptions,
    facts: &Facts,
) -> FsMount {
    let destination_rule = if matches!(typ, "proc" | "sysfs") {
        DestinationRule::OrdinaryDirectory {
            lead: format!("filesystem {typ:?} must be mounted on ordinary directory: "),
        }
    } else if clean_dest == Path::new("dev") {
        DestinationRule::OrdinaryDirectory {
            lead: String::new(),
        }
    } else {
        DestinationRule::InRoot
    };
    let tmpfs = typ == "tmpfs";
    FsMount {
        destination: m.destination().clone(),
        fstype: typ.to_owned(),
        source: m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_owned()),
        flags: if tmpfs {
            opts.flags - MsFlags::MS_RDONLY
        } else {
            opts.flags
        },
        data: MountData {
            options: opts.data.clone(),
            label: facts
                .mount_label
                .filter(|_| !matches!(typ, "proc" | "sysfs" | "mqueue"))
                .map(str::to_owned),
        },
        destination_rule,
        covered_dir: tmpfs.then_some(CoveredDir {
            copy_up: opts.copy_up,
        }),
        fallback: (typ == "sysfs").then_some(Fallback::BindHostSys(Remount {
            flags: opts.flags,
            cleared: opts.cleared,
        })),
        attributes: attributes(opts),
    }
}

fn attributes(opts: &MountOptions) -> Attributes {
    Attributes {
        propagation: opts.propagation.clone(),
        recursive_set: opts.recursive_set,
        recursive_clear: opts.recursive_clear,
    }
}

/// The cgroup mount's form: a container without a cgroup is shown the host's hierarchies, read-only.
fn cgroup_form(opts: &MountOptions, facts: &Facts) -> CgroupForm {
    let (hierarchies, flags) = if facts.cgroup.is_empty() {
        (facts.host_cgroups, opts.flags | MsFlags::MS_RDONLY)
    } else {
        (facts.cgroup, opts.flags)
    };
    let bind = |hierarchy: &Hierarchy| HierarchyBind {
        path: hierarchy.path.clone(),
        remount: Remount {
            flags,
            cleared: opts.cleared,
        },
    };
    if let [hierarchy] = hierarchies {
        if hierarchy.v2 {
            return if facts.cgroup_ns {
                CgroupForm::Cgroup2 {
                    flags,
                    fallback: bind(hierarchy),
                }
            } else {
                CgroupForm::Cgroup2Bind(bind(hierarchy))
            };
        }
    }
    CgroupForm::PerHierarchy {
        tmpfs_flags: flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC),
        hierarchies: hierarchies
            .iter()
            .map(|hierarchy| HierarchyMount {
                name: hierarchy
                    .mountpoint
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "unified".to_owned()),
                form: match (facts.cgroup_ns, hierarchy.v2) {
                    (true, true) => HierarchyForm::Fresh {
                        fstype: "cgroup2",
                        data: String::new(),
                        flags,
                    },
                    (true, false) => HierarchyForm::Fresh {
                        fstype: "cgroup",
                        data: hierarchy.controllers.join(","),
                        flags,
                    },
                    (false, _) => HierarchyForm::Bind(bind(hierarchy)),
                },
            })
            .collect(),
        readonly: flags.contains(MsFlags::MS_RDONLY),
    }
}

/// runc's `checkProcMount` (CVE-2019-16884): at /proc only a fresh procfs or a bind of procfs (true: the bind's
/// source must be checked); below /proc only the entries lxcfs emulates. `dest` is the cleaned destination relative
/// to the root.
fn check_proc_mount(dest: &Path, fresh_proc: bool, bind: bool) -> Result<bool, String> {
    let Ok(rest) = dest.strip_prefix("proc") else {
        return Ok(false);
    };
    if rest.as_os_str().is_empty() {
        return match (fresh_proc, bind) {
            (true, _) => Ok(false),
            (false, true) => Ok(true),
            (false, false) => Err(not_of_type_proc()),
        };
    }
    if LXCFS_PROC_ENTRIES
        .iter()
        .any(|entry| rest == Path::new(entry))
    {
        return Ok(false);
    }
    let shown = Path::new("/").join(dest);
    Err(format!(
        "{shown:?} cannot be mounted because it is inside /proc"
    ))
}

/// The refusal of a mount at /proc that is neither a fresh procfs nor a bind of one.
pub fn not_of_type_proc() -> String {
    format!(
        "{:?} cannot be mounted because it is not of type proc",
        Path::new("/proc")
    )
}

/// The mount's source as its error context shows it.
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

/// Every device node the container gets: the default ones, replaced or joined by `linux.devices`.
pub fn device_paths(spec: &Spec) -> Vec<PathBuf> {
    devices(spec).into_iter().map(|d| d.path).collect()
}

/// The default devices, replaced or joined by `linux.devices`.
fn devices(spec: &Spec) -> Vec<Device> {
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
    let configured = spec
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

/// Every mount of type tmpfs whose options say `ro`.
fn readonly_tmpfs(mounts: &[Mount]) -> Vec<ReadonlyRemount> {
    mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .filter_map(|m| {
            let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
            opts.flags
                .contains(MsFlags::MS_RDONLY)
                .then(|| ReadonlyRemount {
                    destination: m.destination().clone(),
                    flags: opts.flags,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const LABEL: &str = "system_u:object_r:container_file_t:s0";
    const CGROUP_FLAGS: MsFlags = MsFlags::MS_NOSUID
        .union(MsFlags::MS_NOEXEC)
        .union(MsFlags::MS_NODEV)
        .union(MsFlags::MS_RELATIME)
        .union(MsFlags::MS_RDONLY);

    fn hierarchy(mountpoint: &str, controllers: &[&str], path: &str) -> Hierarchy {
        Hierarchy {
            mountpoint: PathBuf::from(mountpoint),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            v2: controllers.is_empty(),
            path: PathBuf::from(path),
        }
    }

    fn unified() -> Vec<Hierarchy> {
        vec![hierarchy("/sys/fs/cgroup", &[], "/sys/fs/cgroup/c1")]
    }

    fn v1() -> Vec<Hierarchy> {
        vec![
            hierarchy(
                "/sys/fs/cgroup/memory",
                &["memory"],
                "/sys/fs/cgroup/memory/c1",
            ),
            hierarchy(
                "/sys/fs/cgroup/cpu,cpuacct",
                &["cpu", "cpuacct"],
                "/sys/fs/cgroup/cpu,cpuacct/c1",
            ),
            hierarchy(
                "/sys/fs/cgroup/systemd",
                &["name=systemd"],
                "/sys/fs/cgroup/systemd/c1",
            ),
        ]
    }

    fn hybrid() -> Vec<Hierarchy> {
        let mut list = v1();
        list.push(hierarchy(
            "/sys/fs/cgroup/unified",
            &[],
            "/sys/fs/cgroup/unified/c1",
        ));
        list
    }

    /// A privileged container with every namespace of its own, on a cgroup v2 host without SELinux.
    fn facts(cgroup: &[Hierarchy]) -> Facts<'_> {
        Facts {
            bundle: Path::new("/bundle"),
            cgroup,
            host_cgroups: &[],
            cgroup_ns: true,
            bind_devices: false,
            mount_ns: true,
            no_pivot: false,
            mount_label: None,
        }
    }

    fn spec(config: Value) -> Spec {
        let mut config = config;
        config["ociVersion"] = "1.2.0".into();
        serde_json::from_value(config).unwrap()
    }

    fn plan_of(config: Value, facts: &Facts) -> Plan {
        plan(&spec(config), facts, &[])
    }

    /// The plan of one `mounts[]` entry.
    fn mount_plan(mount: Value, facts: &Facts) -> Result<MountPlan, String> {
        let mut plan = plan_of(json!({ "mounts": [mount] }), facts);
        plan.mounts.remove(0).plan
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn no_attributes() -> Attributes {
        Attributes {
            propagation: Vec::new(),
            recursive_set: 0,
            recursive_clear: 0,
        }
    }

    /// A fresh filesystem with nothing special: any destination, no label, no tmpfs rule, no fallback.
    fn fresh(dest: &str, fstype: &str, flags: MsFlags, data: &[&str]) -> FsMount {
        FsMount {
            destination: PathBuf::from(dest),
            fstype: fstype.to_owned(),
            source: fstype.to_owned(),
            flags,
            data: MountData {
                options: strings(data),
                label: None,
            },
            destination_rule: DestinationRule::InRoot,
            covered_dir: None,
            fallback: None,
            attributes: no_attributes(),
        }
    }

    fn bind(dest: &str, source: &str) -> BindMount {
        BindMount {
            destination: PathBuf::from(dest),
            source: PathBuf::from(source),
            prepared_tree: false,
            recursive: false,
            source_must_be_procfs: false,
            remount: None,
            attributes: no_attributes(),
        }
    }

    fn ordinary_directory(lead: &str) -> DestinationRule {
        DestinationRule::OrdinaryDirectory {
            lead: lead.to_owned(),
        }
    }

    #[test]
    fn runc_default_mounts() {
        let v2 = unified();
        let facts = facts(&v2);
        let plan = |mount| mount_plan(mount, &facts);
        assert_eq!(
            plan(json!({"destination": "/proc", "type": "proc", "source": "proc"})),
            Ok(MountPlan::Filesystem(FsMount {
                destination_rule: ordinary_directory(
                    "filesystem \"proc\" must be mounted on ordinary directory: "
                ),
                ..fresh("/proc", "proc", MsFlags::empty(), &[])
            }))
        );
        assert_eq!(
            plan(
                json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]})
            ),
            Ok(MountPlan::Filesystem(FsMount {
                destination_rule: ordinary_directory(""),
                covered_dir: Some(CoveredDir { copy_up: false }),
                ..fresh(
                    "/dev",
                    "tmpfs",
                    MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                    &["mode=755", "size=65536k"]
                )
            }))
        );
        assert_eq!(
            plan(
                json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]})
            ),
            Ok(MountPlan::Filesystem(fresh(
                "/dev/pts",
                "devpts",
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                &["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            )))
        );
        assert_eq!(
            plan(
                json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
            ),
            Ok(MountPlan::Filesystem(FsMount {
                source: "shm".to_owned(),
                covered_dir: Some(CoveredDir { copy_up: false }),
                ..fresh(
                    "/dev/shm",
                    "tmpfs",
                    MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
                    &["mode=1777", "size=65536k"]
                )
            }))
        );
        assert_eq!(
            plan(
                json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]})
            ),
            Ok(MountPlan::Filesystem(fresh(
                "/dev/mqueue",
                "mqueue",
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
                &[]
            )))
        );
        let sys_flags =
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RDONLY;
        assert_eq!(
            plan(
                json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]})
            ),
            Ok(MountPlan::Filesystem(FsMount {
                destination_rule: ordinary_directory(
                    "filesystem \"sysfs\" must be mounted on ordinary directory: "
                ),
                fallback: Some(Fallback::BindHostSys(Remount {
                    flags: sys_flags,
                    cleared: MsFlags::empty(),
                })),
                ..fresh("/sys", "sysfs", sys_flags, &[])
            }))
        );
    }

    #[test]
    fn the_mount_label_goes_to_every_filesystem_but_proc_sysfs_and_mqueue() {
        let v2 = unified();
        let labelled = Facts {
            mount_label: Some(LABEL),
            ..facts(&v2)
        };
        let label_of = |fstype: &str| match mount_plan(
            json!({"destination": "/x", "type": fstype, "options": ["size=1m"]}),
            &labelled,
        ) {
            Ok(MountPlan::Filesystem(fs)) => fs.data.label,
            other => panic!("{other:?}"),
        };
        for fstype in ["tmpfs", "devpts", "fuse", ""] {
            assert_eq!(label_of(fstype).as_deref(), Some(LABEL), "{fstype}");
        }
        for fstype in ["proc", "sysfs", "mqueue"] {
            assert_eq!(label_of(fstype), None, "{fstype}");
        }
        let Ok(MountPlan::Filesystem(unlabelled)) = mount_plan(
            json!({"destination": "/x", "type": "tmpfs", "options": ["size=1m"]}),
            &facts(&v2),
        ) else {
            panic!("a tmpfs is a filesystem mount");
        };
        assert_eq!(unlabelled.data.label, None, "no label without SELinux");
        let binds = mount_plan(
            json!({"destination": "/x", "type": "bind", "source": "/y"}),
            &labelled,
        );
        assert_eq!(binds, Ok(MountPlan::Bind(bind("/x", "/y"))));
    }

    #[test]
    fn mount_data_text() {
        let data = |options: &[&str], label: Option<&str>| MountData {
            options: strings(options),
            label: label.map(str::to_owned),
        };
        assert_eq!(data(&[], None).text(None), "");
        assert_eq!(data(&["size=1m"], None).text(None), "size=1m");
        assert_eq!(
            data(&[], Some(LABEL)).text(None),
            format!("context=\"{LABEL}\"")
        );
        assert_eq!(
            data(&["size=1m", "nr_inodes=8"], Some(LABEL)).text(None),
            format!("size=1m,nr_inodes=8,context=\"{LABEL}\"")
        );
        // A tmpfs takes the covered directory's mode unless it names one (the later `mode=` wins).
        assert_eq!(data(&[], None).text(Some(0o755)), "mode=755");
        assert_eq!(
            data(&["size=1m", "mode=1770"], None).text(Some(0o1777)),
            "mode=1777,size=1m,mode=1770"
        );
        assert_eq!(
            data(&["size=1m"], Some(LABEL)).text(Some(0o700)),
            format!("mode=700,size=1m,context=\"{LABEL}\"")
        );
    }

    #[test]
    fn tmpfs_copy_up_and_read_only() {
        let v2 = unified();
        let facts = facts(&v2);
        let config = json!({"mounts": [
            {"destination": "/run", "type": "tmpfs", "options": ["tmpcopyup", "nosuid", "ro", "size=1m"]},
            {"destination": "/tmp", "type": "tmpfs", "options": ["nodev"]},
            {"destination": "/var/tmp", "type": "tmpfs", "options": ["ro", "rw"]},
            {"destination": "/etc/x", "type": "tmpfs", "source": "/host/x", "options": ["bind", "ro"]},
            {"destination": "/cache", "type": "bind", "source": "/host/cache", "options": ["tmpcopyup", "ro"]},
        ]});
        let plan = plan_of(config, &facts);
        assert_eq!(
            plan.mounts[0].plan,
            Ok(MountPlan::Filesystem(FsMount {
                covered_dir: Some(CoveredDir { copy_up: true }),
                ..fresh("/run", "tmpfs", MsFlags::MS_NOSUID, &["size=1m"])
            })),
            "mounted writable, copied up, remounted read-only after the pivot"
        );
        assert_eq!(
            plan.mounts[1].plan,
            Ok(MountPlan::Filesystem(FsMount {
                covered_dir: Some(CoveredDir { copy_up: false }),
                ..fresh("/tmp", "tmpfs", MsFlags::MS_NODEV, &[])
            }))
        );
        let Ok(MountPlan::Bind(cache)) = &plan.mounts[4].plan else {
            panic!("a bind: {:?}", plan.mounts[4].plan);
        };
        assert!(cache.remount.is_some(), "tmpcopyup means nothing to a bind");
        // Every mount of type tmpfs with `ro`, a tmpfs-typed bind included (remounted with all its flags).
        assert_eq!(
            plan.readonly_tmpfs,
            [
                ReadonlyRemount {
                    destination: PathBuf::from("/run"),
                    flags: MsFlags::MS_NOSUID | MsFlags::MS_RDONLY,
                },
                ReadonlyRemount {
                    destination: PathBuf::from("/etc/x"),
                    flags: MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                },
            ]
        );
    }

    #[test]
    fn binds_and_their_remounts() {
        let v2 = unified();
        let facts = facts(&v2);
        let plan = |mount| mount_plan(mount, &facts);
        assert_eq!(
            plan(json!({"destination": "/data", "type": "bind", "source": "/host/data"})),
            Ok(MountPlan::Bind(bind("/data", "/host/data"))),
            "the type alone makes a bind; nothing to remount"
        );
        assert_eq!(
            plan(
                json!({"destination": "/data", "type": "none", "source": "data", "options": ["bind"]})
            ),
            Ok(MountPlan::Bind(bind("/data", "/bundle/data"))),
            "a relative source is in the bundle"
        );
        assert_eq!(
            plan(json!({"destination": "/data", "source": "/host/data",
                "options": ["rbind", "ro", "nosuid", "rprivate"]})),
            Ok(MountPlan::Bind(BindMount {
                recursive: true,
                remount: Some(Remount {
                    flags: MsFlags::MS_BIND
                        | MsFlags::MS_REC
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID,
                    cleared: MsFlags::empty(),
                }),
                attributes: Attributes {
                    propagation: vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC],
                    ..no_attributes()
                },
                ..bind("/data", "/host/data")
            }))
        );
        assert_eq!(
            plan(
                json!({"destination": "/data", "type": "bind", "source": "/host/data",
                "options": ["rw", "suid", "nodev"]})
            ),
            Ok(MountPlan::Bind(BindMount {
                remount: Some(Remount {
                    flags: MsFlags::MS_NODEV,
                    cleared: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
                }),
                ..bind("/data", "/host/data")
            })),
            "cleared flags are not kept from the source"
        );
        assert_eq!(
            plan(
                json!({"destination": "/data", "type": "bind", "source": "/host/data",
                "options": ["rbind", "rro", "rnosuid"]})
            ),
            Ok(MountPlan::Bind(BindMount {
                recursive: true,
                attributes: Attributes {
                    recursive_set: libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID,
                    ..no_attributes()
                },
                ..bind("/data", "/host/data")
            })),
            "recursive attributes, with mount_setattr, and no remount"
        );
        assert_eq!(
            plan(json!({"destination": "/data", "type": "bind"})),
            Err("bind mount without a source".to_owned())
        );
    }

    #[test]
    fn propagation_options_apply_in_order_after_the_mount() {
        let v2 = unified();
        let Ok(MountPlan::Filesystem(fs)) = mount_plan(
            json!({"destination": "/x", "type": "tmpfs", "options": ["shared", "rslave", "unbindable"]}),
            &facts(&v2),
        ) else {
            panic!("a tmpfs is a filesystem mount");
        };
        assert_eq!(
            fs.attributes.propagation,
            [
                MsFlags::MS_SHARED,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                MsFlags::MS_UNBINDABLE
            ]
        );
        assert!(fs.data.options.is_empty(), "propagation is no data");
        assert_eq!(fs.flags, MsFlags::empty(), "nor a mount flag");
    }

    #[test]
    fn prepared_trees_are_attached_instead_of_bound() {
        let v2 = unified();
        let config = json!({"mounts": [
            {"destination": "/a", "type": "bind", "source": "/host/a", "options": ["idmap"]},
            {"destination": "/b", "type": "bind", "source": "/host/b"},
        ]});
        let plan = plan(&spec(config), &facts(&v2), &[0]);
        assert_eq!(
            plan.mounts[0].plan,
            Ok(MountPlan::Bind(BindMount {
                prepared_tree: true,
                ..bind("/a", "/host/a")
            }))
        );
        assert_eq!(
            plan.mounts[1].plan,
            Ok(MountPlan::Bind(bind("/b", "/host/b")))
        );
    }

    #[test]
    fn proc_mounts_are_checked_as_runc_does() {
        let v2 = unified();
        let facts = facts(&v2);
        let plan = |dest: &str, typ: &str, source: Option<&str>| {
            let mut mount = json!({"destination": dest, "type": typ});
            if let Some(source) = source {
                mount["source"] = source.into();
            }
            mount_plan(mount, &facts)
        };
        let not_proc = Err("\"/proc\" cannot be mounted because it is not of type proc".to_owned());
        assert!(plan("/proc", "proc", None).is_ok());
        assert_eq!(
            plan("/proc", "bind", Some("/proc")),
            Ok(MountPlan::Bind(BindMount {
                source_must_be_procfs: true,
                ..bind("/proc", "/proc")
            })),
            "a bind of procfs, checked on the source"
        );
        assert_eq!(
            plan("/proc", "bind", None),
            not_proc,
            "no source, no procfs"
        );
        assert_eq!(plan("/proc", "tmpfs", None), not_proc);
        assert_eq!(plan("/proc/", "sysfs", None), not_proc);
        assert!(
            plan("/proc/cpuinfo", "bind", Some("/lxcfs/cpuinfo")).is_ok(),
            "lxcfs"
        );
        assert!(plan("/proc/sys/kernel/ns_last_pid", "fuse", None).is_ok());
        assert_eq!(
            plan("/proc/sys/kernel/core_pattern", "bind", Some("/tmp/x")),
            Err(
                "\"/proc/sys/kernel/core_pattern\" cannot be mounted because it is inside /proc"
                    .to_owned()
            )
        );
        assert_eq!(
            plan("/../proc/self/../sys", "tmpfs", None),
            Err("\"/proc/sys\" cannot be mounted because it is inside /proc".to_owned()),
            "checked on the cleaned destination"
        );
        assert!(plan("/procfs", "tmpfs", None).is_ok(), "not /proc");
        assert!(plan("/data/proc", "tmpfs", None).is_ok());
    }

    #[test]
    fn destinations() {
        let v2 = unified();
        let facts = facts(&v2);
        let plan =
            |dest: &str, typ: &str| mount_plan(json!({"destination": dest, "type": typ}), &facts);
        assert_eq!(
            plan("/", "tmpfs"),
            Err("invalid mount destination \"/\"".to_owned())
        );
        assert_eq!(
            plan("/a/../..", "bind"),
            Err("invalid mount destination \"/a/../..\"".to_owned())
        );
        let rule = |dest: &str, typ: &str| match plan(dest, typ) {
            Ok(MountPlan::Filesystem(fs)) => fs.destination_rule,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            rule("/dev/", "tmpfs"),
            ordinary_directory(""),
            "/dev: no symlink"
        );
        assert_eq!(rule("/x/../dev", "devtmpfs"), ordinary_directory(""));
        assert_eq!(rule("/dev/shm", "tmpfs"), DestinationRule::InRoot);
        assert_eq!(
            rule("/somewhere", "sysfs"),
            ordinary_directory("filesystem \"sysfs\" must be mounted on ordinary directory: "),
            "proc and sysfs anywhere"
        );
        let Ok(MountPlan::Filesystem(fs)) = plan("/dev", "tmpfs") else {
            panic!("a tmpfs is a filesystem mount");
        };
        assert_eq!(fs.destination, Path::new("/dev"), "kept as given");
    }

    #[test]
    fn error_contexts_name_the_source_and_destination() {
        let v2 = unified();
        let plan = plan_of(
            json!({"mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "data"},
                {"destination": "/run", "type": "tmpfs"},
                {"destination": "/x"},
            ]}),
            &facts(&v2),
        );
        let contexts: Vec<&str> = plan.mounts.iter().map(|m| m.context.as_str()).collect();
        assert_eq!(
            contexts,
            [
                "mount proc on /proc",
                "mount data on /data",
                "mount tmpfs on /run",
                "mount  on /x"
            ]
        );
    }

    fn cgroup_form_of(options: &[&str], facts: &Facts) -> CgroupForm {
        match mount_plan(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": options}),
            facts,
        ) {
            Ok(MountPlan::Cgroup(cgroup)) => {
                assert_eq!(cgroup.destination, Path::new("/sys/fs/cgroup"));
                cgroup.form
            }
            other => panic!("{other:?}"),
        }
    }

    const RUNC_CGROUP_OPTIONS: &[&str] = &["nosuid", "noexec", "nodev", "relatime", "ro"];

    fn hierarchy_bind(path: &str, flags: MsFlags) -> HierarchyBind {
        HierarchyBind {
            path: PathBuf::from(path),
            remount: Remount {
                flags,
                cleared: MsFlags::empty(),
            },
        }
    }

    #[test]
    fn cgroup_v2() {
        let v2 = unified();
        assert_eq!(
            cgroup_form_of(RUNC_CGROUP_OPTIONS, &facts(&v2)),
            CgroupForm::Cgroup2 {
                flags: CGROUP_FLAGS,
                fallback: hierarchy_bind("/sys/fs/cgroup/c1", CGROUP_FLAGS),
            },
            "in a cgroup namespace: cgroup2, else the container's cgroup bound"
        );
        let without_namespace = Facts {
            cgroup_ns: false,
            ..facts(&v2)
        };
        assert_eq!(
            cgroup_form_of(RUNC_CGROUP_OPTIONS, &without_namespace),
            CgroupForm::Cgroup2Bind(hierarchy_bind("/sys/fs/cgroup/c1", CGROUP_FLAGS))
        );
        assert_eq!(
            cgroup_form_of(&["rw", "nosuid"], &without_namespace),
            CgroupForm::Cgroup2Bind(HierarchyBind {
                path: PathBuf::from("/sys/fs/cgroup/c1"),
                remount: Remount {
                    flags: MsFlags::MS_NOSUID,
                    cleared: MsFlags::MS_RDONLY,
                },
            })
        );
    }

    fn fresh_hierarchy(name: &str, fstype: &'static str, data: &str) -> HierarchyMount {
        HierarchyMount {
            name: name.to_owned(),
            form: HierarchyForm::Fresh {
                fstype,
                data: data.to_owned(),
                flags: CGROUP_FLAGS,
            },
        }
    }

    #[test]
    fn cgroup_v1_and_hybrid() {
        let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
        let v1 = v1();
        assert_eq!(
            cgroup_form_of(RUNC_CGROUP_OPTIONS, &facts(&v1)),
            CgroupForm::PerHierarchy {
                tmpfs_flags,
                hierarchies: vec![
                    fresh_hierarchy("memory", "cgroup", "memory"),
                    fresh_hierarchy("cpu,cpuacct", "cgroup", "cpu,cpuacct"),
                    fresh_hierarchy("systemd", "cgroup", "name=systemd"),
                ],
                readonly: true,
            }
        );
        let hybrid = hybrid();
        let CgroupForm::PerHierarchy { hierarchies, .. } =
            cgroup_form_of(RUNC_CGROUP_OPTIONS, &facts(&hybrid))
        else {
            panic!("a tmpfs of hierarchies");
        };
        assert_eq!(
            hierarchies.last(),
            Some(&fresh_hierarchy("unified", "cgroup2", "")),
            "the unified hierarchy of a hybrid host: cgroup2, without data"
        );
        let without_namespace = Facts {
            cgroup_ns: false,
            ..facts(&hybrid)
        };
        let bound = |name: &str, path: &str| HierarchyMount {
            name: name.to_owned(),
            form: HierarchyForm::Bind(hierarchy_bind(path, MsFlags::MS_NODEV)),
        };
        assert_eq!(
            cgroup_form_of(&["nodev"], &without_namespace),
            CgroupForm::PerHierarchy {
                tmpfs_flags: MsFlags::MS_NODEV,
                hierarchies: vec![
                    bound("memory", "/sys/fs/cgroup/memory/c1"),
                    bound("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/c1"),
                    bound("systemd", "/sys/fs/cgroup/systemd/c1"),
                    bound("unified", "/sys/fs/cgroup/unified/c1"),
                ],
                readonly: false,
            },
            "without a cgroup namespace, the container's own directories bound"
        );
    }

    #[test]
    fn a_container_without_a_cgroup_sees_the_hosts_read_only() {
        let host_v2 = vec![hierarchy("/sys/fs/cgroup", &[], "/sys/fs/cgroup")];
        let without_cgroup = Facts {
            host_cgroups: &host_v2,
            cgroup_ns: false,
            ..facts(&[])
        };
        assert_eq!(
            cgroup_form_of(&["rw", "nosuid"], &without_cgroup),
            CgroupForm::Cgroup2Bind(HierarchyBind {
                path: PathBuf::from("/sys/fs/cgroup"),
                remount: Remount {
                    flags: MsFlags::MS_NOSUID | MsFlags::MS_RDONLY,
                    cleared: MsFlags::MS_RDONLY,
                },
            }),
            "read-only even when the options say rw"
        );
        let host_v1 = vec![hierarchy(
            "/sys/fs/cgroup/memory",
            &["memory"],
            "/sys/fs/cgroup/memory",
        )];
        let CgroupForm::PerHierarchy { readonly, .. } = cgroup_form_of(
            &[],
            &Facts {
                host_cgroups: &host_v1,
                ..facts(&[])
            },
        ) else {
            panic!("a tmpfs of hierarchies");
        };
        assert!(readonly);
        let nothing = Facts {
            host_cgroups: &[],
            ..facts(&[])
        };
        assert_eq!(
            cgroup_form_of(&[], &nothing),
            CgroupForm::PerHierarchy {
                tmpfs_flags: MsFlags::empty(),
                hierarchies: Vec::new(),
                readonly: true,
            },
            "no hierarchy at all: an empty read-only tmpfs"
        );
    }

    #[test]
    fn a_hierarchy_at_the_root_is_named_unified() {
        let at_root = vec![
            hierarchy("/", &["memory"], "/m"),
            hierarchy("/sys/fs/cgroup/pids", &["pids"], "/p"),
        ];
        let CgroupForm::PerHierarchy { hierarchies, .. } = cgroup_form_of(&[], &facts(&at_root))
        else {
            panic!("a tmpfs of hierarchies");
        };
        let names: Vec<&str> = hierarchies.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["unified", "pids"]);
    }

    #[test]
    fn a_cgroup_typed_bind_is_a_bind() {
        let v2 = unified();
        assert_eq!(
            mount_plan(
                json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "/sys/fs/cgroup", "options": ["rbind"]}),
                &facts(&v2),
            ),
            Ok(MountPlan::Bind(BindMount {
                recursive: true,
                ..bind("/sys/fs/cgroup", "/sys/fs/cgroup")
            }))
        );
    }

    #[test]
    fn dev_setup_follows_runc() {
        let v2 = unified();
        let dev_of = |mount: Value, facts: &Facts| plan_of(json!({ "mounts": [mount] }), facts).dev;
        let tmpfs_dev = json!({"destination": "/dev", "type": "tmpfs", "options": ["mode=755"]});
        let defaults: Vec<Device> = DEFAULT_DEVICES
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
        assert_eq!(
            dev_of(tmpfs_dev.clone(), &facts(&v2)),
            Some(DevPlan {
                devices: defaults.clone(),
                creation: DeviceCreation::Mknod,
            })
        );
        let in_user_namespace = Facts {
            bind_devices: true,
            ..facts(&v2)
        };
        assert_eq!(
            dev_of(tmpfs_dev, &in_user_namespace),
            Some(DevPlan {
                devices: defaults,
                creation: DeviceCreation::BindHost,
            }),
            "the host's nodes bound where mknod is not allowed"
        );
        for host_dev in [
            json!({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}),
            json!({"destination": "/dev", "source": "/dev", "options": ["rbind"]}),
            json!({"destination": "/dev", "type": "none", "source": "/dev", "options": ["bind"]}),
            json!({"destination": "/proc", "type": "proc"}),
        ] {
            assert_eq!(dev_of(host_dev.clone(), &facts(&v2)), None, "{host_dev}");
        }
        assert_eq!(plan_of(json!({}), &facts(&v2)).dev, None, "no mounts");
    }

    #[test]
    fn configured_devices_replace_or_join_the_defaults() {
        let v2 = unified();
        let config = json!({
            "mounts": [{"destination": "/dev", "type": "tmpfs"}],
            "linux": {"devices": [
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5, "gid": 6},
                {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
                {"path": "/dev/fifo", "type": "p", "major": 0, "minor": 0},
            ]}
        });
        let devices = plan_of(config, &facts(&v2)).dev.unwrap().devices;
        let summary: Vec<(&str, SFlag, u64, u64, u32, u32, u32)> = devices
            .iter()
            .map(|d| {
                let path = d.path.to_str().unwrap();
                (path, d.kind, d.major, d.minor, d.mode, d.uid, d.gid)
            })
            .collect();
        let chr = SFlag::S_IFCHR;
        assert_eq!(
            summary,
            [
                ("/dev/zero", chr, 1, 5, 0o666, 0, 0),
                ("/dev/full", chr, 1, 7, 0o666, 0, 0),
                ("/dev/random", chr, 1, 8, 0o666, 0, 0),
                ("/dev/urandom", chr, 1, 9, 0o666, 0, 0),
                ("/dev/tty", chr, 5, 0, 0o666, 0, 0),
                ("/dev/null", chr, 1, 3, 0o600, 5, 6),
                ("/dev/sda", SFlag::S_IFBLK, 8, 0, 0o666, 0, 0),
                ("/dev/fifo", SFlag::S_IFIFO, 0, 0, 0o666, 0, 0),
            ]
        );
    }

    #[test]
    fn root_propagation_and_switch() {
        let v2 = unified();
        let root_of = |propagation: Option<&str>, facts: &Facts| {
            let mut config = json!({"root": {"path": "rootfs", "readonly": true}, "linux": {}});
            if let Some(p) = propagation {
                config["linux"]["rootfsPropagation"] = p.into();
            }
            plan_of(config, facts).root
        };
        let rslave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        assert_eq!(
            root_of(None, &facts(&v2)),
            RootPlan {
                propagation_before: Some(rslave),
                private_parent: false,
                switch: Switch::PivotRoot,
                propagation_after: None,
                readonly: true,
            },
            "rslave by default"
        );
        for unset in [Some(""), Some("bogus")] {
            assert_eq!(
                root_of(unset, &facts(&v2)).propagation_before,
                Some(rslave),
                "{unset:?}"
            );
        }
        assert_eq!(
            root_of(Some("shared"), &facts(&v2)),
            RootPlan {
                propagation_before: Some(MsFlags::MS_SHARED),
                private_parent: true,
                switch: Switch::PivotRoot,
                propagation_after: Some(MsFlags::MS_SHARED),
                readonly: true,
            }
        );
        let rprivate = root_of(Some("rprivate"), &facts(&v2));
        assert!(rprivate.private_parent);
        assert_eq!(
            rprivate.propagation_after,
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
        assert!(!root_of(Some("slave"), &facts(&v2)).private_parent);
        assert_eq!(
            root_of(
                None,
                &Facts {
                    no_pivot: true,
                    ..facts(&v2)
                }
            )
            .switch,
            Switch::MoveRoot
        );
        assert_eq!(
            root_of(
                Some("rshared"),
                &Facts {
                    mount_ns: false,
                    no_pivot: true,
                    ..facts(&v2)
                }
            ),
            RootPlan {
                propagation_before: None,
                private_parent: false,
                switch: Switch::Chroot,
                propagation_after: Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
                readonly: true,
            },
            "without a mount namespace hull's propagation is left alone until the chroot"
        );
        assert!(!plan_of(json!({}), &facts(&v2)).root.readonly);
    }

    #[test]
    fn paths_and_cwd() {
        let v2 = unified();
        let plan = plan_of(
            json!({
                "process": {"cwd": "/work", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
                "linux": {"readonlyPaths": ["/proc/sys", "/proc/bus"], "maskedPaths": ["/proc/kcore"]}
            }),
            &facts(&v2),
        );
        assert_eq!(plan.cwd.as_deref(), Some(Path::new("/work")));
        assert_eq!(plan.readonly_paths, ["/proc/sys", "/proc/bus"]);
        assert_eq!(plan.masked_paths, ["/proc/kcore"]);
        let empty = plan_of(json!({}), &facts(&v2));
        assert_eq!(
            (empty.cwd, empty.readonly_paths, empty.masked_paths),
            (None, Vec::<String>::new(), Vec::<String>::new())
        );
    }
}
