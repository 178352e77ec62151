//! The common vocabulary of the resource planners in `v1.rs` and `v2.rs`: a planned file write, the few facts about
//! the live cgroup that change what runc writes, and the value conversions both versions share.

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;

/// One planned write of a cgroup file.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// v1: the controller whose hierarchy holds the file; cgroup2: "".
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// Refused with EINVAL now, the write is tried again after the next one (runc's order for values that bound
    /// each other: the cfs period and burst are written before the quota, the rt period before the runtime).
    pub retry_after_next: bool,
    /// What the error of this write says it was doing, when the file name alone does not (`unified` keys).
    pub context: Option<String>,
    /// Written only where the kernel has the file (a file newer kernels added): a missing one is skipped.
    pub if_present: bool,
}

impl Write {
    pub fn new(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
        Write {
            controller,
            file: file.into(),
            value: value.to_string(),
            retry_after_next: false,
            context: None,
            if_present: false,
        }
    }

    pub fn if_present(mut self) -> Write {
        self.if_present = true;
        self
    }

    pub fn retried_after_next(mut self, retry: bool) -> Write {
        self.retry_after_next = retry;
        self
    }
}

/// How cgroup2's BFQ io scheduler takes weights (`io.bfq.weight`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Bfq {
    /// No `io.bfq.weight`: weights go to `io.weight`, converted; per-device weights are skipped, as by runc.
    #[default]
    Absent,
    /// Only a default weight (kernels before 5.4): per-device weights are skipped, as by runc.
    DefaultOnly,
    /// "default N" plus "major:minor N" lines.
    PerDevice,
}

/// What the planners need to know of the live cgroup (read by `Cgroup::apply` only for the resources that are set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// v1 `memory.limit_in_bytes` now: decides whether memsw or memory is written first.
    pub memory_limit: Option<u64>,
    /// Memory in use now (v1 `memory.usage_in_bytes`, v2 `memory.current`), for `memory.checkBeforeUpdate`.
    pub memory_usage: Option<u64>,
    /// v1 swap accounting is on (`memory.memsw.limit_in_bytes` exists).
    pub swap_accounting: bool,
    /// v1 `blkio.weight` exists (CFQ); otherwise the weights are BFQ's `blkio.bfq.weight*`.
    pub blkio_weight: bool,
    /// v2 BFQ weights.
    pub bfq: Bfq,
    /// v2 `cgroup.controllers` of the container's cgroup, for the `unified` error messages.
    pub controllers: Vec<String>,
}

/// `pids.max` for a `linux.resources.pids.limit`, as current runc: a positive limit as is, 0 as "1"
/// (systemd cannot express 0 and both runc drivers agree on 1), a negative one as "max".
pub fn pids_max(limit: i64) -> String {
    match limit {
        l if l > 0 => l.to_string(),
        0 => "1".to_owned(),
        _ => "max".to_owned(),
    }
}

/// The memory values (limit, swap, reservation), each 0 when unset (runc treats 0 as unset) and -1 for unlimited;
/// anything below -1 is refused.
pub fn memory_values(r: &LinuxResources) -> Result<(i64, i64, i64)> {
    let Some(m) = r.memory() else {
        return Ok((0, 0, 0));
    };
    let check = |name: &str, value: Option<i64>| -> Result<i64> {
        match value.unwrap_or(0) {
            v if v < -1 => bail!(
                "linux.resources.memory.{name} {v} is invalid: use a positive number of bytes or -1"
            ),
            v => Ok(v),
        }
    };
    Ok((
        check("limit", m.limit())?,
        check("swap", m.swap())?,
        check("reservation", m.reservation())?,
    ))
}

