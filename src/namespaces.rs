//! Which namespaces a container gets and in what order: a pure plan from the spec, then the kernel steps.
//!
//! Ordering rules (runc's nsexec, crun's `libcrun_run_linux_container`):
//! - nothing to join: one `clone` creates every new namespace at once (user included; the parent writes the id maps
//!   before the child goes on), so no extra process is needed, not even for a new pid namespace;
//! - something to join, or a time namespace: clone with no namespace flags, `setns` the joined ones (user first,
//!   mount last), then `unshare` a new user namespace (parent maps it), then the other new ones; pid and time
//!   namespaces only apply to children (kernels before 5.16 do not switch the time namespace at execve), so the child
//!   forks once and the grandchild becomes the container init;
//! - cgroup namespace: always unshared after the parent has placed the child in its cgroup, so the container's
//!   cgroup becomes the namespace root;
//! - time namespace: unshared and its offsets written before anything enters it (the forked init does).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, LinuxTimeOffset, Spec};

/// The config's `linux.namespaces`, empty when unset.
pub fn configured(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// A namespace type as the config names it (`"network"`, `"mount"`).
pub fn type_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// `CLONE_NEWTIME` (Linux 5.6), missing from nix.
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

/// The namespace steps for one container.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// Namespaces created by the clone itself.
    pub clone_flags: CloneFlags,
    /// Existing namespaces to join, in the order to join them.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// A new user namespace unshared by the child after its joins (the parent then maps it).
    pub unshare_user: bool,
    /// Other new namespaces unshared by the child after its joins.
    pub unshare_flags: CloneFlags,
    /// The child forks once so that a new or joined pid or time namespace applies to the container init.
    pub fork_init: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
    /// Whether the container ends up in a pid namespace other than hull's.
    pub private_pid: bool,
    /// Whether the container ends up in a user namespace other than hull's.
    pub user_ns: bool,
    /// Whether the container has a mount namespace of its own (new or joined); else it mounts into hull's.
    pub mount_ns: bool,
}

impl Plan {
    /// Whether the container gets a user namespace of its own, by the clone or unshared after joins.
    pub fn new_user_ns(&self) -> bool {
        self.unshare_user || self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// Whether the child, cloned into a new user namespace, waits for the parent to write its id maps (protocol step `Go`)
    /// before it goes on. Otherwise nothing of the parent's is needed first, and the round trip is skipped.
    pub fn child_awaits_id_maps(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }
}

/// The order in which every new process, the container's init (`create`) or an exec'd one, joins existing
/// namespaces: runc's (`configs.NamespaceTypes`), user first (it decides what the others allow).
pub const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
];

fn join_rank(t: LinuxNamespaceType) -> usize {
    JOIN_ORDER
        .iter()
        .position(|&kind| kind == t)
        .unwrap_or(JOIN_ORDER.len())
}

/// A namespace type's file in `/proc/<pid>/ns`.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn plan(spec: &Spec) -> Plan {
    let mut plan = Plan {
        clone_flags: CloneFlags::empty(),
        joins: Vec::new(),
        unshare_user: false,
        unshare_flags: CloneFlags::empty(),
        fork_init: false,
        new_cgroup: false,
        new_time: false,
        private_pid: false,
        user_ns: false,
        mount_ns: false,
    };
    let mut new = CloneFlags::empty();
    for ns in configured(spec) {
        match ns.path() {
            Some(path) => plan.joins.push((ns.typ(), path.clone())),
            None => new |= clone_flag(ns.typ()),
        }
        match ns.typ() {
            LinuxNamespaceType::Pid => plan.private_pid = true,
            LinuxNamespaceType::User => plan.user_ns = true,
            LinuxNamespaceType::Mount => plan.mount_ns = true,
            _ => {}
        }
    }
    plan.joins.sort_by_key(|(t, _)| join_rank(*t));
    plan.new_cgroup = new.contains(CloneFlags::CLONE_NEWCGROUP);
    plan.new_time = new.contains(CLONE_NEWTIME);
    let late = CloneFlags::CLONE_NEWCGROUP | CLONE_NEWTIME;
    let joined_time = plan
        .joins
        .iter()
        .any(|(t, _)| *t == LinuxNamespaceType::Time);
    if plan.joins.is_empty() && !plan.new_time {
        plan.clone_flags = new - late;
    } else {
        plan.unshare_user = new.contains(CloneFlags::CLONE_NEWUSER);
        plan.unshare_flags = new - late - CloneFlags::CLONE_NEWUSER;
        plan.fork_init = plan.private_pid || plan.new_time || joined_time;
    }
    plan
}

