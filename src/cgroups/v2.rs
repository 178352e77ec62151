//! cgroup v2 specifics: the planned file writes for `linux.resources`, enabling controllers down
//! the tree, the freezer state and `cgroup.kill`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::runtime::LinuxResources;

use super::{dirs_below, memory_limit, mkdir, pids_max, reject_unsupported, write_file, Hierarchy};

/// The kernel's default `cpu.max` period, used when only a quota is given.
const DEFAULT_PERIOD: u64 = 100_000;

/// The cgroup v2 writes for `r`, in runc's order (pids, memory, cpu), as (file, value).
///
/// Memory limit -1 is "max" and 0 unset; cpu shares become `cpu.weight` (0 = unset); `cpu.max` is
/// "quota period" with a quota that is unset or not positive written "max" and the period defaulting
/// to 100000; device rules are not written (they need an eBPF program on v2).
pub fn v2_writes(r: &LinuxResources) -> Result<Vec<(&'static str, String)>> {
    reject_unsupported(r)?;
    let mut writes = Vec::new();
    if let Some(pids) = r.pids() {
        writes.push(("pids.max", pids_max(pids.limit())));
    }
    if let Some(limit) = memory_limit(r)? {
        let value = if limit == -1 {
            "max".to_owned()
        } else {
            limit.to_string()
        };
        writes.push(("memory.max", value));
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|&v| v != 0) {
            writes.push(("cpu.weight", shares_to_weight(shares).to_string()));
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let quota = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_owned()
            };
            let period = if period == 0 { DEFAULT_PERIOD } else { period };
            writes.push(("cpu.max", format!("{quota} {period}")));
        }
    }
    Ok(writes)
}

/// cgroup v1 cpu.shares [2, 262144] (default 1024) to cgroup v2 cpu.weight [1, 10000] (default 100),
/// with the formula runc (>= 1.3.2, opencontainers/cgroups#20) and crun (>= 1.23) use: a quadratic
/// in log2(shares) through both ends of the ranges and the defaults.
fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// mkdir -p of the container's cgroup, enabling in every ancestor (from the hierarchy root down to the
/// container's parent) each controller that ancestor has available, as runc's CreateCgroupPath.
pub(super) fn create(h: &Hierarchy, created: &mut Vec<PathBuf>) -> Result<()> {
    for dir in dirs_below(&h.mountpoint, &h.path)? {
        enable_controllers(dir.parent().unwrap_or(&h.mountpoint))?;
        mkdir(&dir, created)?;
    }
    Ok(())
}

