//! What systemd is told about a container's unit, as runc tells it: the limits as unit properties
//! (opencontainers/cgroups `genV2ResourcesProperties`, `unifiedResToSystemdProps`, the device allow list of
//! `devices/systemd.go`), and the `org.systemd.property.*` annotations (runc's `initSystemdProps`), whose values are
//! GVariant text. systemd writes these to the unit's cgroup itself whenever it re-applies the unit (a
//! daemon-reload), so they must say what hull writes to the files.
//!
//! Version notes: AllowedCPUs/AllowedMemoryNodes need systemd 244, `char-MAJOR` device groups 240; hull sends them
//! unconditionally (a pure cgroup v2 host with an older systemd answers with its own error, named with the unit).
//! Like runc on systemd 252 (Debian 12), `cpu.idle` and `memory.oom.group` stay in the files only.

use std::collections::HashMap;

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::LinuxResources;

use super::super::{devices, v2};
use crate::dbus::Value;

/// A unit property: its name and value.
pub type Property = (String, Value);

/// systemd's CPU quota period when none is given (cgroup v2's default too).
const DEFAULT_QUOTA_PERIOD: u64 = 100_000;
/// The most CPUs or memory nodes a cpuset may name here (systemd's own limit is 8192 CPUs).
const MAX_CPUSET_BIT: u32 = 1 << 16;

/// The limits of `r` as unit properties, in runc's order. `with_devices`: whether the device policy is given too
/// (a system unit at create; not a user instance, which cannot filter devices, nor `update`, whose resources carry
/// no device rules).
pub fn resource_properties(r: &LinuxResources, with_devices: bool) -> Result<Vec<Property>> {
    let mut properties = Vec::new();
    let mut push = |name: &str, value: Value| properties.push((name.to_owned(), value));
    if with_devices {
        for (name, value) in device_properties(r)? {
            push(&name, value);
        }
    }
    let as_max = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(memory) = r.memory() {
        let limit = memory.limit().unwrap_or(0);
        if limit != 0 {
            push("MemoryMax", Value::U64(as_max(limit)));
        }
        if let Some(low) = memory.reservation().filter(|&v| v != 0) {
            push("MemoryLow", Value::U64(as_max(low)));
        }
        // OCI's swap is memory+swap; cgroup v2's is the swap alone (runc's ConvertMemorySwapToCgroupV2Value).
        let swap = match (memory.swap().unwrap_or(0), limit) {
            (0, -1) => -1,
            (swap @ (-1 | 0), _) => swap,
            (swap, -1) => swap,
            (_, 0) => bail!("unable to set swap limit without memory limit"),
            (swap, limit) if swap < limit => bail!("memory+swap limit should be >= memory limit"),
            (swap, limit) => swap - limit,
        };
        if swap != 0 {
            push("MemorySwapMax", Value::U64(as_max(swap)));
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|&v| v != 0) {
            push("CPUWeight", Value::U64(v2::shares_to_weight(shares)));
        }
        for (name, value) in quota_properties(cpu.quota().unwrap_or(0), cpu.period().unwrap_or(0)) {
            push(&name, value);
        }
    }
    if let Some(pids) = r.pids() {
        push("TasksMax", Value::U64(tasks_max(pids.limit())));
    }
    if let Some(cpu) = r.cpu() {
        for (name, field, range) in [
            ("AllowedCPUs", "Cpus", cpu.cpus()),
            ("AllowedMemoryNodes", "Mems", cpu.mems()),
        ] {
            if let Some(range) = range.as_deref().filter(|s| !s.is_empty()) {
                let bits = range_to_bits(range)
                    .with_context(|| format!("resources.CPU.{field}={range:?} conversion error"))?;
                push(name, bytes(bits));
            }
        }
    }
    if let Some(unified) = r.unified() {
        let mut keys: Vec<_> = unified.keys().collect();
        keys.sort();
        for key in keys {
            for (name, value) in unified_property(key, unified[key].trim())? {
                push(&name, value);
            }
        }
    }
    if let Some(weight) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|&w| w != 0)
    {
        push(
            "IOWeight",
            Value::U64(1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990),
        );
    }
    Ok(properties)
}

