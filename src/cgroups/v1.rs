//! cgroup v1 specifics: the planned file writes for `linux.resources` (including the devices
//! allow/deny list), cpuset directory creation and the freezer state.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{dirs_below, memory_limit, mkdir, pids_max, reject_unsupported, write_file, Hierarchy};

/// Wildcard major or minor number ("*").
const ANY: i64 = -1;

/// Device rules runc appends to every container's list (specconv `AllowedDevices`): mknod of any
/// device, /dev/null, random, full, tty, zero, urandom, /dev/pts/*, /dev/ptmx and /dev/net/tun.
const DEFAULT_ALLOWED: [(char, i64, i64, &str); 11] = [
    ('c', ANY, ANY, "m"),
    ('b', ANY, ANY, "m"),
    ('c', 1, 3, "rwm"),
    ('c', 1, 8, "rwm"),
    ('c', 1, 7, "rwm"),
    ('c', 5, 0, "rwm"),
    ('c', 1, 5, "rwm"),
    ('c', 1, 9, "rwm"),
    ('c', 136, ANY, "rwm"),
    ('c', 5, 2, "rwm"),
    ('c', 10, 200, "rwm"),
];

/// The cgroup v1 writes for `r`, in order, as (controller, file, value).
///
/// Order follows runc's v1 manager: devices, memory, cpu (shares, then period before quota), pids.
/// Devices follow runc too: starting from deny-all, the `linux.resources.devices` rules and then
/// runc's default allowed devices are folded into one policy, written as a reset ("a" to
/// `devices.deny`, or to `devices.allow` when the rules allow everything) followed by its exceptions
/// sorted by (major, minor, type). Memory limit 0, cpu shares/quota/period 0 mean unset.
pub fn v1_writes(r: &LinuxResources) -> Result<Vec<(&'static str, &'static str, String)>> {
    reject_unsupported(r)?;
    let mut writes: Vec<(&'static str, &'static str, String)> = device_writes(r)?
        .into_iter()
        .map(|(file, rule)| ("devices", file, rule))
        .collect();
    if let Some(limit) = memory_limit(r)? {
        writes.push(("memory", "memory.limit_in_bytes", limit.to_string()));
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|&v| v != 0) {
            writes.push(("cpu", "cpu.shares", shares.to_string()));
        }
        if let Some(period) = cpu.period().filter(|&v| v != 0) {
            writes.push(("cpu", "cpu.cfs_period_us", period.to_string()));
        }
        if let Some(quota) = cpu.quota().filter(|&v| v != 0) {
            writes.push(("cpu", "cpu.cfs_quota_us", quota.to_string()));
        }
    }
    if let Some(pids) = r.pids() {
        writes.push(("pids", "pids.max", pids_max(pids.limit())));
    }
    Ok(writes)
}

