//! cgroup v1 specifics: the planned file writes for `linux.resources` (including the devices
//! allow/deny list), cpuset directory creation and the freezer state.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxBlockIo, LinuxResources};

use super::devices;
use super::plan::{
    check_memory_usage, device_number, hugepage_size, memory_values, pids_max, rdma_lines, Facts,
    Write,
};
use super::{dirs_below, errno_of, mkdir, write_file, Hierarchy};

/// The cgroup v1 writes for `r`, in runc's order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls,
/// net_prio, rdma.
///
/// Devices follow runc: starting from deny-all, the `linux.resources.devices` rules and then runc's default allowed
/// devices are folded into one policy, written as a reset ("a" to `devices.deny`, or to `devices.allow` when the
/// rules allow everything) followed by its exceptions sorted by (major, minor, type). Zero means unset for the
/// memory, cpu and blkio numbers, as in runc; `unified` is refused (cgroup2 only).
pub fn v1_writes(r: &LinuxResources, facts: &Facts) -> Result<Vec<Write>> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        bail!("invalid configuration: cannot use unified on cgroup v1");
    }
    check_memory_usage(r, facts)?;
    let mut writes = Vec::new();
    if let Some(cpu) = r.cpu() {
        for (file, value) in [("cpuset.cpus", cpu.cpus()), ("cpuset.mems", cpu.mems())] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                writes.push(Write::new("cpuset", file, value));
            }
        }
    }
    writes.extend(
        device_writes(r)?
            .into_iter()
            .map(|(file, rule)| Write::new("devices", file, rule)),
    );
    memory_writes(r, facts, &mut writes)?;
    cpu_writes(r, &mut writes);
    if let Some(pids) = r.pids() {
        writes.push(Write::new("pids", "pids.max", pids_max(pids.limit())));
    }
    if let Some(blkio) = r.block_io() {
        blkio_writes(blkio, facts, &mut writes)?;
    }
    for limit in r.hugepage_limits().iter().flatten() {
        let size = hugepage_size(limit.page_size())?;
        if limit.limit() < 0 {
            bail!(
                "linux.resources.hugepageLimits: limit {} for {size} is invalid",
                limit.limit()
            );
        }
        // The reservation limit beside the fault limit where the kernel has it (5.7+), as runc since 1.1.10.
        let file = format!("hugetlb.{size}.limit_in_bytes");
        writes.push(Write::new("hugetlb", file, limit.limit()));
        let file = format!("hugetlb.{size}.rsvd.limit_in_bytes");
        writes.push(Write::new("hugetlb", file, limit.limit()).if_present());
    }
    if let Some(network) = r.network() {
        if let Some(class_id) = network.class_id().filter(|&c| c != 0) {
            writes.push(Write::new("net_cls", "net_cls.classid", class_id));
        }
        for p in network.priorities().iter().flatten() {
            let line = format!("{} {}", p.name(), p.priority());
            writes.push(Write::new("net_prio", "net_prio.ifpriomap", line));
        }
    }
    for line in rdma_lines(r) {
        writes.push(Write::new("rdma", "rdma.max", line));
    }
    Ok(writes)
}

/// runc's setMemoryAndSwap and the rest of the memory controller. When both the limit and memory+swap are set,
/// memsw goes first if it grows past the current limit (or is unlimited), so that the kernel's memsw >= memory check
/// holds after every single write. Memory -1 with swap unset makes memsw -1 too where swap accounting exists.
fn memory_writes(r: &LinuxResources, facts: &Facts, writes: &mut Vec<Write>) -> Result<()> {
    let (limit, mut swap, reservation) = memory_values(r)?;
    if limit == -1 && swap == 0 && facts.swap_accounting {
        swap = -1;
    }
    let memory = Write::new("memory", "memory.limit_in_bytes", limit);
    let memsw = Write::new("memory", "memory.memsw.limit_in_bytes", swap);
    let memsw_first = limit != 0
        && swap != 0
        && (swap == -1 || facts.memory_limit.is_some_and(|now| now < swap as u64));
    if memsw_first {
        writes.extend([memsw, memory]);
    } else {
        writes.extend(
            [(limit, memory), (swap, memsw)]
                .into_iter()
                .filter(|w| w.0 != 0)
                .map(|w| w.1),
        );
    }
    if reservation != 0 {
        writes.push(Write::new(
            "memory",
            "memory.soft_limit_in_bytes",
            reservation,
        ));
    }
    let Some(m) = r.memory() else {
        return Ok(());
    };
    if let Some(tcp) = m.kernel_tcp().filter(|&v| v != 0) {
        writes.push(Write::new("memory", "memory.kmem.tcp.limit_in_bytes", tcp));
    }
    if m.disable_oom_killer() == Some(true) {
        writes.push(Write::new("memory", "memory.oom_control", 1));
    }
    if let Some(swappiness) = m.swappiness() {
        if swappiness > 100 {
            bail!("invalid memory swappiness value: {swappiness} (valid range is 0-100)");
        }
        writes.push(Write::new("memory", "memory.swappiness", swappiness));
    }
    Ok(())
}