/// Open every namespace to join, before the clone (so a bad path fails early and names the path).
pub fn open_joins(plan: &Plan) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    plan.joins
        .iter()
        .map(|(t, path)| {
            let file = File::open(path)
                .with_context(|| format!("open {} namespace {}", type_name(*t), path.display()))?;
            Ok((*t, OwnedFd::from(file)))
        })
        .collect()
}

/// Child: join the opened namespaces in plan order.
pub fn join(fds: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    for (t, fd) in fds {
        setns(fd.as_fd(), clone_flag(*t))
            .with_context(|| format!("join {} namespace", type_name(*t)))?;
    }
    Ok(())
}

pub fn unshare_flags(flags: CloneFlags) -> Result<()> {
    if !flags.is_empty() {
        unshare(flags).with_context(|| format!("unshare {flags:?}"))?;
    }
    Ok(())
}

/// `/proc/<pid>/{uid,gid}_map` content: one "container host size" line per mapping.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Parent: write the child's id maps (one write(2) each, as the kernel requires).
pub fn write_id_maps(pid: Pid, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    write_maps(
        pid,
        linux.uid_mappings().as_deref().unwrap_or(&[]),
        linux.gid_mappings().as_deref().unwrap_or(&[]),
    )
}

/// The kernel's limit on the lines of one id map (`UID_GID_MAP_MAX_EXTENTS`, Linux 4.15+).
const MAX_MAP_EXTENTS: usize = 340;

/// Check an id mapping (`what` names it in errors) as the kernel will when it is written: every range non-empty
/// and within 32 bits, no two ranges overlapping on either side, at most 340 of them. The kernel would only say
/// "Invalid argument".
pub fn check_id_mappings(what: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.len() > MAX_MAP_EXTENTS {
        bail!(
            "{what}: {} ranges, the kernel takes at most {MAX_MAP_EXTENTS}",
            maps.len()
        );
    }
    let range = |start: u32, size: u32| (start as u64, start as u64 + size as u64);
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            bail!("{what}[{i}]: size must be greater than zero");
        }
        for (side, (start, end)) in [
            ("container", range(m.container_id(), m.size())),
            ("host", range(m.host_id(), m.size())),
        ] {
            if end > u64::from(u32::MAX) {
                bail!(
                    "{what}[{i}]: {side} ids {start}-{} go past 4294967294",
                    end - 1
                );
            }
        }
        for (j, other) in maps.iter().enumerate().take(i) {
            for (side, a, b) in [
                (
                    "container",
                    range(m.container_id(), m.size()),
                    range(other.container_id(), other.size()),
                ),
                (
                    "host",
                    range(m.host_id(), m.size()),
                    range(other.host_id(), other.size()),
                ),
            ] {
                if a.0 < b.1 && b.0 < a.1 {
                    bail!(
                        "{what}[{j}] and [{i}] overlap: {side} ids {}-{} and {}-{}",
                        b.0,
                        b.1 - 1,
                        a.0,
                        a.1 - 1
                    );
                }
            }
        }
    }
    Ok(())
}