/// The quota hull writes to `cpu.max` under systemd: systemd keeps whole percents of a CPU, so a quota is rounded
/// up to 10 ms per CPU second, and the file gets the same value systemd would write (runc's `addCPUQuota`).
pub fn systemd_quota(quota: i64, period: u64) -> i64 {
    if quota <= 0 {
        return quota;
    }
    let period = if period == 0 {
        DEFAULT_QUOTA_PERIOD
    } else {
        period
    };
    let per_second = quota as u64 * 1_000_000 / period;
    if per_second % 10_000 == 0 {
        return quota;
    }
    (per_second.div_ceil(10_000) * 10_000 * period / 1_000_000) as i64
}

fn quota_properties(quota: i64, period: u64) -> Vec<Property> {
    let mut properties = Vec::new();
    if period != 0 {
        properties.push(("CPUQuotaPeriodUSec".to_owned(), Value::U64(period)));
    }
    if quota != 0 || period != 0 {
        let per_second = if quota > 0 {
            let period = if period == 0 {
                DEFAULT_QUOTA_PERIOD
            } else {
                period
            };
            (quota as u64 * 1_000_000 / period).div_ceil(10_000) * 10_000
        } else {
            // USEC_INFINITY: no quota.
            u64::MAX
        };
        properties.push(("CPUQuotaPerSecUSec".to_owned(), Value::U64(per_second)));
    }
    properties
}

/// `TasksMax` for a pids limit: negative is infinity, and systemd does not take 0.
fn tasks_max(limit: i64) -> u64 {
    match limit {
        limit if limit < 0 => u64::MAX,
        0 => 1,
        limit => limit as u64,
    }
}

/// A `linux.resources.unified` entry as the property systemd has for it, if any: whatever has none is in the files
/// only (runc's `unifiedResToSystemdProps`).
fn unified_property(key: &str, value: &str) -> Result<Vec<Property>> {
    ensure!(
        !key.contains('/'),
        "unified resource {key:?} must be a file name (no slashes)"
    );
    ensure!(
        key.find('.').is_some_and(|dot| dot > 0),
        "unified resource {key:?} must be in the form CONTROLLER.PARAMETER"
    );
    let number = |text: &str| -> Result<u64> {
        text.parse::<u64>()
            .with_context(|| format!("unified resource {key:?} value conversion error"))
    };
    let max_or_number = |text: &str| -> Result<u64> {
        if text == "max" {
            Ok(u64::MAX)
        } else {
            number(text)
        }
    };
    let property = |name: &str, value: Value| Ok(vec![(name.to_owned(), value)]);
    match key {
        "cpu.max" => {
            let fields: Vec<&str> = value.split_whitespace().collect();
            ensure!(
                matches!(fields.len(), 1 | 2),
                "unified resource {key:?} value invalid: {value:?}"
            );
            let quota = match fields[0] {
                "max" => 0,
                text => text.parse::<i64>().with_context(|| {
                    format!("unified resource {key:?} quota value conversion error")
                })?,
            };
            let period = match fields.get(1) {
                Some(text) => text.parse::<u64>().with_context(|| {
                    format!("unified resource {key:?} period value conversion error")
                })?,
                None => DEFAULT_QUOTA_PERIOD,
            };
            Ok(quota_properties(quota, period))
        }
        "cpu.weight" => property("CPUWeight", Value::U64(number(value)?)),
        "cpuset.cpus" | "cpuset.mems" => {
            let name = if key == "cpuset.cpus" {
                "AllowedCPUs"
            } else {
                "AllowedMemoryNodes"
            };
            let bits = range_to_bits(value)
                .with_context(|| format!("unified resource {key:?}={value:?} conversion error"))?;
            property(name, bytes(bits))
        }
        "memory.high" => property("MemoryHigh", Value::U64(max_or_number(value)?)),
        "memory.low" => property("MemoryLow", Value::U64(max_or_number(value)?)),
        "memory.min" => property("MemoryMin", Value::U64(max_or_number(value)?)),
        "memory.max" => property("MemoryMax", Value::U64(max_or_number(value)?)),
        "memory.swap.max" => property("MemorySwapMax", Value::U64(max_or_number(value)?)),
        "pids.max" => property("TasksMax", Value::U64(max_or_number(value)?.max(1))),
        _ => Ok(Vec::new()),
    }
}

