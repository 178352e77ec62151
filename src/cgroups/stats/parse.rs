//! The cgroup files' formats, read as runc's `fscommon` reads them: pure functions of a file's text.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};

use super::report::{Blkio, BlkioEntry, Cpu, Psi, Throttling};

/// Nanoseconds per clock tick of `cpuacct.stat` (USER_HZ, 100 on Linux; runc hard-codes it too).
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

pub(super) fn parse_psi(text: &str) -> Result<Psi> {
    let mut psi = Psi::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let data = match fields.next() {
            Some("some") => &mut psi.some,
            Some("full") => &mut psi.full,
            _ => continue,
        };
        for field in fields {
            let (key, value) = field
                .split_once('=')
                .with_context(|| format!("invalid psi data: {field:?}"))?;
            let float = || -> Result<f64> {
                value
                    .parse()
                    .with_context(|| format!("invalid {key} PSI value: {value:?}"))
            };
            match key {
                "avg10" => data.avg10 = float()?,
                "avg60" => data.avg60 = float()?,
                "avg300" => data.avg300 = float()?,
                "total" => {
                    data.total = value
                        .parse()
                        .with_context(|| format!("invalid total PSI value: {value:?}"))?
                }
                _ => {}
            }
        }
    }
    Ok(psi)
}

/// A number as runc's `fscommon.ParseUint` reads it: negative values (kernel accounting glitches) are 0.
pub(super) fn parse_uint(text: &str) -> Result<u64> {
    if let Ok(value) = text.parse() {
        return Ok(value);
    }
    match text.strip_prefix('-') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(0),
        _ => bail!("invalid number {text:?}"),
    }
}

/// A single-value file (`GetCgroupParamUint`): surrounding whitespace ignored, "max" is `u64::MAX`.
pub(super) fn parse_param(text: &str) -> Result<u64> {
    match text.trim() {
        "max" => Ok(u64::MAX),
        value => parse_uint(value),
    }
}

/// A single signed value (`GetCgroupParamInt`): "max" is `i64::MAX`.
pub(super) fn parse_param_int(text: &str) -> Result<i64> {
    match text.trim() {
        "max" => Ok(i64::MAX),
        value => value
            .parse()
            .map_err(|_| anyhow!("invalid number {value:?}")),
    }
}

/// "key value" lines (`memory.stat`, `cpu.stat`).
pub(super) fn parse_key_values(text: &str) -> Result<BTreeMap<String, u64>> {
    text.lines()
        .map(|line| match line.split(' ').collect::<Vec<_>>()[..] {
            [key, value] => Ok((key.to_owned(), parse_uint(value)?)),
            _ => bail!("line {line:?} is not in key value format"),
        })
        .collect()
}

/// The value of `key` in a "key value" file (`memory.events`, `hugetlb.<size>.events`); 0 when absent.
pub(in crate::cgroups) fn value_by_key(text: &str, key: &str) -> Result<u64> {
    for line in text.split('\n') {
        if let [k, value] = line.split(' ').collect::<Vec<_>>()[..] {
            if k == key {
                return parse_uint(value);
            }
        }
    }
    Ok(0)
}

/// A cpuset list ("0-3,8,10-11").
pub(super) fn parse_cpu_list(text: &str) -> Result<Vec<u16>> {
    let text = text.trim();
    if text.is_empty() {
        bail!("empty file");
    }
    let number = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| anyhow!("invalid number {s:?} in {text:?}"))
    };
    let mut list = Vec::new();
    for item in text.split(',') {
        match item.split('-').collect::<Vec<_>>()[..] {
            [single] => list.push(number(single)?),
            [first, last] => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    bail!("invalid range {item:?} in {text:?}: min > max");
                }
                list.extend(first..=last);
            }
            _ => bail!("invalid range {item:?} in {text:?}"),
        }
    }
    Ok(list)
}

/// v1 `cpu.stat`: the throttling counters (`throttled_time` is already in nanoseconds).
pub(super) fn throttling_v1(text: &str) -> Result<Throttling> {
    let mut t = Throttling::default();
    for (key, value) in parse_key_values(text)? {
        match key.as_str() {
            "nr_periods" => t.periods = value,
            "nr_throttled" => t.throttled_periods = value,
            "throttled_time" => t.throttled_time = value,
            _ => {}
        }
    }
    Ok(t)
}

/// v2 `cpu.stat`: usage and throttling, microseconds turned into nanoseconds.
pub(super) fn cpu_v2(text: &str) -> Result<Cpu> {
    let mut cpu = Cpu::default();
    for (key, value) in parse_key_values(text)? {
        let nanos = value.wrapping_mul(1000);
        match key.as_str() {
            "usage_usec" => cpu.usage.total = nanos,
            "user_usec" => cpu.usage.user = nanos,
            "system_usec" => cpu.usage.kernel = nanos,
            "nr_periods" => cpu.throttling.periods = value,
            "nr_throttled" => cpu.throttling.throttled_periods = value,
            "throttled_usec" => cpu.throttling.throttled_time = nanos,
            _ => {}
        }
    }
    Ok(cpu)
}

/// `cpuacct.stat` ("user <ticks>\nsystem <ticks>") as (user, kernel) nanoseconds.
pub(super) fn parse_cpuacct_stat(text: &str) -> Result<(u64, u64)> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [user_key, user, system_key, system, ..] = fields[..] else {
        bail!("malformed content {text:?}");
    };
    if user_key != "user" || system_key != "system" {
        bail!("malformed content {text:?}");
    }
    let ticks = |s: &str| {
        s.parse::<u64>()
            .map(|t| t.saturating_mul(NANOS_PER_TICK))
            .map_err(|_| anyhow!("invalid number {s:?}"))
    };
    Ok((ticks(user)?, ticks(system)?))
}