/// Write `uids` and `gids` as the uid_map and gid_map of `pid`, which sits in a user namespace of its own. An
/// unprivileged hull may write only a mapping of its own ids (for gids, once setgroups is denied, as runc does for
/// exactly that mapping); for anything more the kernel says EPERM and the setuid `newuidmap`/`newgidmap` (Debian's
/// `uidmap`), which check /etc/subuid and /etc/subgid, write it instead.
pub fn write_maps(pid: Pid, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let unprivileged = !nix::unistd::geteuid().is_root();
    let own_gid = nix::unistd::getegid().as_raw();
    if unprivileged && matches!(gids, [only] if only.host_id() == own_gid && only.size() == 1) {
        let path = format!("/proc/{pid}/setgroups");
        std::fs::write(&path, "deny").with_context(|| format!("write deny to {path}"))?;
    }
    for (file, maps, tool) in [
        ("uid_map", uids, "newuidmap"),
        ("gid_map", gids, "newgidmap"),
    ] {
        let text = map_text(maps);
        let path = format!("/proc/{pid}/{file}");
        let written = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        match written {
            Ok(()) => {}
            Err(e) if unprivileged && e.raw_os_error() == Some(libc::EPERM) => {
                run_mapping_tool(tool, pid, maps)?
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("write {} to {path}", text.trim_end().replace('\n', ", "))
                })
            }
        }
    }
    Ok(())
}