/// A cpuset list (`0-3,8`) as systemd's bit mask: byte i holds CPUs 8i to 8i+7, lowest bit first.
fn range_to_bits(list: &str) -> Result<Vec<u8>> {
    let mut bits = Vec::new();
    let mut set = |n: u32| {
        let byte = (n / 8) as usize;
        if bits.len() <= byte {
            bits.resize(byte + 1, 0u8);
        }
        bits[byte] |= 1 << (n % 8);
    };
    let parse = |text: &str| -> Result<u32> {
        let n: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("invalid number {:?}", text.trim()))?;
        ensure!(
            n < MAX_CPUSET_BIT,
            "{n} is beyond the {MAX_CPUSET_BIT} CPUs or nodes hull handles"
        );
        Ok(n)
    };
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('-') {
            Some((start, end)) => {
                let (start, end) = (parse(start)?, parse(end)?);
                ensure!(start <= end, "invalid range: {item}");
                (start..=end).for_each(&mut set);
            }
            None => set(parse(item)?),
        }
    }
    ensure!(bits.iter().any(|&b| b != 0), "empty value");
    Ok(bits)
}

fn bytes(bits: Vec<u8>) -> Value {
    Value::Array("y".into(), bits.into_iter().map(Value::Byte).collect())
}

/// The device policy as systemd properties (runc's `systemdProperties`): the allow list cleared, `strict`, then
/// the policy's exceptions in systemd's syntax. An allow-all policy is `auto` with no list. A deny list with
/// exceptions cannot be said to systemd: runc gives it a deny-all list then, which a daemon-reload would enforce
/// over runc's own filter; hull gives none, and its own filter does the work (docs/runc-compat.md).
fn device_properties(r: &LinuxResources) -> Result<Vec<Property>> {
    let policy = devices::policy(r)?;
    let allow = |entries: Vec<Value>| {
        (
            "DeviceAllow".to_owned(),
            Value::Array("(ss)".into(), entries),
        )
    };
    if policy.default_allow {
        return Ok(vec![
            ("DevicePolicy".to_owned(), Value::Str("auto".into())),
            allow(Vec::new()),
        ]);
    }
    let mut entries = Vec::new();
    for (&(major, minor, typ), &access) in &policy.exceptions {
        let group = if typ == 'b' { "block" } else { "char" };
        let path = match (major, minor) {
            // systemd has no `*:n` rule: hull's own filter still allows it.
            (devices::ANY, n) if n != devices::ANY => continue,
            (devices::ANY, _) => format!("{group}-*"),
            (major, devices::ANY) => format!("{group}-{major}"),
            (major, minor) => format!("/dev/{group}/{major}:{minor}"),
        };
        let perms: String = [
            (devices::READ, 'r'),
            (devices::WRITE, 'w'),
            (devices::MKNOD, 'm'),
        ]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|&(_, c)| c)
        .collect();
        entries.push(Value::Struct(vec![Value::Str(path), Value::Str(perms)]));
    }
    Ok(vec![
        allow(Vec::new()),
        ("DevicePolicy".to_owned(), Value::Str("strict".into())),
        allow(entries),
    ])
}

/// The `org.systemd.property.NAME` annotations as unit properties, in name order: NAME must be letters only (at
/// least 3), the value is GVariant text (`uint64 5`, `'text'`, `true`, `@as []`), and a `...Sec` name with a
/// number of seconds becomes systemd's `...USec` in microseconds, as runc converts it.
pub fn annotation_properties(annotations: &HashMap<String, String>) -> Result<Vec<Property>> {
    const PREFIX: &str = "org.systemd.property.";
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    let mut properties = Vec::new();
    for key in keys {
        let text = &annotations[key];
        let name = &key[PREFIX.len()..];
        if name.len() < 3 {
            bail!("annotation {key} name incorrect: too short");
        }
        if !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            bail!("annotation {key} name incorrect: contains non-alphabetic character");
        }
        let parse_error = || format!("annotation {key}={text} value parse error");
        let mut value = parse_variant(text).with_context(parse_error)?;
        let mut name = name.to_owned();
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.ends_with(|c: char| c.is_ascii_lowercase()) {
                name = format!("{stem}USec");
                value = seconds_to_usec(&value).with_context(parse_error)?;
            }
        }
        properties.push((name, value));
    }
    Ok(properties)
}

