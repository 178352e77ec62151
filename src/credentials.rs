//! Who the container process is: rlimits, supplementary groups, uid/gid, the five capability sets and
//! `no_new_privs`, applied in runc's order (bounding set while still privileged, keep-caps across setuid, then
//! effective/permitted/inheritable in one capset, then ambient).

use std::collections::HashSet;
use std::str::FromStr;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::resource::Resource;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Pid, Uid};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

use crate::sys;

fn resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Set a process's rlimits with prlimit(2); pid 0 is the calling process. See `child::RlimitsBy` for who calls it.
pub fn apply_rlimits(pid: Pid, rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        let limit = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: `limit` is a valid rlimit the kernel only reads; a null old-limit pointer is allowed.
        let ret = unsafe {
            libc::prlimit(
                pid.as_raw(),
                resource(r.typ()) as libc::__rlimit_resource_t,
                &limit,
                std::ptr::null_mut(),
            )
        };
        Errno::result(ret)
            .with_context(|| format!("set {:?} to soft {} hard {}", r.typ(), r.soft(), r.hard()))?;
    }
    Ok(())
}

/// A capability set as the kernel's bit mask; names the kernel does not know are skipped (as runc does).
fn mask(set: Option<&Capabilities>, supported: &caps::CapsHashSet) -> u64 {
    set.into_iter()
        .flatten()
        .filter_map(|cap| {
            let name = serde_json::to_value(cap).ok()?;
            caps::Capability::from_str(name.as_str()?).ok()
        })
        .filter(|cap| supported.contains(cap))
        .fold(0u64, |acc, cap| acc | cap.bitmask())
}

/// Drop from the bounding set everything not listed (needs CAP_SETPCAP: call while still privileged).
fn apply_bounding(caps: &LinuxCapabilities, supported: &caps::CapsHashSet) -> Result<()> {
    let keep = mask(caps.bounding().as_ref(), supported);
    for &cap in supported {
        if keep & cap.bitmask() == 0 {
            caps::drop(None, caps::CapSet::Bounding, cap)
                .with_context(|| format!("drop {cap} from the bounding set"))?;
        }
    }
    Ok(())
}

fn apply_sets(caps: &LinuxCapabilities, supported: &caps::CapsHashSet) -> Result<()> {
    sys::capset(
        mask(caps.effective().as_ref(), supported),
        mask(caps.permitted().as_ref(), supported),
        mask(caps.inheritable().as_ref(), supported),
    )
    .context("set effective, permitted and inheritable capabilities")?;
    let ambient = mask(caps.ambient().as_ref(), supported);
    let _ = caps::clear(None, caps::CapSet::Ambient);
    for &cap in supported {
        if ambient & cap.bitmask() != 0 {
            // The kernel only allows ambient capabilities that are also permitted and inheritable; runc carries on
            // when a configured one is not (its own default spec lists ambient without inheritable).
            if let Err(e) = caps::raise(None, caps::CapSet::Ambient, cap) {
                crate::logger::debug(format!("cannot raise ambient capability {cap}: {e}"));
            }
        }
    }
    Ok(())
}

/// Switch to the configured user: bounding set (while still privileged), supplementary groups, gid, uid. The
/// permitted capabilities survive the switch (keep-caps) for [`apply_caps`]. `extra_groups` are supplementary
/// groups found for the user in the container's /etc/group; `supported` is the kernel's capabilities, probed once
/// (`caps::runtime::thread_all_supported`, a prctl per capability).
pub fn switch_user(
    process: &Process,
    extra_groups: &[u32],
    supported: &caps::CapsHashSet,
) -> Result<()> {
    let user = process.user();
    if let Some(caps) = process.capabilities() {
        apply_bounding(caps, supported)?;
    }
    let mut groups: Vec<Gid> = Vec::new();
    let mut seen = HashSet::new();
    for gid in user
        .additional_gids()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .chain(extra_groups)
    {
        if seen.insert(*gid) {
            groups.push(Gid::from_raw(*gid));
        }
    }
    sys::set_keep_caps(true).context("keep capabilities across setuid")?;
    // In a user namespace whose setgroups is denied (an unprivileged user's mapping), the groups stay as they are.
    let denied = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !denied {
        setgroups(&groups).with_context(|| format!("setgroups {:?}", groups))?;
    }
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).with_context(|| format!("setgid {gid}"))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).with_context(|| format!("setuid {uid}"))?;
    sys::set_keep_caps(false).context("clear keep-capabilities")
}

/// Make every permitted capability effective again (a switch away from uid 0 clears the effective set): loading a
/// seccomp filter without `no_new_privs` needs CAP_SYS_ADMIN after [`switch_user`].
pub fn raise_permitted() -> Result<()> {
    let permitted =
        caps::read(None, caps::CapSet::Permitted).context("read permitted capabilities")?;
    caps::set(None, caps::CapSet::Effective, &permitted).context("raise permitted capabilities")
}

/// The process's capability sets (effective, permitted and inheritable exactly as configured, empty when not;
/// then ambient) and `no_new_privs`.
pub fn apply_caps(process: &Process, supported: &caps::CapsHashSet) -> Result<()> {
    if let Some(caps) = process.capabilities() {
        apply_sets(caps, supported)?;
    }
    if process.no_new_privileges().unwrap_or(false) {
        sys::set_no_new_privs().context("set no_new_privs")?;
    }
    Ok(())
}

/// What the container's /etc/passwd and /etc/group say about a uid (runc's `GetExecUser`): home directory and the
/// groups that list the user's name as a member.
pub struct UserInfo {
    pub home: String,
    pub groups: Vec<u32>,
}

/// The name field of the first line of `passwd` (an /etc/passwd text) whose uid is `uid`, as written (possibly
/// empty). Read directly, as runc's user package does, rather than through NSS: a static glibc would otherwise carry
/// NSS, dlopen and DNS for this lookup.
pub fn passwd_name(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then_some(name)
    })
}

pub fn lookup_user(uid: u32, passwd: &str, group: &str) -> UserInfo {
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_owned(), f[5].to_owned()))
    });
    let Some((name, home)) = entry else {
        return UserInfo {
            home: "/".to_owned(),
            groups: Vec::new(),
        };
    };
    let groups = group
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let members = f.get(3)?;
            members
                .split(',')
                .any(|m| m.trim() == name)
                .then(|| f[2].parse().ok())?
        })
        .collect();
    UserInfo {
        home: if home.is_empty() {
            "/".to_owned()
        } else {
            home
        },
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_become_kernel_bits() {
        let set: Capabilities = serde_json::from_value(serde_json::json!([
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_SYS_ADMIN"
        ]))
        .unwrap();
        let supported = caps::all();
        let m = mask(Some(&set), &supported);
        assert_eq!(m, (1 << 0) | (1 << 5) | (1 << 21));
        assert_eq!(mask(None, &supported), 0);
    }

    #[test]
    fn user_lookup_reads_home_and_member_groups() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/usr/sbin:/bin/false\n";
        let group = "root:x:0:\nwheel:x:10:root,daemon\naudio:x:29:daemon\n";
        let root = lookup_user(0, passwd, group);
        assert_eq!(root.home, "/root");
        assert_eq!(root.groups, [10]);
        let daemon = lookup_user(1, passwd, group);
        assert_eq!(daemon.groups, [10, 29]);
        let unknown = lookup_user(1234, passwd, group);
        assert_eq!(unknown.home, "/");
        assert!(unknown.groups.is_empty());
    }
}
