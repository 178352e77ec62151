//! OCI `mounts[].options` → mount(2) flags, propagation changes, recursive attributes (`mount_setattr`) and the
//! filesystem data string. Pure; the table follows runc's `mountFlagsMapping` and `mountPropagationMapping`
//! (since runc 1.2 `acl`/`noacl` are filesystem data, not flags).

use nix::mount::MsFlags;

/// The parsed form of one mount's options.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags for mount(2), after applying every set and clear in order.
    pub flags: MsFlags,
    /// Flags the options explicitly cleared (`rw`, `suid`, ...): a bind remount must not re-add them.
    pub cleared: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// `MOUNT_ATTR_*` bits to set and clear recursively (`rro`, `rnosuid`, ...).
    pub recursive_set: u64,
    pub recursive_clear: u64,
    /// `idmap` (`Some(false)`) or `ridmap` (`Some(true)`, every mount of the tree): an id-mapped bind mount.
    pub idmap: Option<bool>,
    /// `tmpcopyup`: a tmpfs starts with a copy of the directory it covers (ignored for other types, as runc).
    pub copy_up: bool,
    /// Everything else, passed to the filesystem (`mode=755`, `size=65536k`, ...).
    pub data: Vec<String>,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn data_string(&self) -> String {
        self.data.join(",")
    }
}