/// runc's cpu controller: shares, then the cfs period and burst (each retried after the quota if the kernel refuses
/// it before), the quota, `cpu.idle`, and the realtime period (retried after the runtime likewise) and runtime.
fn cpu_writes(r: &LinuxResources, writes: &mut Vec<Write>) {
    let Some(cpu) = r.cpu() else {
        return;
    };
    if let Some(shares) = cpu.shares().filter(|&v| v != 0) {
        writes.push(Write::new("cpu", "cpu.shares", shares));
    }
    let quota = cpu.quota().unwrap_or(0);
    if let Some(period) = cpu.period().filter(|&v| v != 0) {
        writes.push(Write::new("cpu", "cpu.cfs_period_us", period).retried_after_next(quota != 0));
    }
    if let Some(burst) = cpu.burst() {
        writes.push(Write::new("cpu", "cpu.cfs_burst_us", burst).retried_after_next(quota != 0));
    }
    if quota != 0 {
        writes.push(Write::new("cpu", "cpu.cfs_quota_us", quota));
    }
    if let Some(idle) = cpu.idle() {
        writes.push(Write::new("cpu", "cpu.idle", idle));
    }
    let runtime = cpu.realtime_runtime().unwrap_or(0);
    if let Some(period) = cpu.realtime_period().filter(|&v| v != 0) {
        writes.push(Write::new("cpu", "cpu.rt_period_us", period).retried_after_next(runtime != 0));
    }
    if runtime != 0 {
        writes.push(Write::new("cpu", "cpu.rt_runtime_us", runtime));
    }
}

/// runc's blkio controller: weights (CFQ's `blkio.weight*` where present, else BFQ's `blkio.bfq.weight*`), leaf
/// weights, then the four throttle lists, one "major:minor value" write per device.
fn blkio_writes(b: &LinuxBlockIo, facts: &Facts, writes: &mut Vec<Write>) -> Result<()> {
    let (weight, weight_device) = if facts.blkio_weight {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        writes.push(Write::new("blkio", weight, w));
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        writes.push(Write::new("blkio", "blkio.leaf_weight", w));
    }
    for d in b.weight_device().iter().flatten() {
        let device = device_number("weightDevice", d.major(), d.minor())?;
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            writes.push(Write::new("blkio", weight_device, format!("{device} {w}")));
        }
        if let Some(w) = d.leaf_weight().filter(|&w| w != 0) {
            writes.push(Write::new(
                "blkio",
                "blkio.leaf_weight_device",
                format!("{device} {w}"),
            ));
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (field, file, devices) in throttles {
        for d in devices.iter().flatten() {
            let device = device_number(field, d.major(), d.minor())?;
            writes.push(Write::new("blkio", file, format!("{device} {}", d.rate())));
        }
    }
    Ok(())
}

/// What `v1_writes` needs to know of the live cgroup, read only for the resources that are set. `dir` gives the
/// container's directory in the hierarchy of a controller, if mounted.
pub(super) fn facts<'a>(
    dir: impl Fn(&str) -> Option<&'a Path>,
    r: &LinuxResources,
) -> Result<Facts> {
    let mut facts = Facts::default();
    if let (Some(memory), Some(m)) = (dir("memory"), r.memory()) {
        facts.swap_accounting = memory.join("memory.memsw.limit_in_bytes").exists();
        if m.limit().unwrap_or(0) != 0 && m.swap().unwrap_or(0) != 0 {
            facts.memory_limit = Some(read_number(&memory.join("memory.limit_in_bytes"))?);
        }
        if m.check_before_update() == Some(true) {
            facts.memory_usage = read_number(&memory.join("memory.usage_in_bytes")).ok();
        }
    }
    if let (Some(blkio), Some(_)) = (dir("blkio"), r.block_io()) {
        facts.blkio_weight = blkio.join("blkio.weight").exists();
    }
    Ok(facts)
}