/// Adds every controller of `dir`'s `cgroup.controllers` missing from its `cgroup.subtree_control`.
/// Like runc, when the kernel refuses them together each is tried alone and refusals are left to
/// surface when a limit is written (e.g. a controller the host keeps to itself).
fn enable_controllers(dir: &Path) -> Result<()> {
    let read = |file: &str| {
        let path = dir.join(file);
        fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let available = read("cgroup.controllers")?;
    let enabled = read("cgroup.subtree_control")?;
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let control = dir.join("cgroup.subtree_control");
    if write_file(&control, &missing.join(" ")).is_err() {
        for controller in &missing {
            let _ = write_file(&control, controller);
        }
    }
    Ok(())
}

/// `cgroup.freeze` is 1 and `cgroup.events` reports "frozen 1"; a missing cgroup (or a kernel
/// without the v2 freezer) is not frozen.
pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    let Some(freeze) = read_optional(&dir.join("cgroup.freeze"))? else {
        return Ok(false);
    };
    if freeze.trim() != "1" {
        return Ok(false);
    }
    let events = read_optional(&dir.join("cgroup.events"))?.unwrap_or_default();
    Ok(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// Writes "1" to `cgroup.kill`; false when the kernel (< 5.14) or the cgroup does not have it.
pub(super) fn kill(dir: &Path) -> Result<bool> {
    let path = dir.join("cgroup.kill");
    if !path.exists() {
        return Ok(false);
    }
    write_file(&path, "1")?;
    Ok(true)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(json: &str) -> Vec<(&'static str, String)> {
        v2_writes(&serde_json::from_str(json).unwrap()).unwrap()
    }

    fn error(json: &str) -> String {
        v2_writes(&serde_json::from_str(json).unwrap())
            .unwrap_err()
            .to_string()
    }

    fn one(file: &'static str, value: &str) -> Vec<(&'static str, String)> {
        vec![(file, value.to_owned())]
    }

    #[test]
    fn nothing_set_writes_nothing() {
        assert!(writes("{}").is_empty());
        assert!(writes(r#"{"memory":{},"cpu":{}}"#).is_empty());
    }

    #[test]
    fn memory_limit() {
        assert_eq!(
            writes(r#"{"memory":{"limit":104857600}}"#),
            one("memory.max", "104857600")
        );
        assert_eq!(
            writes(r#"{"memory":{"limit":-1}}"#),
            one("memory.max", "max")
        );
        assert!(writes(r#"{"memory":{"limit":0}}"#).is_empty());
        assert_eq!(
            error(r#"{"memory":{"limit":-2}}"#),
            "linux.resources.memory.limit -2 is invalid: use a positive number of bytes or -1"
        );
    }

    #[test]
    fn cpu_shares_to_weight() {
        let cases = [
            (1, "1"),
            (2, "1"),
            (3, "2"),
            (512, "59"),
            (1024, "100"),
            (2048, "174"),
            (262_143, "10000"),
            (262_144, "10000"),
            (262_145, "10000"),
        ];
        for (shares, weight) in cases {
            let json = format!(r#"{{"cpu":{{"shares":{shares}}}}}"#);
            assert_eq!(writes(&json), one("cpu.weight", weight), "shares {shares}");
        }
        assert!(writes(r#"{"cpu":{"shares":0}}"#).is_empty());
    }

    #[test]
    fn cpu_max() {
        let cases = [
            (r#"{"quota":20000}"#, "20000 100000"),
            (r#"{"quota":20000,"period":50000}"#, "20000 50000"),
            (r#"{"quota":-1}"#, "max 100000"),
            (r#"{"quota":-1,"period":50000}"#, "max 50000"),
            (r#"{"period":50000}"#, "max 50000"),
            (r#"{"quota":0,"period":50000}"#, "max 50000"),
        ];
        for (cpu, value) in cases {
            let json = format!(r#"{{"cpu":{cpu}}}"#);
            assert_eq!(writes(&json), one("cpu.max", value), "cpu {cpu}");
        }
        assert!(writes(r#"{"cpu":{"quota":0}}"#).is_empty());
        assert!(writes(r#"{"cpu":{"quota":0,"period":0}}"#).is_empty());
    }

    #[test]
    fn pids_limit() {
        let cases = [
            ("32", "32"),
            ("1", "1"),
            ("0", "1"),
            ("-1", "max"),
            ("-7", "max"),
        ];
        for (limit, value) in cases {
            let json = format!(r#"{{"pids":{{"limit":{limit}}}}}"#);
            assert_eq!(writes(&json), one("pids.max", value), "limit {limit}");
        }
    }

    #[test]
    fn order_is_pids_memory_cpu_and_devices_are_not_written() {
        let json = r#"{
            "devices":[{"allow":false,"access":"rwm"}],
            "cpu":{"shares":1024,"quota":20000,"period":100000},
            "memory":{"limit":104857600},
            "pids":{"limit":64}
        }"#;
        let expected = vec![
            ("pids.max", "64".to_owned()),
            ("memory.max", "104857600".to_owned()),
            ("cpu.weight", "100".to_owned()),
            ("cpu.max", "20000 100000".to_owned()),
        ];
        assert_eq!(writes(json), expected);
    }

    #[test]
    fn unsupported_resources_are_refused() {
        let cases = [
            (
                r#"{"memory":{"limit":1,"reservation":1}}"#,
                "memory.reservation",
            ),
            (r#"{"memory":{"swap":2}}"#, "memory.swap"),
            (r#"{"memory":{"kernel":2}}"#, "memory.kernel"),
            (r#"{"memory":{"kernelTCP":2}}"#, "memory.kernelTCP"),
            (r#"{"memory":{"swappiness":0}}"#, "memory.swappiness"),
            (
                r#"{"memory":{"disableOOMKiller":true}}"#,
                "memory.disableOOMKiller",
            ),
            (r#"{"cpu":{"cpus":"0"}}"#, "cpu.cpus"),
            (r#"{"cpu":{"mems":"0"}}"#, "cpu.mems"),
            (r#"{"cpu":{"realtimeRuntime":10}}"#, "cpu.realtimeRuntime"),
            (r#"{"cpu":{"realtimePeriod":10}}"#, "cpu.realtimePeriod"),
            (r#"{"cpu":{"idle":1}}"#, "cpu.idle"),
            (r#"{"cpu":{"burst":1}}"#, "cpu.burst"),
            (r#"{"blockIO":{"weight":10}}"#, "blockIO"),
            (
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#,
                "hugepageLimits",
            ),
            (r#"{"network":{"classID":1}}"#, "network"),
            (r#"{"rdma":{"mlx":{"hcaHandles":1}}}"#, "rdma"),
            (r#"{"unified":{"memory.high":"1"}}"#, "unified"),
        ];
        for (json, field) in cases {
            assert_eq!(
                error(json),
                format!("linux.resources.{field} is not supported yet"),
                "{json}"
            );
        }
    }

    #[test]
    fn unset_or_default_values_of_unsupported_resources_are_accepted() {
        let json = r#"{
            "memory":{"reservation":0,"swap":0,"kernel":0,"disableOOMKiller":false,
                      "useHierarchy":true,"checkBeforeUpdate":true},
            "cpu":{"cpus":"","mems":"","realtimeRuntime":0,"realtimePeriod":0},
            "blockIO":{},"hugepageLimits":[],"network":{},"rdma":{},"unified":{}
        }"#;
        assert!(writes(json).is_empty());
    }
}