/// `MS_NOSYMFOLLOW` (Linux 5.10), missing from nix.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// (option, clears the flag?, flag)
const FLAG_TABLE: &[(&str, bool, MsFlags)] = &[
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("symfollow", true, MS_NOSYMFOLLOW),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

/// Propagation options (also the `rootfsPropagation` values) and their flags.
const PROPAGATION_TABLE: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// The propagation flag for an option or `rootfsPropagation` value.
pub fn propagation_flag(option: &str) -> Option<MsFlags> {
    PROPAGATION_TABLE
        .iter()
        .find(|(name, _)| *name == option)
        .map(|&(_, flag)| flag)
}

/// Every option `parse` turns into a mount flag, propagation or attribute (not filesystem data), sorted as runc's
/// `KnownMountOptions`; the recursive and id-mapping ones only when the kernel has mount_setattr(2) to apply them.
pub fn known_options(mount_setattr: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FLAG_TABLE.iter().map(|(name, _, _)| *name).collect();
    names.extend(PROPAGATION_TABLE.iter().map(|(name, _)| *name));
    names.push(COPY_UP);
    if mount_setattr {
        names.extend(RECURSIVE_TABLE.iter().map(|(name, _, _)| *name));
        names.extend(IDMAP_OPTIONS.iter().map(|(name, _)| *name));
    }
    names.sort_unstable();
    names
}

/// (option, clears?, MOUNT_ATTR_* bit) for the recursive variants runc supports through mount_setattr(2).
const RECURSIVE_TABLE: &[(&str, bool, u64)] = &[
    ("rro", false, libc::MOUNT_ATTR_RDONLY),
    ("rrw", true, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", false, libc::MOUNT_ATTR_NOSUID),
    ("rsuid", true, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", false, libc::MOUNT_ATTR_NODEV),
    ("rdev", true, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", false, libc::MOUNT_ATTR_NOEXEC),
    ("rexec", true, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, libc::MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, libc::MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, libc::MOUNT_ATTR_RELATIME),
    ("rnoatime", false, libc::MOUNT_ATTR_NOATIME),
    ("ratime", true, libc::MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, libc::MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", false, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

/// Whether a `MOUNT_ATTR_*` value is an access-time mode (`MOUNT_ATTR_RELATIME` is 0, the field's default).
fn is_atime(attr: u64) -> bool {
    attr == libc::MOUNT_ATTR_RELATIME || attr & libc::MOUNT_ATTR__ATIME != 0
}

/// runc's "extension" options, handled by the runtime itself.
const COPY_UP: &str = "tmpcopyup";

/// The id-mapping options (see [`MountOptions::idmap`]).
const IDMAP_OPTIONS: &[(&str, bool)] = &[("idmap", false), ("ridmap", true)];

pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        recursive_set: 0,
        recursive_clear: 0,
        idmap: None,
        copy_up: false,
        data: Vec::new(),
    };
    for option in options {
        let option = option.as_str();
        if let Some(&(_, clear, flag)) = FLAG_TABLE.iter().find(|(name, _, _)| *name == option) {
            if clear {
                out.flags.remove(flag);
                out.cleared.insert(flag);
            } else {
                out.flags.insert(flag);
                out.cleared.remove(flag);
            }
        } else if let Some(flag) = propagation_flag(option) {
            out.propagation.push(flag);
        } else if let Some(&(_, clear, attr)) =
            RECURSIVE_TABLE.iter().find(|(name, _, _)| *name == option)
        {
            if is_atime(attr) {
                // The access-time mode is one field: the kernel wants all of MOUNT_ATTR__ATIME in attr_clr whenever
                // it changes (mount_setattr(2)), and one mode set; clearing a mode leaves relatime.
                out.recursive_set &= !libc::MOUNT_ATTR__ATIME;
                out.recursive_clear |= libc::MOUNT_ATTR__ATIME;
                if !clear {
                    out.recursive_set |= attr;
                }
            } else if clear {
                out.recursive_set &= !attr;
                out.recursive_clear |= attr;
            } else {
                out.recursive_set |= attr;
                out.recursive_clear &= !attr;
            }
        } else if let Some(&(_, recursive)) = IDMAP_OPTIONS.iter().find(|(name, _)| *name == option)
        {
            out.idmap = Some(recursive);
        } else if option == COPY_UP {
            out.copy_up = true;
        } else {
            out.data.push(option.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn runc_default_dev_tmpfs() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
        assert!(!o.is_bind());
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = opts(&["ro", "rw", "nosuid", "suid"]);
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.cleared, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        let o = opts(&["rw", "ro"]);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert!(o.cleared.is_empty());
    }

    #[test]
    fn rbind_is_recursive_bind_and_propagation_is_separate() {
        let o = opts(&["rbind", "ro", "rprivate"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(o.data.is_empty());
    }

    #[test]
    fn recursive_attributes() {
        let o = opts(&["rbind", "rro", "rnosuid", "rsuid"]);
        assert_eq!(o.recursive_set, libc::MOUNT_ATTR_RDONLY);
        assert_eq!(o.recursive_clear, libc::MOUNT_ATTR_NOSUID);
    }

    #[test]
    fn recursive_atime_modes_clear_the_whole_field() {
        let o = opts(&["rbind", "rnoatime"]);
        assert_eq!(o.recursive_set, libc::MOUNT_ATTR_NOATIME);
        assert_eq!(o.recursive_clear, libc::MOUNT_ATTR__ATIME);
        let o = opts(&["rbind", "rnoatime", "rstrictatime", "rnodiratime"]);
        assert_eq!(
            o.recursive_set,
            libc::MOUNT_ATTR_STRICTATIME | libc::MOUNT_ATTR_NODIRATIME
        );
        assert_eq!(o.recursive_clear, libc::MOUNT_ATTR__ATIME);
        let o = opts(&["rbind", "rnoatime", "ratime"]);
        assert_eq!(
            (o.recursive_set, o.recursive_clear),
            (0, libc::MOUNT_ATTR__ATIME)
        );
    }

    #[test]
    fn idmap_options_are_not_data() {
        assert_eq!(opts(&["rbind", "idmap"]).idmap, Some(false));
        let o = opts(&["bind", "ridmap", "ro"]);
        assert_eq!(o.idmap, Some(true));
        assert!(o.data.is_empty());
        assert_eq!(opts(&["bind"]).idmap, None);
    }

    #[test]
    fn devpts_options_become_data() {
        let o = opts(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data_string(), "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn tmpcopyup_is_an_extension_not_filesystem_data() {
        let o = opts(&["nosuid", "tmpcopyup", "size=1m"]);
        assert!(o.copy_up);
        assert_eq!(o.data_string(), "size=1m");
        assert!(!opts(&["nosuid"]).copy_up);
    }

    #[test]
    fn propagation_values() {
        assert_eq!(
            propagation_flag("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(propagation_flag("bogus"), None);
    }
}