/// `cpuacct.usage_percpu`: nanoseconds per CPU.
pub(super) fn parse_percpu(text: &str) -> Result<Vec<u64>> {
    text.split_whitespace()
        .map(|v| v.parse().map_err(|_| anyhow!("invalid number {v:?}")))
        .collect()
}

/// `cpuacct.usage_all` ("cpu user system" header, then one line per CPU) as (kernel, user) per CPU.
pub(super) fn parse_usage_all(text: &str) -> Result<(Vec<u64>, Vec<u64>)> {
    let (mut kernel, mut user) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let [_, user_ns, kernel_ns] = line.splitn(4, ' ').collect::<Vec<_>>()[..] else {
            continue;
        };
        let number = |s: &str| -> Result<u64> {
            s.parse()
                .map_err(|_| anyhow!("invalid number {s:?} in line {line:?}"))
        };
        kernel.push(number(kernel_ns)?);
        user.push(number(user_ns)?);
    }
    Ok((kernel, user))
}

/// A v1 blkio file: "major:minor [op] value" lines, "Total n" skipped.
pub(super) fn parse_blkio_v1(text: &str) -> Result<Vec<BlkioEntry>> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        if fields.len() < 3 {
            if fields.len() == 2 && fields[0] == "Total" {
                continue;
            }
            bail!("malformed line {line:?}");
        }
        let number = |s: &str| -> Result<u64> {
            s.parse()
                .map_err(|_| anyhow!("invalid number {s:?} in line {line:?}"))
        };
        let (op, value) = if fields.len() == 4 {
            (fields[2], fields[3])
        } else {
            ("", fields[2])
        };
        entries.push(BlkioEntry {
            major: number(fields[0])?,
            minor: number(fields[1])?,
            op: op.to_owned(),
            value: number(value)?,
        });
    }
    Ok(entries)
}

/// v2 `io.stat` ("major:minor rbytes=.. wbytes=.. rios=.. wios=.. ...") in v1's tables: bytes as
/// `ioServiceBytesRecursive`, operations as `ioServicedRecursive`, with ops "Read" and "Write"; other keys
/// have no v1 equivalent and are skipped.
pub(super) fn parse_io_stat(text: &str) -> Result<Blkio> {
    let mut blkio = Blkio::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, ref items @ ..] = fields[..] else {
            continue;
        };
        if items.is_empty() {
            continue;
        }
        let Some((major, minor)) = device.split_once(':').filter(|(_, m)| !m.contains(':')) else {
            continue;
        };
        let number = |s: &str| -> Result<u64> {
            s.parse()
                .map_err(|_| anyhow!("invalid number {s:?} in line {line:?}"))
        };
        let (major, minor) = (number(major)?, number(minor)?);
        for item in items {
            let [key, value] = item.split('=').collect::<Vec<_>>()[..] else {
                continue;
            };
            let (table, op) = match key {
                "rbytes" => (&mut blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: number(value)?,
            });
        }
    }
    Ok(blkio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_runc_reads_them() {
        assert_eq!(parse_param("max\n").unwrap(), u64::MAX);
        assert_eq!(parse_param(" 42 \n").unwrap(), 42);
        assert_eq!(parse_param("-4096\n").unwrap(), 0);
        assert_eq!(parse_param("-99999999999999999999").unwrap(), 0);
        assert!(parse_param("").is_err());
        assert!(parse_param("-").is_err());
        assert!(parse_param("1.5").is_err());
        assert_eq!(parse_param_int("-1\n").unwrap(), -1);
        assert_eq!(parse_param_int("max").unwrap(), i64::MAX);
        assert_eq!(
            parse_key_values("a 1\nb -2\n").unwrap(),
            BTreeMap::from([("a".into(), 1), ("b".into(), 0)])
        );
        assert_eq!(
            parse_key_values("a 1 2\n").unwrap_err().to_string(),
            "line \"a 1 2\" is not in key value format"
        );
        assert!(parse_key_values("a\n").is_err());
        assert_eq!(
            value_by_key("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill").unwrap(),
            3
        );
        assert_eq!(value_by_key("oom 1\n", "oom_kill").unwrap(), 0);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("0\n").unwrap(), [0]);
        assert_eq!(parse_cpu_list("\n").unwrap_err().to_string(), "empty file");
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("1-2-3").is_err());
        assert!(parse_cpu_list("70000").is_err());
    }

    #[test]
    fn cpuacct_files() {
        assert_eq!(
            parse_cpuacct_stat("user 12\nsystem 3\n").unwrap(),
            (120_000_000, 30_000_000)
        );
        assert!(parse_cpuacct_stat("user 12\n").is_err());
        assert!(parse_cpuacct_stat("user x\nsystem 3\n").is_err());
        assert_eq!(parse_percpu("1 2 3 \n").unwrap(), [1, 2, 3]);
        assert!(parse_percpu("1 x\n").is_err());
        assert_eq!(
            parse_usage_all("cpu user system\n0 5 6\n1 7 8\nbogus\n").unwrap(),
            (vec![6, 8], vec![5, 7])
        );
        assert!(parse_usage_all("cpu user system\n0 5 x\n").is_err());
    }

    #[test]
    fn io_stat_skips_what_v1_cannot_show() {
        let blkio =
            parse_io_stat("8:0 dbytes=5 rbytes=1\nnodevice rbytes=1\n8:1\n8:2 junk rios=4\n")
                .unwrap();
        assert_eq!(blkio.io_service_bytes_recursive.len(), 1);
        assert_eq!(blkio.io_serviced_recursive[0].minor, 2);
        assert!(parse_io_stat("8:0 rbytes=x\n").is_err());
        assert!(parse_io_stat("x:0 rbytes=1\n").is_err());
    }
}
