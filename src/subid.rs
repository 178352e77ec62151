//! The subordinate ids an unprivileged user may map (`/etc/subuid`, `/etc/subgid`), checked before anything is
//! made: the setuid `newuidmap`/`newgidmap` refuse ranges outside them, but only after the container's state, cgroup
//! and init exist, and with a terse message. As in shadow's tools, a user may always map its own id alone, and a
//! line names the user by name or by uid.

use std::fs;

use anyhow::{bail, Result};
use nix::unistd::{getegid, geteuid};
use oci_spec::runtime::LinuxIdMapping;

/// A range of host ids, `start..start+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u64,
    count: u64,
}

impl Range {
    fn end(self) -> u64 {
        self.start + self.count
    }
}

/// The ranges `text` (the content of /etc/subuid or /etc/subgid) grants to the user called `name` or numbered `id`,
/// sorted, with touching ranges joined.
fn granted(text: &str, name: &str, id: u32) -> Vec<Range> {
    let mut ranges: Vec<Range> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let start = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            (owner == name || owner == id.to_string()).then_some(Range { start, count })
        })
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut joined: Vec<Range> = Vec::new();
    for r in ranges {
        match joined.last_mut() {
            Some(last) if r.start <= last.end() => {
                last.count = last.count.max(r.end() - last.start);
            }
            _ => joined.push(r),
        }
    }
    joined
}

/// The name `text` (the content of /etc/passwd) gives the user numbered `uid`; an empty name is none.
fn user_name(text: &str, uid: u32) -> Option<String> {
    crate::credentials::passwd_name(text, uid)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// Fails naming the first mapping whose host ids are neither `own` alone nor inside the `granted` ranges.
fn check(
    what: &str,
    file: &str,
    user: &str,
    own: u32,
    maps: &[LinuxIdMapping],
    granted: &[Range],
) -> Result<()> {
    for (i, m) in maps.iter().enumerate() {
        let wanted = Range {
            start: m.host_id().into(),
            count: m.size().into(),
        };
        if wanted.start == u64::from(own) && wanted.count == 1 {
            continue;
        }
        if granted
            .iter()
            .any(|g| g.start <= wanted.start && wanted.end() <= g.end())
        {
            continue;
        }
        let grants = if granted.is_empty() {
            "none".to_string()
        } else {
            granted
                .iter()
                .map(|g| format!("{}-{}", g.start, g.end() - 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        bail!(
            "{what}[{i}]: host ids {}-{} are not {user}'s to map: besides its own id {own}, {file} grants {user} {grants}",
            wanted.start,
            wanted.end() - 1
        );
    }
    Ok(())
}

/// For a hull run by an unprivileged user: every mapping of a new user namespace must be the user's own id or lie
/// in its subordinate ranges.
pub fn check_unprivileged(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let uid = geteuid();
    if uid.is_root() {
        return Ok(());
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = user_name(&passwd, uid.as_raw()).unwrap_or_else(|| uid.to_string());
    for (what, file, own, maps) in [
        ("linux.uidMappings", "/etc/subuid", uid.as_raw(), uids),
        ("linux.gidMappings", "/etc/subgid", getegid().as_raw(), gids),
    ] {
        let only_own = maps.iter().all(|m| m.host_id() == own && m.size() == 1);
        if only_own {
            continue;
        }
        let text = fs::read_to_string(file).unwrap_or_default();
        check(
            what,
            file,
            &name,
            own,
            maps,
            &granted(&text, &name, uid.as_raw()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(list: &[(u32, u32, u32)]) -> Vec<LinuxIdMapping> {
        serde_json::from_value(serde_json::Value::Array(
            list.iter()
                .map(|(c, h, s)| serde_json::json!({"containerID": c, "hostID": h, "size": s}))
                .collect(),
        ))
        .unwrap()
    }

    const SUBUID: &str =
        "alice:100000:65536\n1001:300000:1000\nbob:165536:65536\nalice:165536:10\n";

    #[test]
    fn user_names_come_from_the_passwd_line_with_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\n:x:7:7::/:\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 7), None, "an empty name is no name");
        assert_eq!(user_name(passwd, 1001), None);
    }

    #[test]
    fn ranges_are_found_by_name_or_uid_and_joined() {
        assert_eq!(
            granted(SUBUID, "alice", 1000),
            vec![Range {
                start: 100000,
                count: 65546
            }]
        );
        assert_eq!(
            granted(SUBUID, "carol", 1001),
            vec![Range {
                start: 300000,
                count: 1000
            }]
        );
        assert!(granted(SUBUID, "dave", 1002).is_empty());
    }

    #[test]
    fn own_id_and_granted_ranges_pass_the_rest_is_named() {
        let alice = granted(SUBUID, "alice", 1000);
        let ok = maps(&[(0, 1000, 1), (1, 100000, 65546)]);
        check("uids", "/etc/subuid", "alice", 1000, &ok, &alice).unwrap();

        let past_end = maps(&[(0, 1000, 1), (1, 100000, 65547)]);
        let err = check("uids", "/etc/subuid", "alice", 1000, &past_end, &alice).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uids[1]: host ids 100000-165546 are not alice's to map: besides its own id 1000, \
             /etc/subuid grants alice 100000-165545"
        );

        let other_uid = maps(&[(0, 0, 1)]);
        let err = check("uids", "/etc/subuid", "dave", 1002, &other_uid, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uids[0]: host ids 0-0 are not dave's to map: besides its own id 1002, /etc/subuid grants dave none"
        );
    }
}