fn read_number(path: &Path) -> Result<u64> {
    let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("parse {:?} in {}", text.trim(), path.display()))
}

/// Writes one of `v1_writes`' values. Like runc, a cpu.shares value the kernel clamped is an error, and a memory
/// limit refused as busy (below the usage) says what the usage is.
pub(super) fn write(path: &Path, value: &str) -> Result<()> {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if let Err(err) = write_file(path, value) {
        if file == "memory.limit_in_bytes" && errno_of(&err) == Some(Errno::EBUSY) {
            let dir = path.parent().unwrap_or(path);
            let usage = read_number(&dir.join("memory.usage_in_bytes"))?;
            let peak = read_number(&dir.join("memory.max_usage_in_bytes"))?;
            return Err(err.context(format!(
                "unable to set memory limit to {value} (current usage: {usage}, peak usage: {peak})"
            )));
        }
        return Err(err);
    }
    if file == "cpu.shares" {
        check_shares(path, value)?;
    }
    Ok(())
}

/// The kernel clamps cpu.shares silently; like runc, report a value outside its range.
fn check_shares(path: &Path, wanted: &str) -> Result<()> {
    let got = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let got = got.trim();
    if got == wanted {
        return Ok(());
    }
    let bound = match (wanted.parse::<u64>(), got.parse::<u64>()) {
        (Ok(w), Ok(g)) if w > g => "maximum",
        _ => "minimum",
    };
    bail!(
        "cpu.shares {wanted} is out of range: the {bound} allowed is {got} ({})",
        path.display()
    )
}

/// Creates a cpuset cgroup level by level; a new level starts with empty `cpuset.cpus`/`cpuset.mems`,
/// which no task can join, so each empty one is copied from its parent (as runc does).
pub(super) fn create_cpuset(h: &Hierarchy, created: &mut Vec<PathBuf>) -> Result<()> {
    for dir in dirs_below(&h.mountpoint, &h.path)? {
        mkdir(&dir, created)?;
        let parent = dir.parent().unwrap_or(&h.mountpoint);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let read = |d: &Path| {
                let p = d.join(file);
                fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))
            };
            if read(&dir)?.trim().is_empty() {
                write_file(&dir.join(file), read(parent)?.trim())?;
            }
        }
    }
    Ok(())
}

/// Writes `freezer.state` and, to freeze, reads it back until the kernel reports FROZEN. A cgroup v1 freeze can stay
/// FREEZING while processes keep forking, so like runc this rewrites FROZEN, thawing and sleeping 10 ms every 50
/// attempts to let a fork storm settle. Unlike runc's 1000 quick attempts, each read waits a little longer than the
/// last within a round (about 0.13 s a round) and the whole takes up to 10 s: on a loaded machine a busy task may
/// not be scheduled to enter the freezer within runc's fraction of a second.
pub(super) fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let path = dir.join("freezer.state");
    if !frozen {
        return write_file(&path, "THAWED");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for attempt in 0u32.. {
        let in_round = attempt % 50;
        if in_round == 49 {
            write_file(&path, "THAWED")?;
            std::thread::sleep(Duration::from_millis(10));
        }
        write_file(&path, "FROZEN")?;
        std::thread::sleep(Duration::from_micros(100 * u64::from(in_round)));
        let state =
            fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        match state.trim() {
            "FROZEN" => return Ok(()),
            "FREEZING" if Instant::now() < deadline => continue,
            "FREEZING" => break,
            other => bail!(
                "unexpected state {other} in {} after writing FROZEN",
                path.display()
            ),
        }
    }
    write_file(&path, "THAWED")?;
    bail!(
        "unable to freeze: {} stayed FREEZING for 10 s",
        path.display()
    )
}