fn seconds_to_usec(value: &Value) -> Result<Value> {
    const M: u64 = 1_000_000;
    Ok(Value::U64(match *value {
        Value::Byte(v) => u64::from(v) * M,
        Value::I16(v) => (v as u64).wrapping_mul(M),
        Value::U16(v) => u64::from(v) * M,
        Value::I32(v) => (v as u64).wrapping_mul(M),
        Value::U32(v) => u64::from(v) * M,
        Value::I64(v) => (v as u64).wrapping_mul(M),
        Value::U64(v) => v.wrapping_mul(M),
        Value::Double(v) => (v * M as f64) as u64,
        _ => bail!("not a number"),
    }))
}

/// A value in GVariant text format, the part of it annotations use: `true`/`false`, numbers (an integer is an
/// `int32`, a number with a point or exponent a `double`), quoted strings, arrays `[...]`, a type keyword before a
/// value (`uint64 5`) and a type annotation (`@t 5`, `@as []`).
pub fn parse_variant(text: &str) -> Result<Value> {
    let mut parser = Gvariant { rest: text };
    let value = parser.value(None)?;
    parser.skip_space();
    ensure!(
        parser.rest.is_empty(),
        "unexpected {:?} after the value",
        parser.rest
    );
    Ok(value)
}

struct Gvariant<'a> {
    rest: &'a str,
}

/// GVariant's type keywords and the D-Bus signature each stands for.
const KEYWORDS: [(&str, &str); 12] = [
    ("boolean", "b"),
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
    ("string", "s"),
    ("objectpath", "o"),
    ("signature", "g"),
];

impl Gvariant<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    /// The next word (letters, digits and `_+-.`), not consumed.
    fn word(&self) -> &str {
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_+-.".contains(c)))
            .unwrap_or(self.rest.len());
        &self.rest[..end]
    }

    /// One value of signature `want` (any, when `None`).
    fn value(&mut self, want: Option<&str>) -> Result<Value> {
        self.skip_space();
        if let Some(rest) = self.rest.strip_prefix('@') {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let signature = &rest[..end];
            ensure!(
                want.is_none_or(|w| w == signature),
                "type @{signature} where {} was expected",
                want.unwrap_or_default()
            );
            self.rest = &rest[end..];
            return self.value(Some(signature));
        }
        let word = self.word().to_owned();
        if let Some(&(_, signature)) = KEYWORDS.iter().find(|(k, _)| *k == word) {
            ensure!(
                want.is_none_or(|w| w == signature),
                "{word} where {} was expected",
                want.unwrap_or_default()
            );
            self.rest = &self.rest[word.len()..];
            return self.value(Some(signature));
        }
        match self.rest.chars().next() {
            None => bail!("no value"),
            Some('[') => self.array(want),
            Some(quote @ ('\'' | '"')) => {
                let text = self.string(quote)?;
                match want.unwrap_or("s") {
                    "s" => Ok(Value::Str(text)),
                    "o" => Ok(Value::ObjectPath(text)),
                    "g" => Ok(Value::Signature(text)),
                    other => bail!("a string where type {other} was expected"),
                }
            }
            Some(_) => {
                self.rest = &self.rest[word.len()..];
                scalar(&word, want)
            }
        }
    }

    fn array(&mut self, want: Option<&str>) -> Result<Value> {
        let mut element = match want {
            Some(signature) => Some(
                signature
                    .strip_prefix('a')
                    .with_context(|| format!("an array where type {signature} was expected"))?
                    .to_owned(),
            ),
            None => None,
        };
        self.rest = &self.rest[1..];
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if let Some(rest) = self.rest.strip_prefix(']') {
                self.rest = rest;
                break;
            }
            if !items.is_empty() {
                self.rest = self
                    .rest
                    .strip_prefix(',')
                    .context("expected , or ] in an array")?;
            }
            let item = self.value(element.as_deref())?;
            element.get_or_insert_with(|| item.signature());
            items.push(item);
        }
        let element = element
            .context("cannot infer the type of an empty array: annotate it, as in @as []")?;
        Ok(Value::Array(element, items))
    }

    fn string(&mut self, quote: char) -> Result<String> {
        let mut text = String::new();
        let mut chars = self.rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => text.push(chars.next().context("unterminated string")?.1),
                c if c == quote => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(text);
                }
                c => text.push(c),
            }
        }
        bail!("unterminated string")
    }
}

