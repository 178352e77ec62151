//! cgroup v2 specifics: the planned file writes for `linux.resources`, enabling controllers down
//! the tree, the freezer state and `cgroup.kill`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxResources};

use super::plan::{
    check_memory_usage, device_number, hugepage_size, memory_values, pids_max, rdma_lines, Bfq,
    Facts, Write,
};
use super::{dirs_below, mkdir, write_file, Hierarchy};

/// The kernel's default `cpu.max` period, used when only a quota is given.
const DEFAULT_PERIOD: u64 = 100_000;

/// The cgroup v2 writes for `r`, in runc's order: pids, memory, io, cpu, cpuset, hugetlb, rdma, unified (device
/// rules become an eBPF program, not writes).
///
/// What runc's cgroup2 manager leaves aside is left aside here too: `memory.kernel`, `memory.kernelTCP`,
/// `memory.swappiness`, `memory.disableOOMKiller`, `cpu.realtimeRuntime`/`realtimePeriod`, `blockIO.leafWeight*`
/// and `network` have no cgroup2 file.
pub fn v2_writes(r: &LinuxResources, facts: &Facts) -> Result<Vec<Write>> {
    let mut writes = Vec::new();
    if let Some(pids) = r.pids() {
        writes.push(Write::new("", "pids.max", pids_max(pids.limit())));
    }
    memory_writes(r, facts, &mut writes)?;
    if let Some(blkio) = r.block_io() {
        io_writes(blkio, facts, &mut writes)?;
    }
    if let Some(cpu) = r.cpu() {
        cpu_writes(cpu, &mut writes);
        for (file, value) in [("cpuset.cpus", cpu.cpus()), ("cpuset.mems", cpu.mems())] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                writes.push(Write::new("", file, value));
            }
        }
    }
    for limit in r.hugepage_limits().iter().flatten() {
        let size = hugepage_size(limit.page_size())?;
        let value = match limit.limit() {
            -1 => "max".to_owned(),
            l if l < 0 => bail!("linux.resources.hugepageLimits: limit {l} for {size} is invalid"),
            l => l.to_string(),
        };
        // The reservation limit beside the fault limit where the kernel has it (5.7+), as runc since 1.1.10.
        writes.push(Write::new("", format!("hugetlb.{size}.max"), &value));
        writes.push(Write::new("", format!("hugetlb.{size}.rsvd.max"), value).if_present());
    }
    for line in rdma_lines(r) {
        writes.push(Write::new("", "rdma.max", line));
    }
    unified_writes(r, facts, &mut writes)?;
    Ok(writes)
}

/// What `v2_writes` needs to know of the live cgroup `dir`, read only for the resources that are set.
pub(super) fn facts(dir: &Path, r: &LinuxResources) -> Result<Facts> {
    let mut facts = Facts::default();
    if r.memory().and_then(|m| m.check_before_update()) == Some(true) {
        facts.memory_usage =
            read_optional(&dir.join("memory.current"))?.and_then(|t| t.trim().parse().ok());
    }
    if r.block_io().is_some() {
        facts.bfq = match read_optional(&dir.join("io.bfq.weight"))? {
            None => Bfq::Absent,
            Some(text) if text.trim().parse::<u64>().is_ok() => Bfq::DefaultOnly,
            Some(_) => Bfq::PerDevice,
        };
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        let controllers = read_optional(&dir.join("cgroup.controllers"))?.unwrap_or_default();
        facts.controllers = controllers.split_whitespace().map(str::to_owned).collect();
    }
    Ok(facts)
}

/// -1 is "max", 0 unset (nothing written), anything else the number.
fn num_to_str(value: i64) -> Option<String> {
    match value {
        0 => None,
        -1 => Some("max".to_owned()),
        v => Some(v.to_string()),
    }
}

/// OCI `memory.swap` is memory+swap (the v1 memsw meaning); cgroup2's `memory.swap.max` is swap alone, so it gets
/// swap - limit, with runc's special cases and checks (ConvertMemorySwapToCgroupV2Value).
pub(super) fn swap_max(swap: i64, limit: i64) -> Result<i64> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        bail!("unable to set swap limit without memory limit");
    }
    if swap < limit {
        bail!("memory+swap limit should be >= memory limit");
    }
    Ok(swap - limit)
}

