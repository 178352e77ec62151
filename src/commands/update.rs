use std::fs::File;
use std::io::Read;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map};

use crate::cli::{check_args, Arity, UpdateArgs};
use crate::container::Container;
use crate::resctrl;
use crate::state::{Lock, Root, Status};
use crate::units::ram_in_bytes;

/// `update [flags] <id>`: change the cgroup limits of a live container, as runc. `--resources FILE|-` (OCI
/// LinuxResources JSON) takes precedence over the single-value flags; zero means "unchanged" for every number, as
/// runc's cgroup managers skip zero values. Device rules are never changed (runc ignores them too).
pub fn run(root: &Root, args: &UpdateArgs) -> Result<i32> {
    check_args("update", &args.args, Arity::Exact(1))?;
    let container = Container::load(root, &args.args[0])?;
    let _lock = Lock::acquire(&container.dir)?;
    let mut resources = match &args.resources {
        Some(source) => read_resources(source)?,
        None => resources_from_flags(args)?,
    };
    let current_rdt = container.state.intel_rdt.as_ref();
    let new_rdt = resctrl::plan::update(
        current_rdt.map(|rdt| &rdt.config),
        resctrl::host::Host::detect().as_ref(),
        args.l3_cache_schema.as_deref(),
        args.mem_bw_schema.as_deref(),
    )?;
    if container.status() == Status::Stopped {
        bail!("container not running");
    }
    if resources.pids().is_some_and(|p| p.limit() == 0) {
        resources.set_pids(None);
    }
    complete_cpu_bandwidth(&container, &mut resources)?;
    container.state.cgroup.update(&resources)?;
    // As runc's `Set`, the schemata are written on every update; the new schemas are kept for the next one.
    if let (Some(current), Some(config)) = (current_rdt, new_rdt) {
        current.group.set(&config)?;
        if config != current.config {
            let mut state = container.state.clone();
            state.intel_rdt = Some(resctrl::Assignment {
                config,
                group: current.group.clone(),
            });
            state.save(&container.dir)?;
        }
    }
    Ok(0)
}

/// OCI LinuxResources JSON from a file, or from stdin for "-".
fn read_resources(source: &str) -> Result<LinuxResources> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("read resources from stdin")?;
    } else {
        File::open(source)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("open {source}"))?;
    }
    serde_json::from_str(&text).with_context(|| format!("decode resources from {source}"))
}

/// The resources the single-value flags describe, parsed with runc's rules and messages.
fn resources_from_flags(args: &UpdateArgs) -> Result<LinuxResources> {
    let mut memory = Map::new();
    let sizes = [
        ("memory", "limit", &args.memory),
        ("memory-swap", "swap", &args.memory_swap),
        ("kernel-memory", "kernel", &args.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &args.kernel_memory_tcp),
        (
            "memory-reservation",
            "reservation",
            &args.memory_reservation,
        ),
    ];
    for (flag, key, value) in sizes {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            let bytes = if value == "-1" {
                -1
            } else {
                ram_in_bytes(value).with_context(|| format!("invalid value for {flag}"))?
            };
            memory.insert(key.to_owned(), bytes.into());
        }
    }
    let mut cpu = Map::new();
    let unsigned = [
        ("cpu-burst", "burst", &args.cpu_burst),
        ("cpu-period", "period", &args.cpu_period),
        ("cpu-rt-period", "realtimePeriod", &args.cpu_rt_period),
        ("cpu-share", "shares", &args.cpu_share),
    ];
    for (flag, key, value) in unsigned {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            let n: u64 = go_number(flag, value, "ParseUint")?;
            cpu.insert(key.to_owned(), n.into());
        }
    }
    let signed = [
        ("cpu-quota", "quota", &args.cpu_quota),
        ("cpu-rt-runtime", "realtimeRuntime", &args.cpu_rt_runtime),
        ("cpu-idle", "idle", &args.cpu_idle),
    ];
    for (flag, key, value) in signed {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            let n: i64 = value.parse().map_err(|_| {
                anyhow::anyhow!(
                    "invalid value for {flag}: strconv.ParseInt: parsing {value:?}: invalid syntax"
                )
            })?;
            cpu.insert(key.to_owned(), n.into());
        }
    }
    for (key, value) in [("cpus", &args.cpuset_cpus), ("mems", &args.cpuset_mems)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            cpu.insert(key.to_owned(), value.into());
        }
    }
    let mut resources = json!({"memory": memory, "cpu": cpu});
    if let Some(weight) = int_flag("blkio-weight", &args.blkio_weight)?.filter(|&w| w != 0) {
        let weight = u16::try_from(weight).map_err(|_| {
            anyhow::anyhow!("invalid value for blkio-weight: {weight} is out of range 10-1000")
        })?;
        resources["blockIO"] = json!({"weight": weight});
    }
    if let Some(limit) = int_flag("pids-limit", &args.pids_limit)? {
        resources["pids"] = json!({"limit": limit});
    }
    serde_json::from_value(resources).context("update flags")
}