/// A boolean or number word as a value of signature `want`.
fn scalar(word: &str, want: Option<&str>) -> Result<Value> {
    let bad = || format!("{word:?} is not a value of type {}", want.unwrap_or("i"));
    let signature = match want {
        Some(w) => w,
        None if word == "true" || word == "false" => "b",
        None if word.contains(['.', 'e', 'E']) && !word.starts_with("0x") => "d",
        None => "i",
    };
    Ok(match signature {
        "b" => Value::Bool(match word {
            "true" => true,
            "false" => false,
            _ => bail!(bad()),
        }),
        "y" => Value::Byte(word.parse().with_context(bad)?),
        "n" => Value::I16(word.parse().with_context(bad)?),
        "q" => Value::U16(word.parse().with_context(bad)?),
        "i" => Value::I32(word.parse().with_context(bad)?),
        "u" => Value::U32(word.parse().with_context(bad)?),
        "x" => Value::I64(word.parse().with_context(bad)?),
        "t" => Value::U64(word.parse().with_context(bad)?),
        "d" => Value::Double(word.parse().with_context(bad)?),
        _ => bail!(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(json: &str) -> Vec<Property> {
        resource_properties(&serde_json::from_str(json).unwrap(), false).unwrap()
    }

    fn named(list: &[(&str, Value)]) -> Vec<Property> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn limits_become_the_properties_runc_gives_systemd() {
        assert_eq!(
            properties(
                r#"{"memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
                    "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-2,9", "mems": "0"},
                    "pids": {"limit": 42}, "blockIO": {"weight": 500}}"#
            ),
            named(&[
                ("MemoryMax", Value::U64(104857600)),
                ("MemoryLow", Value::U64(52428800)),
                ("MemorySwapMax", Value::U64(104857600)),
                ("CPUWeight", Value::U64(100)),
                ("CPUQuotaPeriodUSec", Value::U64(100000)),
                ("CPUQuotaPerSecUSec", Value::U64(250000)),
                ("TasksMax", Value::U64(42)),
                ("AllowedCPUs", bytes(vec![0b0000_0111, 0b0000_0010])),
                ("AllowedMemoryNodes", bytes(vec![1])),
                ("IOWeight", Value::U64(4950)),
            ])
        );
        // Unlimited is systemd's infinity; a quota of 1.5% of a CPU rounds up to 2%; no pids at all is 1 task.
        assert_eq!(
            properties(
                r#"{"memory": {"limit": -1}, "cpu": {"quota": 1500, "period": 100000}, "pids": {"limit": 0}}"#
            ),
            named(&[
                ("MemoryMax", Value::U64(u64::MAX)),
                ("MemorySwapMax", Value::U64(u64::MAX)),
                ("CPUQuotaPeriodUSec", Value::U64(100000)),
                ("CPUQuotaPerSecUSec", Value::U64(20000)),
                ("TasksMax", Value::U64(1)),
            ])
        );
        assert_eq!(systemd_quota(1500, 100000), 2000);
        assert_eq!(systemd_quota(25000, 100000), 25000);
        assert_eq!(systemd_quota(-1, 100000), -1);
        assert!(properties("{}").is_empty());
        let err = resource_properties(
            &serde_json::from_str(r#"{"memory": {"limit": 100, "swap": 50}}"#).unwrap(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "memory+swap limit should be >= memory limit"
        );
        let err = resource_properties(
            &serde_json::from_str(r#"{"cpu": {"cpus": "3-1"}}"#).unwrap(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "resources.CPU.Cpus=\"3-1\" conversion error: invalid range: 3-1"
        );
    }

    #[test]
    fn unified_keys_systemd_knows_become_properties() {
        assert_eq!(
            properties(
                r#"{"unified": {"memory.high": "1048576", "memory.min": "max", "cpu.max": "max 50000",
                    "cpu.weight": " 7 ", "pids.max": "0", "io.max": "8:0 rbps=1", "cpuset.cpus": "1"}}"#
            ),
            named(&[
                ("CPUQuotaPeriodUSec", Value::U64(50000)),
                ("CPUQuotaPerSecUSec", Value::U64(u64::MAX)),
                ("CPUWeight", Value::U64(7)),
                ("AllowedCPUs", bytes(vec![2])),
                ("MemoryHigh", Value::U64(1048576)),
                ("MemoryMin", Value::U64(u64::MAX)),
                ("TasksMax", Value::U64(1)),
            ])
        );
        for (key, error) in [
            (
                "a/b",
                "unified resource \"a/b\" must be a file name (no slashes)",
            ),
            (
                ".max",
                "unified resource \".max\" must be in the form CONTROLLER.PARAMETER",
            ),
        ] {
            let r: LinuxResources =
                serde_json::from_value(serde_json::json!({"unified": {key: "1"}})).unwrap();
            assert_eq!(
                resource_properties(&r, false).unwrap_err().to_string(),
                error
            );
        }
    }

    #[test]
    fn devices_are_systemds_strict_allow_list() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"},
                            {"allow": true, "type": "c", "major": 4, "access": "rw"},
                            {"allow": true, "type": "c", "minor": 3, "access": "rw"}]}"#,
        )
        .unwrap();
        let properties = resource_properties(&r, true).unwrap();
        let entry = |path: &str, perms: &str| {
            Value::Struct(vec![Value::Str(path.into()), Value::Str(perms.into())])
        };
        assert_eq!(
            properties[0],
            (
                "DeviceAllow".to_owned(),
                Value::Array("(ss)".into(), vec![])
            )
        );
        assert_eq!(
            properties[1],
            ("DevicePolicy".to_owned(), Value::Str("strict".into()))
        );
        let Value::Array(_, entries) = &properties[2].1 else {
            panic!("expected the allow list, got {:?}", properties[2]);
        };
        for want in [
            entry("/dev/block/8:0", "r"),
            entry("char-4", "rw"),
            entry("/dev/char/1:3", "rwm"),
            entry("char-*", "m"),
            entry("block-*", "m"),
            entry("char-136", "rwm"),
        ] {
            assert!(entries.contains(&want), "expected {want:?} in {entries:?}");
        }
        assert!(
            !entries.iter().any(|e| format!("{e:?}").contains("*:3")),
            "a *:n rule has no systemd form"
        );
        let all: LinuxResources =
            serde_json::from_str(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#).unwrap();
        assert_eq!(
            resource_properties(&all, true).unwrap(),
            named(&[
                ("DevicePolicy", Value::Str("auto".into())),
                ("DeviceAllow", Value::Array("(ss)".into(), vec![])),
            ])
        );
    }

    #[test]
    fn annotations_are_properties_as_runc_reads_them() {
        let annotations: HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopSec", "uint64 123"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.RuntimeMaxSec", "1.5"),
            ("org.systemd.property.Environment", "@as []"),
            ("org.systemd.property.IgnoreOnIsolate", "true"),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            annotation_properties(&annotations).unwrap(),
            named(&[
                ("CollectMode", Value::Str("inactive-or-failed".into())),
                ("Environment", Value::Array("s".into(), vec![])),
                ("IgnoreOnIsolate", Value::Bool(true)),
                ("RuntimeMaxUSec", Value::U64(1_500_000)),
                ("TimeoutStopUSec", Value::U64(123_000_000)),
            ])
        );
        for (key, value, error) in [
            ("org.systemd.property.Ab", "1", "annotation org.systemd.property.Ab name incorrect: too short"),
            ("org.systemd.property.A_b", "1", "annotation org.systemd.property.A_b name incorrect: contains non-alphabetic character"),
            ("org.systemd.property.TimeoutSec", "'x'", "annotation org.systemd.property.TimeoutSec='x' value parse error: not a number"),
            ("org.systemd.property.Foo", "[]", "annotation org.systemd.property.Foo=[] value parse error: cannot infer the type of an empty array: annotate it, as in @as []"),
        ] {
            let one = HashMap::from([(key.to_owned(), value.to_owned())]);
            assert_eq!(
                format!("{:#}", annotation_properties(&one).unwrap_err()),
                error
            );
        }
    }

    #[test]
    fn gvariant_text_gives_typed_values() {
        assert_eq!(parse_variant("5").unwrap(), Value::I32(5));
        assert_eq!(parse_variant("@t 5").unwrap(), Value::U64(5));
        assert_eq!(parse_variant("uint32 7").unwrap(), Value::U32(7));
        assert_eq!(parse_variant("\"a'b\"").unwrap(), Value::Str("a'b".into()));
        assert_eq!(
            parse_variant("['a', 'b']").unwrap(),
            Value::Array(
                "s".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            )
        );
        assert_eq!(
            parse_variant("[uint64 1, 2]").unwrap(),
            Value::Array("t".into(), vec![Value::U64(1), Value::U64(2)])
        );
        assert!(parse_variant("int32 99999999999").is_err());
        assert!(parse_variant("1 2").is_err());
        assert!(parse_variant("'open").is_err());
    }
}