/// `memory.checkBeforeUpdate`: refuse a limit at or below what the cgroup already uses (runc's
/// CheckMemoryUsage; best effort, so an unknown usage passes).
pub fn check_memory_usage(r: &LinuxResources, facts: &Facts) -> Result<()> {
    let check = r
        .memory()
        .and_then(|m| m.check_before_update())
        .unwrap_or(false);
    let usage = match facts.memory_usage {
        Some(usage) if check && usage > 0 => usage,
        _ => return Ok(()),
    };
    let (limit, swap, _) = memory_values(r)?;
    if swap > 0 && swap as u64 <= usage {
        bail!("rejecting memory+swap limit {swap} <= usage {usage}");
    }
    if limit > 0 && limit as u64 <= usage {
        bail!("rejecting memory limit {limit} <= usage {usage}");
    }
    Ok(())
}

/// "major:minor" of a device in `blockIO`, refusing negative numbers.
pub fn device_number(field: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        bail!("linux.resources.blockIO.{field}: device {major}:{minor} is invalid");
    }
    Ok(format!("{major}:{minor}"))
}

/// A hugepage size as the kernel names its files ("2MB", "1GB", "64KB").
pub fn hugepage_size(size: &str) -> Result<&str> {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !["KB", "MB", "GB"].contains(&unit)
    {
        bail!("linux.resources.hugepageLimits: page size {size:?} is invalid: use a number with KB, MB or GB (\"2MB\")");
    }
    Ok(size)
}

/// `rdma.max` lines, one per device sorted by name: "mlx4_0 hca_handle=2 hca_object=2000".
pub fn rdma_lines(r: &LinuxResources) -> Vec<String> {
    let mut devices: Vec<_> = r.rdma().iter().flatten().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    devices
        .into_iter()
        .map(|(device, limits)| {
            let mut line = device.clone();
            if let Some(handles) = limits.hca_handles() {
                line.push_str(&format!(" hca_handle={handles}"));
            }
            if let Some(objects) = limits.hca_objects() {
                line.push_str(&format!(" hca_object={objects}"));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn memory_values_refuse_below_minus_one() {
        assert_eq!(
            memory_values(&resources(r#"{"memory":{"limit":5,"swap":-1}}"#)).unwrap(),
            (5, -1, 0)
        );
        let err = memory_values(&resources(r#"{"memory":{"reservation":-2}}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.memory.reservation -2 is invalid: use a positive number of bytes or -1"
        );
    }

    #[test]
    fn check_before_update_compares_with_usage() {
        let facts = Facts {
            memory_usage: Some(1000),
            ..Facts::default()
        };
        let r = resources(r#"{"memory":{"limit":1000,"checkBeforeUpdate":true}}"#);
        assert_eq!(
            check_memory_usage(&r, &facts).unwrap_err().to_string(),
            "rejecting memory limit 1000 <= usage 1000"
        );
        let r = resources(r#"{"memory":{"limit":2000,"swap":900,"checkBeforeUpdate":true}}"#);
        assert_eq!(
            check_memory_usage(&r, &facts).unwrap_err().to_string(),
            "rejecting memory+swap limit 900 <= usage 1000"
        );
        let r = resources(r#"{"memory":{"limit":1000}}"#);
        assert!(check_memory_usage(&r, &facts).is_ok(), "only when asked");
        let r = resources(r#"{"memory":{"limit":1000,"checkBeforeUpdate":true}}"#);
        assert!(
            check_memory_usage(&r, &Facts::default()).is_ok(),
            "unknown usage passes"
        );
    }

    #[test]
    fn hugepage_sizes() {
        assert_eq!(hugepage_size("2MB").unwrap(), "2MB");
        assert_eq!(hugepage_size("1GB").unwrap(), "1GB");
        for bad in ["2M", "MB", "2 MB", "../2MB", "x2MB", ""] {
            assert!(hugepage_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rdma_lines_sorted_with_the_set_fields() {
        let r = resources(
            r#"{"rdma":{"mlx5_1":{"hcaObjects":7},"mlx4_0":{"hcaHandles":2,"hcaObjects":2000}}}"#,
        );
        assert_eq!(
            rdma_lines(&r),
            ["mlx4_0 hca_handle=2 hca_object=2000", "mlx5_1 hca_object=7"]
        );
    }
}