/// v1 `freezer.state` is FROZEN; a missing cgroup is not frozen.
pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    let path = dir.join("freezer.state");
    match fs::read_to_string(&path) {
        Ok(state) => Ok(state.trim() == "FROZEN"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
    }
}

/// The devices.deny/devices.allow writes for the final device policy of `r`.
fn device_writes(r: &LinuxResources) -> Result<Vec<(&'static str, String)>> {
    let policy = devices::policy(r)?;
    let (reset, exception) = if policy.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    let mut writes = vec![(reset, "a".to_owned())];
    writes.extend(
        policy
            .exceptions
            .iter()
            .map(|(&key, &access)| (exception, devices::format_rule(key, access))),
    );
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What runc writes for an empty device list: deny-all, then its default devices in order.
    const DEFAULT_DEVICES: [&str; 11] = [
        "b *:* m",
        "c *:* m",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
        "c 136:* rwm",
    ];

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn writes(json: &str) -> Vec<(&'static str, &'static str, String)> {
        writes_with(json, &Facts::default())
    }

    fn writes_with(json: &str, facts: &Facts) -> Vec<(&'static str, &'static str, String)> {
        let mut tuples = Vec::new();
        for w in v1_writes(&resources(json), facts).unwrap() {
            let file: &'static str = Box::leak(w.file.into_boxed_str());
            tuples.push((w.controller, file, w.value));
        }
        tuples
    }

    fn error(json: &str) -> String {
        format!(
            "{:#}",
            v1_writes(&resources(json), &Facts::default()).unwrap_err()
        )
    }

    /// The writes that are not to the devices controller.
    fn limits(json: &str) -> Vec<(&'static str, &'static str, String)> {
        limits_with(json, &Facts::default())
    }

    fn limits_with(json: &str, facts: &Facts) -> Vec<(&'static str, &'static str, String)> {
        writes_with(json, facts)
            .into_iter()
            .filter(|w| w.0 != "devices")
            .collect()
    }

    fn devices(rules: &str) -> Vec<(&'static str, String)> {
        device_writes(&resources(&format!(r#"{{"devices":{rules}}}"#))).unwrap()
    }

    fn device_error(rules: &str) -> String {
        error(&format!(r#"{{"devices":{rules}}}"#))
    }

    /// Deny-all, then the default devices with `extra` inserted at `at`.
    fn default_whitelist(at: usize, extra: &[&str]) -> Vec<(&'static str, String)> {
        let mut allowed: Vec<&str> = DEFAULT_DEVICES.to_vec();
        allowed.splice(at..at, extra.iter().copied());
        let mut expected = vec![("devices.deny", "a".to_owned())];
        expected.extend(allowed.iter().map(|r| ("devices.allow", r.to_string())));
        expected
    }

    #[test]
    fn no_resources_still_restrict_devices_like_runc() {
        let expected: Vec<_> = default_whitelist(0, &[])
            .into_iter()
            .map(|(file, rule)| ("devices", file, rule))
            .collect();
        assert_eq!(writes("{}"), expected);
    }

    #[test]
    fn memory_limit() {
        assert_eq!(
            limits(r#"{"memory":{"limit":104857600}}"#),
            vec![("memory", "memory.limit_in_bytes", "104857600".to_owned())]
        );
        assert_eq!(
            limits(r#"{"memory":{"limit":-1}}"#),
            vec![("memory", "memory.limit_in_bytes", "-1".to_owned())]
        );
        assert!(limits(r#"{"memory":{"limit":0}}"#).is_empty());
        assert!(
            error(r#"{"memory":{"limit":-3}}"#).contains("memory.limit -3 is invalid"),
            "{}",
            error(r#"{"memory":{"limit":-3}}"#)
        );
    }

    #[test]
    fn cpu_shares_period_before_quota() {
        assert_eq!(
            limits(r#"{"cpu":{"shares":512,"quota":20000,"period":50000}}"#),
            vec![
                ("cpu", "cpu.shares", "512".to_owned()),
                ("cpu", "cpu.cfs_period_us", "50000".to_owned()),
                ("cpu", "cpu.cfs_quota_us", "20000".to_owned()),
            ]
        );
        assert_eq!(
            limits(r#"{"cpu":{"quota":-1}}"#),
            vec![("cpu", "cpu.cfs_quota_us", "-1".to_owned())]
        );
        assert_eq!(
            limits(r#"{"cpu":{"period":100000}}"#),
            vec![("cpu", "cpu.cfs_period_us", "100000".to_owned())]
        );
        assert!(limits(r#"{"cpu":{"shares":0,"quota":0,"period":0}}"#).is_empty());
    }

    #[test]
    fn pids_limit() {
        for (limit, value) in [("32", "32"), ("0", "1"), ("-1", "max"), ("-9", "max")] {
            assert_eq!(
                limits(&format!(r#"{{"pids":{{"limit":{limit}}}}}"#)),
                vec![("pids", "pids.max", value.to_owned())],
                "limit {limit}"
            );
        }
    }

    #[test]
    fn order_is_runcs_subsystem_order() {
        let all = writes(
            r#"{"rdma":{"m":{"hcaHandles":1}},"network":{"classID":1,"priorities":[{"name":"lo","priority":1}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":1}],"blockIO":{"weight":10},
                "pids":{"limit":8},"cpu":{"shares":2,"quota":1000,"cpus":"0"},"memory":{"limit":4096},
                "devices":[{"allow":false,"access":"rwm"}]}"#,
        );
        let controllers: Vec<&str> = all.iter().map(|w| w.0).collect();
        let mut expected = vec!["cpuset"];
        expected.extend(vec!["devices"; DEFAULT_DEVICES.len() + 1]);
        expected.extend([
            "memory", "cpu", "cpu", "pids", "blkio", "hugetlb", "hugetlb", "net_cls", "net_prio",
            "rdma",
        ]);
        assert_eq!(controllers, expected);
    }

    fn w(
        controller: &'static str,
        file: &'static str,
        value: &str,
    ) -> (&'static str, &'static str, String) {
        (controller, file, value.to_owned())
    }

    #[test]
    fn memory_and_memsw_order_follows_the_current_limit() {
        let json = r#"{"memory":{"limit":209715200,"swap":314572800}}"#;
        let growing = Facts {
            memory_limit: Some(100),
            swap_accounting: true,
            ..Facts::default()
        };
        assert_eq!(
            limits_with(json, &growing),
            [
                w("memory", "memory.memsw.limit_in_bytes", "314572800"),
                w("memory", "memory.limit_in_bytes", "209715200"),
            ][..],
            "memsw first when it grows past the current limit"
        );
        let shrinking = Facts {
            memory_limit: Some(u64::MAX),
            swap_accounting: true,
            ..Facts::default()
        };
        assert_eq!(
            limits_with(json, &shrinking),
            [
                w("memory", "memory.limit_in_bytes", "209715200"),
                w("memory", "memory.memsw.limit_in_bytes", "314572800"),
            ][..]
        );
        let unlimited = Facts {
            swap_accounting: true,
            ..Facts::default()
        };
        assert_eq!(
            limits_with(r#"{"memory":{"limit":-1}}"#, &unlimited),
            [
                w("memory", "memory.memsw.limit_in_bytes", "-1"),
                w("memory", "memory.limit_in_bytes", "-1"),
            ][..],
            "unlimited memory with swap unset makes memsw unlimited where it exists"
        );
        assert_eq!(
            limits(r#"{"memory":{"limit":-1}}"#),
            [w("memory", "memory.limit_in_bytes", "-1")][..]
        );
    }

    #[test]
    fn memory_reservation_kernel_tcp_oom_and_swappiness() {
        assert_eq!(
            limits(
                r#"{"memory":{"reservation":1048576,"kernel":5,"kernelTCP":4096,"disableOOMKiller":true,
                    "swappiness":10,"useHierarchy":true}}"#
            ),
            [
                w("memory", "memory.soft_limit_in_bytes", "1048576"),
                w("memory", "memory.kmem.tcp.limit_in_bytes", "4096"),
                w("memory", "memory.oom_control", "1"),
                w("memory", "memory.swappiness", "10"),
            ][..]
        );
        assert_eq!(
            error(r#"{"memory":{"swappiness":101}}"#),
            "invalid memory swappiness value: 101 (valid range is 0-100)"
        );
        assert!(limits(r#"{"memory":{"disableOOMKiller":false}}"#).is_empty());
    }

    #[test]
    fn cpu_cpuset_burst_idle_and_realtime() {
        let all = writes(
            r#"{"cpu":{"shares":512,"quota":20000,"period":50000,"burst":1000,"idle":0,
                "realtimeRuntime":950000,"realtimePeriod":1000000,"cpus":"0-1","mems":"0"}}"#,
        );
        let cpu: Vec<_> = all.iter().filter(|w| w.0 != "devices").cloned().collect();
        assert_eq!(
            cpu,
            [
                w("cpuset", "cpuset.cpus", "0-1"),
                w("cpuset", "cpuset.mems", "0"),
                w("cpu", "cpu.shares", "512"),
                w("cpu", "cpu.cfs_period_us", "50000"),
                w("cpu", "cpu.cfs_burst_us", "1000"),
                w("cpu", "cpu.cfs_quota_us", "20000"),
                w("cpu", "cpu.idle", "0"),
                w("cpu", "cpu.rt_period_us", "1000000"),
                w("cpu", "cpu.rt_runtime_us", "950000"),
            ][..]
        );
        assert_eq!(all[0].0, "cpuset", "cpuset comes before devices");
        let planned = v1_writes(
            &resources(r#"{"cpu":{"quota":20000,"period":50000,"realtimePeriod":5}}"#),
            &Facts::default(),
        )
        .unwrap();
        let retried: Vec<_> = planned
            .iter()
            .filter(|w| w.retry_after_next)
            .map(|w| w.file.as_str())
            .collect();
        assert_eq!(
            retried,
            ["cpu.cfs_period_us"],
            "rt period without runtime is not retried"
        );
    }

    #[test]
    fn blkio_weights_and_throttles() {
        let json = r#"{"blockIO":{"weight":500,"leafWeight":300,
            "weightDevice":[{"major":8,"minor":0,"weight":600,"leafWeight":200},{"major":8,"minor":16,"weight":0}],
            "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
            "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":31457280}],
            "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":100}],
            "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":200}]}}"#;
        let cfq = Facts {
            blkio_weight: true,
            ..Facts::default()
        };
        assert_eq!(
            limits_with(json, &cfq),
            [
                w("blkio", "blkio.weight", "500"),
                w("blkio", "blkio.leaf_weight", "300"),
                w("blkio", "blkio.weight_device", "8:0 600"),
                w("blkio", "blkio.leaf_weight_device", "8:0 200"),
                w("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
                w("blkio", "blkio.throttle.write_bps_device", "8:0 31457280"),
                w("blkio", "blkio.throttle.read_iops_device", "8:0 100"),
                w("blkio", "blkio.throttle.write_iops_device", "8:0 200"),
            ][..]
        );
        let bfq = limits(
            r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":600}]}}"#,
        );
        assert_eq!(
            bfq,
            [
                w("blkio", "blkio.bfq.weight", "500"),
                w("blkio", "blkio.bfq.weight_device", "8:0 600"),
            ][..]
        );
        assert_eq!(
            error(r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-8,"minor":0,"rate":1}]}}"#),
            "linux.resources.blockIO.throttleReadBpsDevice: device -8:0 is invalid"
        );
    }

    #[test]
    fn hugetlb_network_rdma_and_unified() {
        assert_eq!(
            limits(
                r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                    "network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]},
                    "rdma":{"mlx4_0":{"hcaHandles":2}}}"#
            ),
            [
                w("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                w("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
                w("net_cls", "net_cls.classid", "1048577"),
                w("net_prio", "net_prio.ifpriomap", "eth0 5"),
                w("rdma", "rdma.max", "mlx4_0 hca_handle=2"),
            ][..]
        );
        assert_eq!(
            error(r#"{"unified":{"memory.high":"1"}}"#),
            "invalid configuration: cannot use unified on cgroup v1"
        );
        assert!(error(r#"{"hugepageLimits":[{"pageSize":"2M","limit":1}]}"#)
            .contains("page size \"2M\" is invalid"));
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let facts = Facts {
            memory_usage: Some(50_000_000),
            ..Facts::default()
        };
        let r = resources(r#"{"memory":{"limit":10000000,"checkBeforeUpdate":true}}"#);
        assert_eq!(
            v1_writes(&r, &facts).unwrap_err().to_string(),
            "rejecting memory limit 10000000 <= usage 50000000"
        );
    }

    #[test]
    fn deny_all_then_allowed_rules_sorted_by_major_minor_type() {
        let rules = r#"[{"allow":false,"access":"rwm"},
                        {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},
                        {"allow":true,"type":"b","major":8,"access":"r"}]"#;
        let expected: Vec<String> = [
            "b *:* m",
            "c *:* m",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
            "b 8:* r",
            "c 10:200 rwm",
            "c 10:229 rwm",
            "c 136:* rwm",
        ]
        .map(str::to_owned)
        .to_vec();
        let got = devices(rules);
        assert_eq!(got[0], ("devices.deny", "a".to_owned()));
        assert!(got[1..].iter().all(|w| w.0 == "devices.allow"), "{got:?}");
        let got: Vec<String> = got[1..].iter().map(|w| w.1.clone()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn missing_type_means_all_and_a_deny_all_resets_earlier_rules() {
        let rules = r#"[{"allow":true,"type":"c","major":4,"minor":1,"access":"rwm"},
                        {"allow":false,"access":"rwm"}]"#;
        assert_eq!(devices(rules), default_whitelist(0, &[]));
    }

    #[test]
    fn allow_all_keeps_deny_exceptions() {
        assert_eq!(
            devices(r#"[{"allow":true,"access":"rwm"}]"#),
            vec![("devices.allow", "a".to_owned())]
        );
        let rules = r#"[{"allow":true,"access":"rwm"},
                        {"allow":false,"type":"c","major":5,"minor":1,"access":"rwm"}]"#;
        assert_eq!(
            devices(rules),
            vec![
                ("devices.allow", "a".to_owned()),
                ("devices.deny", "c 5:1 rwm".to_owned()),
            ]
        );
    }

    #[test]
    fn deny_removes_part_of_an_allowed_exception() {
        let rules = r#"[{"allow":false,"access":"rwm"},
                        {"allow":true,"type":"c","major":4,"minor":1,"access":"rwm"},
                        {"allow":false,"type":"c","major":4,"minor":1,"access":"w"}]"#;
        assert_eq!(devices(rules), default_whitelist(7, &["c 4:1 rm"]));
        let rules = r#"[{"allow":false,"access":"rwm"},
                        {"allow":true,"type":"c","major":4,"minor":1,"access":"r"},
                        {"allow":false,"type":"c","major":4,"minor":1,"access":"r"}]"#;
        assert_eq!(devices(rules), default_whitelist(0, &[]));
    }

    #[test]
    fn punching_a_hole_in_a_wildcard_rule_is_refused() {
        let rules = r#"[{"allow":false,"access":"rwm"},
                        {"allow":true,"type":"c","access":"rw"},
                        {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#;
        assert_eq!(
            device_error(rules),
            "device rule c 1:3 w cannot be applied: it would punch a hole in the wildcard rule c *:* w"
        );
    }

    #[test]
    fn malformed_device_rules_are_refused() {
        assert_eq!(
            device_error(r#"[{"allow":true,"type":"c","major":1,"minor":3}]"#),
            "linux.resources.devices[0]: access cannot be empty"
        );
        assert_eq!(
            device_error(r#"[{"allow":true,"access":"rwm"},{"allow":true,"access":"rwx"}]"#),
            "linux.resources.devices[1]: access \"rwx\" has 'x': only r, w and m are allowed"
        );
        assert_eq!(
            device_error(r#"[{"allow":true,"type":"p","access":"rwm"}]"#),
            "linux.resources.devices[0]: device type \"p\" is not one the devices cgroup knows (a, b, c)"
        );
    }
}