fn memory_writes(r: &LinuxResources, facts: &Facts, writes: &mut Vec<Write>) -> Result<()> {
    let (limit, swap, reservation) = memory_values(r)?;
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    check_memory_usage(r, facts)?;
    let swap_v2 = swap_max(swap, limit)?;
    // Memory and memory+swap equal: no swap at all, written as 0 (an empty write would mean the same to the kernel,
    // but runc never writes an empty value).
    let swap_value = num_to_str(swap_v2).or_else(|| (swap > 0).then(|| "0".to_owned()));
    let values = [
        ("memory.swap.max", swap_value),
        ("memory.max", num_to_str(limit)),
        ("memory.low", num_to_str(reservation)),
    ];
    for (file, value) in values {
        if let Some(value) = value {
            writes.push(Write::new("", file, value));
        }
    }
    Ok(())
}

/// runc's setIo: the weight goes to BFQ's `io.bfq.weight` when the host has it, else to `io.weight` converted from
/// the blkio range; per-device weights only where BFQ takes them; throttles become `io.max` lines.
fn io_writes(b: &LinuxBlockIo, facts: &Facts, writes: &mut Vec<Write>) -> Result<()> {
    if let Some(weight) = b.weight().filter(|&w| w != 0) {
        if facts.bfq == Bfq::Absent {
            writes.push(Write::new("", "io.weight", blkio_to_io_weight(weight)?));
        } else {
            writes.push(Write::new("", "io.bfq.weight", weight));
        }
    }
    if facts.bfq == Bfq::PerDevice {
        for d in b.weight_device().iter().flatten() {
            let device = device_number("weightDevice", d.major(), d.minor())?;
            if let Some(w) = d.weight().filter(|&w| w != 0) {
                writes.push(Write::new("", "io.bfq.weight", format!("{device} {w}")));
            }
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (field, key, devices) in throttles {
        for d in devices.iter().flatten() {
            let device = device_number(field, d.major(), d.minor())?;
            writes.push(Write::new(
                "",
                "io.max",
                format!("{device} {key}={}", d.rate()),
            ));
        }
    }
    Ok(())
}

/// blkio weight [10, 1000] to io.weight [1, 10000], linearly as runc (ConvertBlkIOToIOWeightValue).
fn blkio_to_io_weight(weight: u16) -> Result<u64> {
    if !(10..=1000).contains(&weight) {
        bail!("linux.resources.blockIO.weight {weight} is out of range: use 10 to 1000");
    }
    Ok(1 + (u64::from(weight) - 10) * 9999 / 990)
}

/// runc's setCPU: `cpu.idle`, the weight (not while idle), the burst (retried after `cpu.max` if refused before
/// it), and `cpu.max` as "quota period" with "max" for an unset or negative quota and the kernel's default period.
fn cpu_writes(cpu: &LinuxCpu, writes: &mut Vec<Write>) {
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    if let Some(idle) = cpu.idle() {
        writes.push(Write::new("", "cpu.idle", idle));
    }
    if let Some(shares) = cpu.shares().filter(|&v| v != 0) {
        if cpu.idle().unwrap_or(0) == 0 {
            writes.push(Write::new("", "cpu.weight", shares_to_weight(shares)));
        }
    }
    if let Some(burst) = cpu.burst() {
        writes.push(Write::new("", "cpu.max.burst", burst).retried_after_next(quota != 0));
    }
    if quota != 0 || period != 0 {
        let quota = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_owned()
        };
        let period = if period == 0 { DEFAULT_PERIOD } else { period };
        writes.push(Write::new("", "cpu.max", format!("{quota} {period}")));
    }
}

/// `unified`: each key is a file of the container's cgroup, written line by line, after everything else (so it
/// wins), keys in sorted order. runc's checks and messages for a key that is not a plain CONTROLLER.PARAMETER file
/// name or names a controller the cgroup does not have.
fn unified_writes(r: &LinuxResources, facts: &Facts, writes: &mut Vec<Write>) -> Result<()> {
    let mut entries: Vec<_> = r.unified().iter().flatten().collect();
    entries.sort();
    for (key, value) in entries {
        if key.contains('/') {
            bail!("unified resource {key:?} must be a file name (no slashes)");
        }
        let Some((controller, _)) = key.split_once('.') else {
            bail!("unified resource {key:?} must be in the form CONTROLLER.PARAMETER");
        };
        if controller != "cgroup" && !facts.controllers.iter().any(|c| c == controller) {
            bail!("unified resource {key:?} can't be set: controller {controller:?} not available");
        }
        let lines: Vec<&str> = if value.contains('\n') {
            value.split('\n').filter(|l| !l.is_empty()).collect()
        } else {
            vec![value.as_str()]
        };
        for line in lines {
            let mut write = Write::new("", key.as_str(), line);
            write.context = Some(format!("unable to set unified resource {key:?}"));
            writes.push(write);
        }
    }
    Ok(())
}

/// cgroup v1 cpu.shares [2, 262144] (default 1024) to cgroup v2 cpu.weight [1, 10000] (default 100),
/// with the formula runc (>= 1.3.2, opencontainers/cgroups#20) and crun (>= 1.23) use: a quadratic
/// in log2(shares) through both ends of the ranges and the defaults.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
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

/// Writes `cgroup.freeze` and, to freeze, waits (up to 10 s, as runc) for `cgroup.events` to say "frozen 1".
pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let path = dir.join("cgroup.freeze");
    if !path.exists() {
        if !frozen {
            return Ok(());
        }
        bail!("freezer not supported: {} does not exist", path.display());
    }
    write_file(&path, if frozen { "1" } else { "0" })?;
    if !frozen {
        return Ok(());
    }
    for _ in 0..1000 {
        if is_frozen(dir)? {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!(
        "timeout of 10s reached waiting for the cgroup {} to freeze",
        dir.display()
    )
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

/// Writes "1" to `cgroup.kill`: false when the kernel (< 5.14) has no such file, true when done or the cgroup is gone.
pub(super) fn kill(dir: &Path) -> Result<bool> {
    let path = dir.join("cgroup.kill");
    match fs::write(&path, "1") {
        Ok(()) => Ok(true),
        // No cgroup.kill in a cgroup that exists: a kernel before 5.14.
        Err(err) if err.kind() == io::ErrorKind::NotFound && dir.exists() => Ok(false),
        // The cgroup went meanwhile (a systemd scope goes with its last process; a racing delete): nothing to kill.
        Err(err)
            if err.kind() == io::ErrorKind::NotFound
                || err.raw_os_error() == Some(libc::ENODEV) =>
        {
            Ok(true)
        }
        Err(err) => Err(err).with_context(|| format!("write 1 to {}", path.display())),
    }
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
        writes_with(json, &Facts::default())
    }

    fn writes_with(json: &str, facts: &Facts) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        for w in v2_writes(&serde_json::from_str(json).unwrap(), facts).unwrap() {
            let file: &'static str = Box::leak(w.file.into_boxed_str());
            pairs.push((file, w.value));
        }
        pairs
    }

    fn error_with(json: &str, facts: &Facts) -> String {
        v2_writes(&serde_json::from_str(json).unwrap(), facts)
            .unwrap_err()
            .to_string()
    }

    fn error(json: &str) -> String {
        error_with(json, &Facts::default())
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
            [pair("memory.swap.max", "max"), pair("memory.max", "max")],
            "unlimited memory with swap unset: swap unlimited too"
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

    fn pair(file: &'static str, value: &str) -> (&'static str, String) {
        (file, value.to_owned())
    }

    #[test]
    fn swap_is_memory_plus_swap_minus_memory() {
        let cases = [
            (
                r#"{"limit":209715200,"swap":314572800}"#,
                vec![
                    pair("memory.swap.max", "104857600"),
                    pair("memory.max", "209715200"),
                ],
            ),
            (
                r#"{"limit":20971520,"swap":20971520}"#,
                vec![pair("memory.swap.max", "0"), pair("memory.max", "20971520")],
            ),
            (
                r#"{"limit":-1}"#,
                vec![pair("memory.swap.max", "max"), pair("memory.max", "max")],
            ),
            (
                r#"{"limit":100,"swap":-1}"#,
                vec![pair("memory.swap.max", "max"), pair("memory.max", "100")],
            ),
            (r#"{"reservation":4096}"#, vec![pair("memory.low", "4096")]),
        ];
        for (memory, expected) in cases {
            assert_eq!(
                writes(&format!(r#"{{"memory":{memory}}}"#)),
                expected,
                "{memory}"
            );
        }
        assert_eq!(
            error(r#"{"memory":{"swap":100}}"#),
            "unable to set swap limit without memory limit"
        );
        assert_eq!(
            error(r#"{"memory":{"limit":200,"swap":100}}"#),
            "memory+swap limit should be >= memory limit"
        );
        let facts = Facts {
            memory_usage: Some(300),
            ..Facts::default()
        };
        assert_eq!(
            error_with(
                r#"{"memory":{"limit":200,"checkBeforeUpdate":true}}"#,
                &facts
            ),
            "rejecting memory limit 200 <= usage 300"
        );
    }

    #[test]
    fn what_cgroup2_has_no_file_for_is_left_aside_as_by_runc() {
        let json = r#"{"memory":{"kernel":2,"kernelTCP":2,"swappiness":0,"disableOOMKiller":true},
            "cpu":{"realtimeRuntime":10,"realtimePeriod":10},
            "blockIO":{"leafWeight":10},"network":{"classID":1}}"#;
        assert!(writes(json).is_empty(), "{:?}", writes(json));
    }

    #[test]
    fn io_weight_bfq_and_max() {
        let json = r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":600}],
            "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
            "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":31457280}],
            "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":100}],
            "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":200}]}}"#;
        let max = [
            pair("io.max", "8:0 rbps=1048576"),
            pair("io.max", "8:0 wbps=31457280"),
            pair("io.max", "8:0 riops=100"),
            pair("io.max", "8:0 wiops=200"),
        ];
        let mut expected = vec![pair("io.weight", "4950")];
        expected.extend(max.clone());
        assert_eq!(
            writes(json),
            expected,
            "no BFQ: converted io.weight, device weights skipped"
        );
        let bfq = Facts {
            bfq: Bfq::PerDevice,
            ..Facts::default()
        };
        let mut expected = vec![
            pair("io.bfq.weight", "500"),
            pair("io.bfq.weight", "8:0 600"),
        ];
        expected.extend(max);
        assert_eq!(writes_with(json, &bfq), expected);
        assert_eq!(blkio_to_io_weight(10).unwrap(), 1);
        assert_eq!(blkio_to_io_weight(1000).unwrap(), 10000);
        assert_eq!(
            error(r#"{"blockIO":{"weight":5}}"#),
            "linux.resources.blockIO.weight 5 is out of range: use 10 to 1000"
        );
    }

    #[test]
    fn cpu_idle_burst_cpuset() {
        assert_eq!(
            writes(
                r#"{"cpu":{"shares":1024,"idle":1,"burst":5000,"quota":20000,"cpus":"0","mems":"0"}}"#
            ),
            [
                pair("cpu.idle", "1"),
                pair("cpu.max.burst", "5000"),
                pair("cpu.max", "20000 100000"),
                pair("cpuset.cpus", "0"),
                pair("cpuset.mems", "0"),
            ],
            "no weight while idle"
        );
    }

    #[test]
    fn hugetlb_rdma_and_unified_last() {
        let facts = Facts {
            controllers: vec!["memory".into(), "pids".into()],
            ..Facts::default()
        };
        assert_eq!(
            writes_with(
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":-1},{"pageSize":"1GB","limit":1073741824}],
                    "rdma":{"mlx4_0":{"hcaObjects":3}},
                    "unified":{"pids.max":"10","memory.high":"1000000","cgroup.type":"threaded"},
                    "pids":{"limit":5}}"#,
                &facts
            ),
            [
                pair("pids.max", "5"),
                pair("hugetlb.2MB.max", "max"),
                pair("hugetlb.2MB.rsvd.max", "max"),
                pair("hugetlb.1GB.max", "1073741824"),
                pair("hugetlb.1GB.rsvd.max", "1073741824"),
                pair("rdma.max", "mlx4_0 hca_object=3"),
                pair("cgroup.type", "threaded"),
                pair("memory.high", "1000000"),
                pair("pids.max", "10"),
            ]
        );
        assert_eq!(
            writes_with(r#"{"unified":{"memory.high":"1\n2\n"}}"#, &facts),
            [pair("memory.high", "1"), pair("memory.high", "2")],
            "line by line"
        );
        let cases = [
            (
                "../memory.max",
                "unified resource \"../memory.max\" must be a file name (no slashes)",
            ),
            (
                "memorymax",
                "unified resource \"memorymax\" must be in the form CONTROLLER.PARAMETER",
            ),
            (
                "cpu.weight",
                "unified resource \"cpu.weight\" can't be set: controller \"cpu\" not available",
            ),
        ];
        for (key, message) in cases {
            let json = format!(r#"{{"unified":{{"{key}":"1"}}}}"#);
            assert_eq!(error_with(&json, &facts), message);
        }
    }
}