/// `newuidmap PID ID HOSTID SIZE...` (or newgidmap), with an empty environment as runc runs it.
fn run_mapping_tool(tool: &str, pid: Pid, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(tool);
    cmd.arg(pid.to_string()).env_clear();
    for m in maps {
        cmd.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let out = match cmd.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{tool} not found: an unprivileged user can map ids beyond its own only through {tool} \
             (Debian package uidmap)"
        ),
        other => other.with_context(|| format!("run {tool}"))?,
    };
    if !out.status.success() {
        bail!(
            "{tool} {pid} {}: {}",
            map_text(maps).trim_end().replace('\n', " "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Child, in its user namespace: become its root. The kernel keeps the credentials hull had (host uid 0), which the
/// namespace's mapping usually does not contain; until this, the child would act as the overflow uid.
pub fn become_root() -> Result<()> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .context("setgid 0 in the user namespace")?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .context("setuid 0 in the user namespace")?;
    Ok(())
}

/// `/proc/self/timens_offsets` content for `linux.timeOffsets`.
pub fn time_offsets_text(offsets: &HashMap<String, LinuxTimeOffset>) -> String {
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    clocks
        .into_iter()
        .map(|(clock, o)| {
            format!(
                "{clock} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect()
}

/// Child: create the time namespace its execve will enter, with the configured offsets.
pub fn unshare_time(spec: &Spec) -> Result<()> {
    unshare(CLONE_NEWTIME).context("unshare time namespace")?;
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref());
    if let Some(offsets) = offsets.filter(|o| !o.is_empty()) {
        let text = time_offsets_text(offsets);
        OpenOptions::new()
            .write(true)
            .open("/proc/self/timens_offsets")
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("write {:?} to /proc/self/timens_offsets", text.trim_end()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(namespaces: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"namespaces": namespaces}
        }))
        .unwrap()
    }

    fn maps(json: serde_json::Value) -> Vec<LinuxIdMapping> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn id_mappings_are_checked_as_the_kernel_would() {
        let check =
            |json| check_id_mappings("linux.uidMappings", &maps(json)).map_err(|e| e.to_string());
        assert_eq!(
            check(
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536},
                                     {"containerID": 65536, "hostID": 0, "size": 1}])
            ),
            Ok(())
        );
        assert_eq!(
            check(
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536},
                                     {"containerID": 1000, "hostID": 0, "size": 10}])
            ),
            Err(
                "linux.uidMappings[0] and [1] overlap: container ids 0-65535 and 1000-1009"
                    .to_owned()
            )
        );
        assert_eq!(
            check(
                serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 10},
                                     {"containerID": 10, "hostID": 100005, "size": 10}])
            ),
            Err(
                "linux.uidMappings[0] and [1] overlap: host ids 100000-100009 and 100005-100014"
                    .to_owned()
            )
        );
        assert_eq!(
            check(serde_json::json!([{"containerID": 0, "hostID": 0, "size": 0}])),
            Err("linux.uidMappings[0]: size must be greater than zero".to_owned())
        );
        assert_eq!(
            check(serde_json::json!([{"containerID": 0, "hostID": 4294967295u32, "size": 2}])),
            Err(
                "linux.uidMappings[0]: host ids 4294967295-4294967296 go past 4294967294"
                    .to_owned()
            )
        );
        let many: Vec<_> = (0..341)
            .map(|i| serde_json::json!({"containerID": i, "hostID": 1000 + i, "size": 1}))
            .collect();
        assert_eq!(
            check(serde_json::Value::Array(many)),
            Err("linux.uidMappings: 341 ranges, the kernel takes at most 340".to_owned())
        );
    }

    #[test]
    fn all_new_namespaces_come_from_one_clone() {
        let p = plan(&spec_with(serde_json::json!([
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "cgroup"}, {"type": "user"}
        ])));
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUSER
        );
        assert!(p.joins.is_empty() && !p.fork_init && !p.unshare_user);
        assert!(p.new_cgroup && !p.new_time && p.private_pid && p.user_ns);
    }

    #[test]
    fn a_time_namespace_needs_the_fork() {
        let p = plan(&spec_with(
            serde_json::json!([{"type": "pid"}, {"type": "mount"}, {"type": "time"}]),
        ));
        assert_eq!(p.clone_flags, CloneFlags::empty());
        assert_eq!(
            p.unshare_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert!(p.new_time && p.fork_init);
    }

    #[test]
    fn joining_follows_runcs_order_and_forks_for_pid() {
        let p = plan(&spec_with(serde_json::json!([
            {"type": "time", "path": "/proc/1/ns/time"}, {"type": "cgroup", "path": "/proc/1/ns/cgroup"},
            {"type": "mount", "path": "/proc/1/ns/mnt"}, {"type": "network", "path": "/proc/1/ns/net"},
            {"type": "user", "path": "/proc/1/ns/user"}, {"type": "pid"}
        ])));
        let order: Vec<_> = p.joins.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            order,
            [
                LinuxNamespaceType::User,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Cgroup,
                LinuxNamespaceType::Time,
            ]
        );
        assert_eq!(p.clone_flags, CloneFlags::empty());
        assert_eq!(p.unshare_flags, CloneFlags::CLONE_NEWPID);
        assert!(p.fork_init && !p.unshare_user);
    }

    #[test]
    fn every_namespace_type_has_its_place_in_the_join_order() {
        for t in [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::User,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Time,
        ] {
            assert!(join_rank(t) < JOIN_ORDER.len(), "{t:?}");
        }
        let files: Vec<_> = JOIN_ORDER.iter().map(|&t| proc_name(t)).collect();
        assert_eq!(
            files,
            ["user", "ipc", "uts", "net", "pid", "mnt", "cgroup", "time"]
        );
    }

    #[test]
    fn joined_pid_namespace_needs_the_fork_too() {
        let p = plan(&spec_with(
            serde_json::json!([{"type": "mount"}, {"type": "pid", "path": "/proc/1/ns/pid"}]),
        ));
        assert!(p.fork_init && p.private_pid);
        assert_eq!(p.unshare_flags, CloneFlags::CLONE_NEWNS);
    }

    #[test]
    fn new_user_namespace_with_joins_is_unshared_by_the_child() {
        let p = plan(&spec_with(serde_json::json!([
            {"type": "user"}, {"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}
        ])));
        assert!(p.unshare_user);
        assert_eq!(p.unshare_flags, CloneFlags::CLONE_NEWNS);
        assert!(!p.fork_init && !p.private_pid);
    }

    #[test]
    fn id_map_and_time_offset_text() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_value(serde_json::json!([
            {"containerID": 0, "hostID": 100000, "size": 65536}, {"containerID": 65536, "hostID": 1, "size": 1}
        ]))
        .unwrap();
        assert_eq!(map_text(&maps), "0 100000 65536\n65536 1 1\n");
        let offsets: HashMap<String, LinuxTimeOffset> = serde_json::from_value(serde_json::json!({
            "monotonic": {"secs": 86400}, "boottime": {"secs": 1, "nanosecs": 5}
        }))
        .unwrap();
        assert_eq!(
            time_offsets_text(&offsets),
            "boottime 1 5\nmonotonic 86400 0\n"
        );
    }
}
