//! The host's resctrl filesystem: where it is mounted and which RDT features its `info/` directory offers
//! (runc's `root()` and `featuresInit`).

use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, RDTGROUP_SUPER_MAGIC};

use crate::logger::{self, Level};
use crate::mountinfo::{self, Mount};

/// Where the kernel offers resctrl (an empty directory until the user mounts it there).
const DEFAULT_MOUNTPOINT: &str = "/sys/fs/resctrl";

/// The mounted resctrl filesystem and its enabled features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    root: PathBuf,
    cat: bool,
    mba: bool,
    monitoring: MonitoringFeatures,
}

/// The monitoring events listed in `info/L3_MON/mon_features`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitoringFeatures {
    pub mbm_total_bytes: bool,
    pub mbm_local_bytes: bool,
    pub llc_occupancy: bool,
}

impl Host {
    /// The host's resctrl, or None when it is not mounted. As runc: `statfs("/sys/fs/resctrl")` failing (the kernel
    /// lacks resctrl) means none; resctrl there is the answer; otherwise the first `resctrl` mount in
    /// `/proc/self/mountinfo`. Every failure to find out means "not enabled", as in runc.
    pub fn detect() -> Option<Host> {
        let fs = statfs(DEFAULT_MOUNTPOINT).ok()?;
        if fs.filesystem_type() == RDTGROUP_SUPER_MAGIC {
            return Some(Host::at(DEFAULT_MOUNTPOINT));
        }
        let mounts = mountinfo::read().ok()?;
        resctrl_mountpoint(&mounts).map(Host::at)
    }

    /// The resctrl filesystem mounted at `root`, with its features read from `root/info` (runc's `featuresInit`):
    /// CAT when `info/L3` exists, MBA when `info/MB` exists, monitoring events from `info/L3_MON/mon_features`
    /// (none when that cannot be read). Unknown events are logged as warnings, with runc's text.
    pub fn at(root: impl Into<PathBuf>) -> Host {
        let root = root.into();
        let info = root.join("info");
        let monitoring = if info.join("L3_MON").exists() {
            std::fs::read_to_string(info.join("L3_MON/mon_features"))
                .map(|text| {
                    MonitoringFeatures::parse(&text, |feature| {
                        logger::log(
                            Level::Warning,
                            &format!("Unsupported Intel RDT monitoring feature: {feature}"),
                        );
                    })
                })
                .unwrap_or_default()
        } else {
            MonitoringFeatures::default()
        };
        Host {
            cat: info.join("L3").exists(),
            mba: info.join("MB").exists(),
            monitoring,
            root,
        }
    }

    /// The mount point: the root control group, which holds `info/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Cache Allocation Technology: `l3CacheSchema` can be set.
    pub fn cat_enabled(&self) -> bool {
        self.cat
    }

    /// Memory Bandwidth Allocation: `memBwSchema` can be set.
    pub fn mba_enabled(&self) -> bool {
        self.mba
    }

    /// Memory Bandwidth Monitoring: total or local byte counters in `mon_data`.
    pub fn mbm_enabled(&self) -> bool {
        self.monitoring.mbm_total_bytes || self.monitoring.mbm_local_bytes
    }

    /// Cache Monitoring Technology: the LLC occupancy counter in `mon_data`.
    pub fn cmt_enabled(&self) -> bool {
        self.monitoring.llc_occupancy
    }

    /// The individual monitoring events.
    pub fn monitoring(&self) -> MonitoringFeatures {
        self.monitoring
    }
}

impl MonitoringFeatures {
    /// One event per line (runc's `parseMonFeatures`); `unknown` is told every other line.
    pub fn parse(text: &str, mut unknown: impl FnMut(&str)) -> MonitoringFeatures {
        let mut features = MonitoringFeatures::default();
        for line in text.lines() {
            match line {
                "mbm_total_bytes" => features.mbm_total_bytes = true,
                "mbm_local_bytes" => features.mbm_local_bytes = true,
                "llc_occupancy" => features.llc_occupancy = true,
                other => unknown(other),
            }
        }
        features
    }
}

/// The first resctrl mount, as runc's `findIntelRdtMountpointDir` picks it.
fn resctrl_mountpoint(mounts: &[Mount]) -> Option<&Path> {
    mounts
        .iter()
        .find(|mount| mount.fstype == "resctrl")
        .map(|mount| mount.mountpoint.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resctrl::fake::FakeResctrl;

    #[test]
    fn mon_features_parse_known_events_and_report_the_rest() {
        let mut unknown = Vec::new();
        let features = MonitoringFeatures::parse(
            "mbm_total_bytes\nmbm_local_bytes_config\nllc_occupancy\n",
            |f| unknown.push(f.to_owned()),
        );
        assert_eq!(
            features,
            MonitoringFeatures {
                mbm_total_bytes: true,
                mbm_local_bytes: false,
                llc_occupancy: true
            }
        );
        assert_eq!(unknown, ["mbm_local_bytes_config"]);
        assert_eq!(
            MonitoringFeatures::parse("", |_| panic!("no lines")),
            MonitoringFeatures::default()
        );
    }

    #[test]
    fn features_come_from_the_info_directory() {
        let bare = FakeResctrl::new();
        let host = bare.host();
        assert_eq!(host.root(), bare.root());
        assert!(!host.cat_enabled() && !host.mba_enabled());
        assert!(!host.mbm_enabled() && !host.cmt_enabled());

        let full = FakeResctrl::new()
            .with_cat()
            .with_mba()
            .with_monitoring("mbm_local_bytes\nllc_occupancy\n");
        let host = full.host();
        assert!(host.cat_enabled() && host.mba_enabled());
        assert!(host.mbm_enabled() && host.cmt_enabled());
        assert!(!host.monitoring().mbm_total_bytes);
    }

    #[test]
    fn unreadable_mon_features_mean_no_monitoring() {
        let fake = FakeResctrl::new();
        std::fs::create_dir_all(fake.root().join("info/L3_MON")).unwrap();
        assert_eq!(fake.host().monitoring(), MonitoringFeatures::default());
    }

    #[test]
    fn the_first_resctrl_mount_is_the_root() {
        let mounts = mountinfo::parse(
            "22 1 0:21 / /sys rw - sysfs sysfs rw\n\
             40 22 0:35 / /mnt/rdt rw - resctrl resctrl rw\n\
             41 22 0:35 / /other rw - resctrl resctrl rw\n",
        )
        .unwrap();
        assert_eq!(resctrl_mountpoint(&mounts), Some(Path::new("/mnt/rdt")));
        assert_eq!(resctrl_mountpoint(&mounts[..1]), None);
    }

    #[test]
    fn detect_finds_a_mounted_root_or_nothing() {
        if let Some(host) = Host::detect() {
            assert!(host.root().join("schemata").exists());
        }
    }
}