/// A number in a text flag, with Go's strconv message (`parser` is "ParseUint" or "ParseInt").
fn go_number<T: std::str::FromStr>(flag: &str, value: &str, parser: &str) -> Result<T> {
    value.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid value for {flag}: strconv.{parser}: parsing {value:?}: invalid syntax"
        )
    })
}

/// An integer flag (Go's `flag.Int` message on a bad value).
fn int_flag(flag: &str, value: &Option<String>) -> Result<Option<i64>> {
    match value.as_deref() {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("invalid value {text:?} for flag -{flag}: parse error")),
    }
}

/// cgroup2's `cpu.max` holds quota and period together, and runc keeps the other one when an update sets only one
/// of them: fill it in from the container's current values.
fn complete_cpu_bandwidth(container: &Container, resources: &mut LinuxResources) -> Result<()> {
    let Some(mut cpu) = resources.cpu().clone() else {
        return Ok(());
    };
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    if (quota == 0) == (period == 0) {
        return Ok(());
    }
    let Some((current_quota, current_period)) = container.state.cgroup.cpu_bandwidth()? else {
        return Ok(());
    };
    if quota == 0 {
        cpu.set_quota(Some(current_quota));
    } else {
        cpu.set_period(Some(current_period));
    }
    resources.set_cpu(Some(cpu));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn from_flags(line: &str) -> Result<Value> {
        let crate::cli::Command::Update(args) = crate::cli::tests::command(line) else {
            panic!("not an update: {line}");
        };
        resources_from_flags(&args).map(|r| serde_json::to_value(r).unwrap())
    }

    #[test]
    fn every_flag_lands_in_its_field() {
        let r = from_flags(
            "hull update --memory 512m --memory-swap=1g -memory-reservation 256M --kernel-memory-tcp 1k \
             --cpu-share 512 --cpu-period 50000 --cpu-quota 20000 --cpu-burst 1000 --cpu-rt-period 1000000 \
             --cpu-rt-runtime 950000 --cpu-idle 0 --cpuset-cpus 0-1 --cpuset-mems 0 --blkio-weight 500 \
             --pids-limit 42 c1",
        )
        .unwrap();
        assert_eq!(
            r,
            json!({
                "memory": {"limit": 536870912, "swap": 1073741824, "reservation": 268435456, "kernelTCP": 1024},
                "cpu": {"shares": 512, "period": 50000, "quota": 20000, "burst": 1000, "realtimePeriod": 1000000,
                        "realtimeRuntime": 950000, "idle": 0, "cpus": "0-1", "mems": "0"},
                "blockIO": {"weight": 500},
                "pids": {"limit": 42}
            })
        );
    }

    #[test]
    fn minus_one_is_unlimited_and_bad_values_are_named() {
        let r = from_flags("hull update --memory -1 c1").unwrap();
        assert_eq!(r["memory"]["limit"], -1);
        let err = |line: &str| format!("{:#}", from_flags(line).unwrap_err());
        assert_eq!(
            err("hull update --memory 12x c1"),
            "invalid value for memory: invalid suffix: 'x'"
        );
        assert_eq!(
            err("hull update --cpu-period -5 c1"),
            "invalid value for cpu-period: strconv.ParseUint: parsing \"-5\": invalid syntax"
        );
        assert_eq!(
            err("hull update --pids-limit many c1"),
            "invalid value \"many\" for flag -pids-limit: parse error"
        );
    }
}