/// Writes one of `v1_writes`' values into the container's cgroup `dir` of its controller.
pub(super) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_file(&path, value)?;
    if file == "cpu.shares" {
        check_shares(&path, value)?;
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

/// v1 `freezer.state` is FROZEN; a missing cgroup is not frozen.
pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    let path = dir.join("freezer.state");
    match fs::read_to_string(&path) {
        Ok(state) => Ok(state.trim() == "FROZEN"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
    }
}

/// Access bits of a device rule.
const READ: u8 = 1;
const WRITE: u8 = 2;
const MKNOD: u8 = 4;

/// A device cgroup policy as the kernel keeps it: a default and exceptions to it, keyed by
/// (major, minor, type) so that iteration gives runc's order.
struct DevicePolicy {
    default_allow: bool,
    exceptions: BTreeMap<(i64, i64, char), u8>,
}

impl DevicePolicy {
    /// Folds one rule in, with the devices cgroup v1 semantics (and runc's emulator's refusal to
    /// remove part of a wildcard exception, which the kernel would silently ignore).
    fn apply(&mut self, typ: char, major: i64, minor: i64, access: u8, allow: bool) -> Result<()> {
        if typ == 'a' {
            self.default_allow = allow;
            self.exceptions.clear();
            return Ok(());
        }
        let key = (major, minor, typ);
        if allow != self.default_allow {
            *self.exceptions.entry(key).or_default() |= access;
            return Ok(());
        }
        for wider in [(ANY, minor, typ), (major, ANY, typ), (ANY, ANY, typ)] {
            let overlap = self.exceptions.get(&wider).copied().unwrap_or(0) & access;
            if wider != key && overlap != 0 {
                bail!(
                    "device rule {} cannot be applied: it would punch a hole in the wildcard rule {}",
                    format_rule(key, access),
                    format_rule(wider, overlap)
                );
            }
        }
        if let Some(bits) = self.exceptions.get_mut(&key) {
            *bits &= !access;
            if *bits == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }
}

/// The devices.deny/devices.allow writes for the final device policy of `r`.
fn device_writes(r: &LinuxResources) -> Result<Vec<(&'static str, String)>> {
    let mut policy = DevicePolicy {
        default_allow: false,
        exceptions: BTreeMap::new(),
    };
    for (i, rule) in r.devices().iter().flatten().enumerate() {
        let (typ, major, minor, access) =
            parse_rule(rule).with_context(|| format!("linux.resources.devices[{i}]"))?;
        policy.apply(typ, major, minor, access, rule.allow())?;
    }
    for (typ, major, minor, access) in DEFAULT_ALLOWED {
        policy.apply(typ, major, minor, parse_access(access)?, true)?;
    }
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
            .map(|(&key, &access)| (exception, format_rule(key, access))),
    );
    Ok(writes)
}

fn parse_rule(rule: &LinuxDeviceCgroup) -> Result<(char, i64, i64, u8)> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C => 'c',
        other => bail!(
            "device type {:?} is not one the devices cgroup knows (a, b, c)",
            other.as_str()
        ),
    };
    let access = rule.access().as_deref().unwrap_or_default();
    if access.is_empty() {
        bail!("access cannot be empty");
    }
    Ok((
        typ,
        rule.major().unwrap_or(ANY),
        rule.minor().unwrap_or(ANY),
        parse_access(access)?,
    ))
}

fn parse_access(access: &str) -> Result<u8> {
    access.chars().try_fold(0, |bits, c| match c {
        'r' => Ok(bits | READ),
        'w' => Ok(bits | WRITE),
        'm' => Ok(bits | MKNOD),
        _ => bail!("access {access:?} has {c:?}: only r, w and m are allowed"),
    })
}

/// "c 1:3 rwm", with "*" for a wildcard number.
fn format_rule((major, minor, typ): (i64, i64, char), access: u8) -> String {
    let number = |n: i64| {
        if n == ANY {
            "*".to_owned()
        } else {
            n.to_string()
        }
    };
    let perms: String = [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|(_, c)| c)
        .collect();
    format!("{typ} {}:{} {perms}", number(major), number(minor))
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
        v1_writes(&resources(json)).unwrap()
    }

    /// The writes that are not to the devices controller.
    fn limits(json: &str) -> Vec<(&'static str, &'static str, String)> {
        writes(json)
            .into_iter()
            .filter(|w| w.0 != "devices")
            .collect()
    }

    fn devices(rules: &str) -> Vec<(&'static str, String)> {
        device_writes(&resources(&format!(r#"{{"devices":{rules}}}"#))).unwrap()
    }

    fn device_error(rules: &str) -> String {
        let r = resources(&format!(r#"{{"devices":{rules}}}"#));
        format!("{:#}", v1_writes(&r).unwrap_err())
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
        let err = v1_writes(&resources(r#"{"memory":{"limit":-3}}"#)).unwrap_err();
        assert!(
            err.to_string().contains("memory.limit -3 is invalid"),
            "{err}"
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
    fn order_is_devices_memory_cpu_pids() {
        let all = writes(
            r#"{"pids":{"limit":8},"cpu":{"shares":2,"quota":1000},"memory":{"limit":4096},
                "devices":[{"allow":false,"access":"rwm"}]}"#,
        );
        let controllers: Vec<&str> = all.iter().map(|w| w.0).collect();
        let mut expected = vec!["devices"; DEFAULT_DEVICES.len() + 1];
        expected.extend(["memory", "cpu", "cpu", "pids"]);
        assert_eq!(controllers, expected);
    }

    #[test]
    fn unsupported_resources_are_refused() {
        let err = v1_writes(&resources(r#"{"memory":{"swap":-1}}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.memory.swap is not supported yet"
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
