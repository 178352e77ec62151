//! The container's device policy: the `linux.resources.devices` rules and runc's default devices
//! folded, as runc's devices emulator does, into a default verdict plus exceptions. cgroup v1 writes
//! it to `devices.deny`/`devices.allow` (`v1.rs`); cgroup2 compiles it into an eBPF program (`bpf.rs`).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// Wildcard major or minor number ("*").
pub(super) const ANY: i64 = -1;

/// Access bits of a device rule.
pub(super) const READ: u8 = 1;
pub(super) const WRITE: u8 = 2;
pub(super) const MKNOD: u8 = 4;

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

/// A device cgroup policy as the kernel keeps it: a default and exceptions to it, keyed by
/// (major, minor, type) so that iteration gives runc's order. Exception types are 'b' or 'c' only:
/// an 'a' rule resets the policy instead.
pub(super) struct DevicePolicy {
    pub(super) default_allow: bool,
    pub(super) exceptions: BTreeMap<(i64, i64, char), u8>,
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

/// The final device policy of `r`: starting from deny-all, its `devices` rules in order, then
/// runc's default allowed devices.
pub(super) fn policy(r: &LinuxResources) -> Result<DevicePolicy> {
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
    Ok(policy)
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
        parse_number("major", rule.major())?,
        parse_number("minor", rule.minor())?,
        parse_access(access)?,
    ))
}

/// A major or minor number: missing or -1 is the wildcard; otherwise a u32, as the kernel takes.
fn parse_number(name: &str, number: Option<i64>) -> Result<i64> {
    match number {
        None => Ok(ANY),
        Some(n) if n == ANY || u32::try_from(n).is_ok() => Ok(n),
        Some(n) => bail!(
            "{name} {n} is out of range: use 0 to {}, or -1 for any",
            u32::MAX
        ),
    }
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
pub(super) fn format_rule((major, minor, typ): (i64, i64, char), access: u8) -> String {
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

    fn policy_of(rules: &str) -> Result<DevicePolicy> {
        policy(&serde_json::from_str(&format!(r#"{{"devices":{rules}}}"#)).unwrap())
    }

    fn rules(p: &DevicePolicy) -> Vec<String> {
        p.exceptions
            .iter()
            .map(|(&key, &access)| format_rule(key, access))
            .collect()
    }

    #[test]
    fn no_rules_is_deny_all_plus_the_defaults() {
        let p = policy(&LinuxResources::default()).unwrap();
        assert!(!p.default_allow);
        assert_eq!(rules(&p).len(), DEFAULT_ALLOWED.len());
        assert_eq!(rules(&p)[..3], ["b *:* m", "c *:* m", "c 1:3 rwm"]);
    }

    #[test]
    fn allow_all_absorbs_the_defaults() {
        let p = policy_of(r#"[{"allow":true,"access":"rwm"}]"#).unwrap();
        assert!(p.default_allow);
        assert!(p.exceptions.is_empty());
    }

    #[test]
    fn numbers_outside_u32_are_refused() {
        let err = |rule: &str| format!("{:#}", policy_of(&format!("[{rule}]")).err().unwrap());
        assert_eq!(
            err(r#"{"allow":true,"type":"c","major":-2,"minor":1,"access":"r"}"#),
            "linux.resources.devices[0]: major -2 is out of range: use 0 to 4294967295, or -1 for any"
        );
        assert_eq!(
            err(r#"{"allow":true,"type":"c","major":1,"minor":4294967299,"access":"r"}"#),
            "linux.resources.devices[0]: minor 4294967299 is out of range: use 0 to 4294967295, or -1 for any"
        );
        let p =
            policy_of(r#"[{"allow":true,"type":"c","major":-1,"minor":4294967295,"access":"r"}]"#)
                .unwrap();
        assert!(rules(&p).contains(&"c *:4294967295 r".to_owned()));
    }
}
