//! Container cgroups (cgroupfs driver): where a container's cgroup lives in every mounted hierarchy of
//! this host, and its lifecycle there (create, join, limit, inspect, signal, destroy).
//!
//! The layout is read from `/proc/self/mountinfo` and `/proc/self/cgroup`, so pure cgroup v1, hybrid
//! (v1 controllers plus a cgroup2 hierarchy, e.g. at `/sys/fs/cgroup/unified`) and pure cgroup v2 hosts
//! are all handled. What is specific to one cgroup version lives in `v1.rs` and `v2.rs`; the device
//! policy both share in `devices.rs`, and its cgroup2 enforcement (an eBPF program) in `bpf.rs`; the
//! vocabulary of the resource plans in `plan.rs`.

mod bpf;
mod devices;
mod entry;
mod layout;
mod oom;
pub(crate) mod plan;
mod stats;
mod sub;
pub mod systemd;
mod tree;
pub(crate) mod v1;
pub(crate) mod v2;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::logger;

use entry::open_for_write;
pub use entry::{Entry, Placement};
use layout::{hierarchies_at, resolve_layout, unified_root};
#[cfg(test)]
use plan::Facts;
use plan::Write;
pub use stats::Stats;
pub use sub::SubPaths;
use tree::{collect_pids, create_in, dirs_below, mkdir, remove_with_retry};
pub use v1::v1_writes;
pub use v2::v2_writes;

/// How long `destroy` keeps retrying a cgroup that is still busy (its processes are exiting).
const DESTROY_TIMEOUT: Duration = Duration::from_secs(1);

/// How many rounds `signal_all` re-reads the cgroup to catch processes forked while it signals.
const SIGNAL_ROUNDS: usize = 32;

/// Where a container's cgroup lives on this host, in every hierarchy. Serializable: stored in state.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cgroup {
    hierarchies: Vec<Hierarchy>,
    /// The topmost directory `create` made in each hierarchy (the container's own or an ancestor), so that
    /// `destroy` removes the ancestors hull created, and only those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    created: Vec<PathBuf>,
    /// The systemd unit that owns the cgroup (`--systemd-cgroup`): systemd makes and removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::Unit>,
}

/// One mounted cgroup hierarchy and the container's directory in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hierarchy {
    /// Host mountpoint, e.g. /sys/fs/cgroup/memory, /sys/fs/cgroup/unified, /sys/fs/cgroup.
    pub mountpoint: PathBuf,
    /// v1 super options that name the hierarchy: ["memory"], ["cpu","cpuacct"], ["name=systemd"]; empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
    /// Absolute host path of the container's cgroup dir in this hierarchy.
    pub path: PathBuf,
}

impl Cgroup {
    /// Resolves OCI `linux.cgroupsPath` against this host's layout, without writing anything.
    ///
    /// runc's cgroupfs semantics: an absolute path starts at each hierarchy's root; a relative one is
    /// placed, on v1, under this process's own cgroup of that hierarchy and, on v2, under the *parent* of
    /// this process's own cgroup (which usually holds processes, so it cannot delegate controllers).
    /// `None` or an empty path means the relative path `hull/<id>`. A path whose `..` components
    /// climb out of its starting cgroup, or that names the starting cgroup itself, is rejected.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let mountinfo = read_to_string("/proc/self/mountinfo")?;
        let proc_cgroup = read_to_string("/proc/self/cgroup")?;
        resolve_layout(&mountinfo, &proc_cgroup, cgroups_path, id)
    }

    /// The systemd driver's cgroup: the unit `linux.cgroupsPath` names (see `systemd::UnitName`) below its manager's
    /// cgroup in the cgroup2 hierarchy. Only a pure cgroup v2 host has it: on a v1 or hybrid host runc's systemd
    /// driver keeps v1 hierarchies in step too, which hull does not do.
    pub fn resolve_systemd(
        cgroups_path: Option<&Path>,
        id: &str,
        rootless: bool,
    ) -> Result<Cgroup> {
        let path = cgroups_path.map(|p| p.to_string_lossy().into_owned());
        let name = systemd::UnitName::parse(path.as_deref(), id, rootless)?;
        let mountpoint = unified_root(&read_to_string("/proc/self/mountinfo")?)?;
        let bus = systemd::Bus::for_this_process(rootless)?;
        let manager_cgroup = match bus {
            systemd::Bus::System => String::new(),
            systemd::Bus::User { .. } => systemd::Manager::connect(&bus)?.control_group()?,
        };
        let relative = format!("{manager_cgroup}{}", name.relative_cgroup()?);
        Ok(Cgroup {
            hierarchies: vec![Hierarchy {
                path: mountpoint.join(relative.trim_start_matches('/')),
                mountpoint,
                controllers: Vec::new(),
                v2: true,
            }],
            created: Vec::new(),
            systemd: Some(systemd::Unit { name, bus }),
        })
    }

    /// The systemd unit that owns the cgroup, if systemd manages it.
    pub fn systemd_unit(&self) -> Option<&systemd::Unit> {
        self.systemd.as_ref()
    }

    /// Have systemd make the cgroup as the transient unit with `pid` in it (see `systemd::Manager::start`), given
    /// the `org.systemd.property.*` annotations, then the limits `r` as its properties (the device policy only for
    /// a system unit: a user instance cannot filter devices).
    pub fn start_unit(
        &self,
        pid: u32,
        id: &str,
        r: &LinuxResources,
        annotations: &HashMap<String, String>,
    ) -> Result<()> {
        let unit = self
            .systemd
            .as_ref()
            .context("the cgroup has no systemd unit")?;
        let mut properties = systemd::annotation_properties(annotations)?;
        properties.extend(systemd::resource_properties(
            r,
            unit.bus == systemd::Bus::System,
        )?);
        systemd::Manager::connect(&unit.bus)?.start(
            &unit.name,
            pid,
            &format!("hull container {id}"),
            properties,
        )
    }

    /// The root of every hierarchy of this process: what a container without a cgroup of its own is shown, read-only,
    /// at a cgroup mount (runc binds the host's /sys/fs/cgroup there).
    pub fn host_hierarchies() -> Result<Vec<Hierarchy>> {
        let mountinfo = read_to_string("/proc/self/mountinfo")?;
        let proc_cgroup = read_to_string("/proc/self/cgroup")?;
        hierarchies_at(&mountinfo, &proc_cgroup, true, Path::new(""))
    }

    /// No cgroup at all: a rootless container that may not have one (see `rootless`). Every operation on it does
    /// nothing, finds no process, or (pause) fails.
    pub fn none() -> Cgroup {
        Cgroup {
            hierarchies: Vec::new(),
            created: Vec::new(),
            systemd: None,
        }
    }

    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// True when the host is pure cgroup v2: a single cgroup2 hierarchy and no v1 one.
    pub fn is_unified(&self) -> bool {
        matches!(self.hierarchies.as_slice(), [h] if h.v2)
    }

    /// Creates the container's directory (and missing ancestors, remembered for `destroy`) in every hierarchy.
    ///
    /// On cgroup2 every ancestor, from the root down to the container's parent, gets all the controllers
    /// it has available enabled in its `cgroup.subtree_control`; on v1 cpuset, every new directory gets
    /// `cpuset.cpus`/`cpuset.mems` copied from its parent. On error the directories made here are removed.
    pub fn create(&mut self) -> Result<()> {
        let mut created = Vec::new();
        let mut tops = Vec::new();
        for h in &self.hierarchies {
            let before = created.len();
            // A concurrent `delete` may remove an ancestor hull made for another container between our mkdirs
            // (ENOENT): make the path again.
            let mut result = create_in(h, &mut created);
            for _ in 0..3 {
                match &result {
                    Err(err) if errno_of(err) == Some(Errno::ENOENT) => {
                        result = create_in(h, &mut created)
                    }
                    _ => break,
                }
            }
            if let Err(err) = result {
                for dir in created.iter().rev() {
                    let _ = fs::remove_dir(dir);
                }
                return Err(err);
            }
            tops.extend(created.get(before).cloned());
        }
        self.created = tops;
        Ok(())
    }

    /// Before [`Cgroup::create`]: record as made the topmost directory missing in each hierarchy, so that a record
    /// of this cgroup saved now lets `delete` remove what a `create` killed half-way through had made.
    pub fn expect_created(&mut self) {
        if self.systemd.is_some() {
            // systemd makes (and removes) the unit's cgroup and its slices.
            return;
        }
        self.created = self
            .hierarchies
            .iter()
            .map(|h| {
                // From the leaf up to the first directory that exists: usually one stat, of the leaf's parent.
                let mut top = h.path.clone();
                for dir in h.path.ancestors().skip(1) {
                    if dir == h.mountpoint || dir.exists() {
                        break;
                    }
                    top = dir.to_path_buf();
                }
                top
            })
            .collect();
    }

    /// After [`Cgroup::create`]: runc 1.5's refusal of a cgroup that existed before and is in use: it holds processes
    /// (checked in the first hierarchy, as runc does), or it is frozen. The freezer is checked whether or not the
    /// first hierarchy was made now (on a hybrid host the v1 freezer and cgroup2 directories may exist alone), in every
    /// hierarchy that has one: an init cloned into a frozen cgroup would never report, and `create` would hang.
    pub fn check_reusable(&self) -> Result<()> {
        if self.any_frozen()? {
            bail!("container's cgroup unexpectedly frozen");
        }
        let Some(h) = self.hierarchies.first() else {
            return Ok(());
        };
        if self.made_now(h) {
            return Ok(());
        }
        let mut pids = Vec::new();
        collect_pids(&h.path, &mut pids)?;
        if !pids.is_empty() {
            bail!(
                "container's cgroup is not empty: {} process(es) found",
                pids.len()
            );
        }
        Ok(())
    }

    /// Whether the v1 freezer or any cgroup2 directory of the container's holds its processes frozen. A directory
    /// this `create` made cannot be, so on the usual path nothing is read.
    fn any_frozen(&self) -> Result<bool> {
        for h in self.hierarchies.iter().filter(|h| !self.made_now(h)) {
            let frozen = if h.v2 {
                v2::is_frozen(&h.path)?
            } else if h.controllers.iter().any(|c| c == "freezer") {
                v1::is_frozen(&h.path)?
            } else {
                false
            };
            if frozen {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `h`'s directory was made by this `create` (see [`Cgroup::create`]).
    fn made_now(&self, h: &Hierarchy) -> bool {
        self.created.iter().any(|top| h.path.starts_with(top))
    }

    /// Opens what a new process needs to enter the container's cgroups by itself (see [`Entry`]).
    pub fn entry(&self) -> Result<Entry> {
        self.entry_at(&SubPaths::default())
    }

    /// [`Cgroup::entry`] for a process that goes into existing sub-cgroups of the container's (`exec --cgroup`).
    pub fn entry_at(&self, sub: &SubPaths) -> Result<Entry> {
        let mut entry = Entry::outside();
        for h in &self.hierarchies {
            let dir = sub.dir_in(h);
            if h.v2 {
                let fd = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(&dir)
                    .with_context(|| format!("open {}", dir.display()))?;
                entry.clone_into = Some((dir, fd.into()));
            } else {
                entry.files.push(open_for_write(&dir.join("tasks"))?);
            }
        }
        Ok(entry)
    }

    /// Applies `linux.resources` the way runc's cgroupfs managers do (see `v1_writes` and `v2_writes` for what is
    /// written where and in which order). Like runc, v1 always ends up deny-all plus the given device rules plus
    /// runc's default devices, so call this with `LinuxResources::default()` when the spec has no resources, and
    /// append an "rwm" allow rule for each `linux.devices` entry; on cgroup2 the same policy becomes an eBPF filter
    /// that replaces the previous one. Everything is checked before the first write:
    /// a bad value or a controller this host lacks is an error that names it, with nothing written.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.apply_resources(r, true)
    }

    fn apply_resources(&self, r: &LinuxResources, devices: bool) -> Result<()> {
        let r = self.as_systemd_writes(r);
        let r = r.as_ref();
        if r.memory().and_then(|m| m.kernel()).is_some_and(|k| k != 0) {
            logger::log(
                logger::Level::Warning,
                "Kernel memory settings are ignored and will be removed",
            );
        }
        if let [h] = self.hierarchies.as_slice() {
            if h.v2 {
                let facts = v2::facts(&h.path, r)?;
                let writes = v2_writes(r, &facts)?;
                let filter = if devices {
                    Some(bpf::device_filter(r)?)
                } else {
                    None
                };
                execute(
                    writes
                        .into_iter()
                        .map(|w| (h.path.join(&w.file), w))
                        .collect(),
                )?;
                return match filter {
                    Some(filter) => bpf::apply_devices(&h.path, filter.as_deref()),
                    None => Ok(()),
                };
            }
        }
        let facts = v1::facts(|c| self.v1_hierarchy(c).map(|h| h.path.as_path()), r)?;
        let mut planned = Vec::new();
        for w in v1_writes(r, &facts)? {
            if w.controller == "devices" && !devices {
                continue;
            }
            let h = self.v1_hierarchy(w.controller).ok_or_else(|| {
                anyhow!(
                    "cannot write {}: the {} cgroup v1 controller is not mounted",
                    w.file,
                    w.controller
                )
            })?;
            planned.push((h.path.join(&w.file), w));
        }
        execute(planned)
    }

    /// PIDs in the container's cgroup and its sub-cgroups, sorted. On v1 (and hybrid) hosts they are read
    /// from the pids hierarchy, else the memory one, else the first v1 one. A missing cgroup has none.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(h) = self.procs_hierarchy() else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        collect_pids(&h.path, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Whether the freezer reports the cgroup frozen: v1 `freezer.state` FROZEN, else cgroup2
    /// `cgroup.freeze` 1 with `cgroup.events` "frozen 1". A missing freezer or cgroup is not frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        if let Some(h) = self.v1_hierarchy("freezer") {
            return v1::is_frozen(&h.path);
        }
        match self.hierarchies.iter().find(|h| h.v2) {
            Some(h) => v2::is_frozen(&h.path),
            None => Ok(false),
        }
    }

    /// Move process `pid` into the container's cgroup in every hierarchy (a restore puts CRIU there, so that what it
    /// restores is born inside).
    pub fn attach(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            let procs = h.path.join("cgroup.procs");
            fs::write(&procs, pid.to_string())
                .with_context(|| format!("write {pid} to {}", procs.display()))?;
        }
        Ok(())
    }

    /// The directory that freezes the container: the v1 freezer's where it is mounted, else the cgroup2 one (what
    /// runc's cgroup managers answer to `Path("freezer")`, and what CRIU freezes while it dumps).
    pub fn freezer_path(&self) -> Option<&Path> {
        self.v1_hierarchy("freezer")
            .or_else(|| self.hierarchies.iter().find(|h| h.v2))
            .map(|h| h.path.as_path())
    }

    /// Freezes (pause) or thaws (resume) every process in the cgroup: the v1 freezer where it is mounted (as runc on a
    /// hybrid host), else cgroup2's `cgroup.freeze`; returns once the kernel reports the cgroup frozen.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        if let Some(h) = self.v1_hierarchy("freezer") {
            return v1::set_frozen(&h.path, frozen);
        }
        match self.hierarchies.iter().find(|h| h.v2) {
            Some(h) => v2::set_frozen(&h.path, frozen),
            None if !frozen => Ok(()),
            None if self.hierarchies.is_empty() => {
                bail!("the container has no cgroup to freeze: a rootless hull runs it without one when not permitted to make one")
            }
            None => {
                bail!("freezer not supported: this host has neither the v1 freezer nor cgroup2")
            }
        }
    }

    /// The current CFS bandwidth as (quota, period) in microseconds, quota -1 for none: v1 `cpu.cfs_quota_us` and
    /// `cpu.cfs_period_us`, cgroup2 `cpu.max`. `None` where the host has no cpu controller for the container.
    pub fn cpu_bandwidth(&self) -> Result<Option<(i64, u64)>> {
        let parse = |path: &Path, text: &str| -> Result<i64> {
            match text.trim() {
                "max" => Ok(-1),
                t => t
                    .parse()
                    .with_context(|| format!("parse {t:?} in {}", path.display())),
            }
        };
        if let Some(h) = self.v1_hierarchy("cpu") {
            let quota_path = h.path.join("cpu.cfs_quota_us");
            let period_path = h.path.join("cpu.cfs_period_us");
            let quota = parse(&quota_path, &read_to_string(&quota_path)?)?;
            let period = parse(&period_path, &read_to_string(&period_path)?)?;
            return Ok(Some((quota, period as u64)));
        }
        let Some(h) = self.hierarchies.iter().find(|h| h.v2) else {
            return Ok(None);
        };
        let path = h.path.join("cpu.max");
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(None);
        };
        let (quota, period) = text
            .trim()
            .split_once(' ')
            .with_context(|| format!("parse {:?} in {}", text.trim(), path.display()))?;
        Ok(Some((parse(&path, quota)?, parse(&path, period)? as u64)))
    }

    /// Applies the resources of `runc update`: the systemd unit's properties (see `systemd::resource_properties`),
    /// then the files, as [`Cgroup::apply_limits`].
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        if let Some(unit) = &self.systemd {
            let properties = systemd::resource_properties(r, false)?;
            systemd::Manager::connect(&unit.bus)?.set_properties(&unit.name, properties)?;
        }
        self.apply_limits(r)
    }

    /// Writes the limits of `r` to the cgroup files: as `apply`, except the device rules, which an update never
    /// changes (runc ignores them too; rewriting them would briefly deny every device on v1) and a rootless hull
    /// may not set.
    pub fn apply_limits(&self, r: &LinuxResources) -> Result<()> {
        let mut r = r.clone();
        r.set_devices(None);
        self.apply_resources(&r, false)
    }

    /// The resources as hull writes them under systemd: the CPU quota rounded up as systemd rounds its
    /// `CPUQuotaPerSecUSec`, so that the file says what systemd itself would write (see `systemd::systemd_quota`).
    fn as_systemd_writes<'a>(&self, r: &'a LinuxResources) -> Cow<'a, LinuxResources> {
        let Some(cpu) = r.cpu().as_ref().filter(|_| self.systemd.is_some()) else {
            return Cow::Borrowed(r);
        };
        let Some(quota) = cpu.quota() else {
            return Cow::Borrowed(r);
        };
        let rounded = systemd::systemd_quota(quota, cpu.period().unwrap_or(0));
        if rounded == quota {
            return Cow::Borrowed(r);
        }
        let mut cpu = cpu.clone();
        cpu.set_quota(Some(rounded));
        let mut r = r.clone();
        r.set_cpu(Some(cpu));
        Cow::Owned(r)
    }

    /// Sends `sig` to every process in the cgroup. SIGKILL uses cgroup2's `cgroup.kill` when the kernel
    /// has it; otherwise the cgroup is re-read after each round, so children forked meanwhile get it too.
    pub fn signal_all(&self, sig: Signal) -> Result<()> {
        if sig == Signal::SIGKILL {
            if let Some(h) = self.hierarchies.iter().find(|h| h.v2) {
                if v2::kill(&h.path)? {
                    return Ok(());
                }
            }
        }
        let mut signalled = HashSet::new();
        for _ in 0..SIGNAL_ROUNDS {
            let fresh: Vec<i32> = self
                .pids()?
                .into_iter()
                .filter(|pid| signalled.insert(*pid))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for pid in fresh {
                match signal::kill(Pid::from_raw(pid), sig) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(err) => {
                        return Err(err).with_context(|| format!("send {sig} to pid {pid}"))
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the container's directory, deepest sub-cgroups first, in every hierarchy. Missing
    /// directories are fine; busy ones are retried for about a second in all. Ancestors are left in place, except
    /// those hull made.
    pub fn destroy(&self) -> Result<()> {
        self.remove(Removal::Everything)
    }

    /// [`Cgroup::destroy`] for a container whose `create` was killed before it finished: its systemd unit may be on
    /// its way still (asked for, its cgroup not made yet, or failed for want of a live process), so the unit is
    /// stopped and forgotten whatever the cgroup shows.
    pub fn destroy_unfinished(&self) -> Result<()> {
        self.remove(Removal::Unfinished)
    }

    /// Undo [`Cgroup::create`] when the cgroup is refused (see [`Cgroup::check_reusable`]): remove only the
    /// directories it made, leaving a cgroup that existed before as it was.
    pub fn remove_made(&self) -> Result<()> {
        self.remove(Removal::OnlyMade)
    }

    fn remove(&self, removal: Removal) -> Result<()> {
        let only_made = removal == Removal::OnlyMade;
        if let Some(unit) = &self.systemd {
            let mut manager = systemd::Manager::connect(&unit.bus)?;
            if removal == Removal::Unfinished || self.hierarchies.iter().any(|h| h.path.exists()) {
                manager.stop(&unit.name)?;
                logger::phase("delete: systemd unit stopped");
            } else {
                // systemd removes a unit's cgroup once the unit is inactive (a scope whose last process is gone):
                // nothing to stop, only a failed unit to forget.
                manager.forget(&unit.name);
                logger::phase("delete: systemd unit forgotten");
            }
        }
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        let mut first_error = None;
        for h in &self.hierarchies {
            let top = self.created.iter().find(|t| h.path.starts_with(t));
            if only_made && top.is_none() {
                continue;
            }
            if let Err(err) = remove_with_retry(&h.path, deadline) {
                first_error.get_or_insert(err);
                continue;
            }
            let Some(top) = top else {
                continue;
            };
            // Ancestors hull made, bottom up; one still holding another container's cgroup stays (EBUSY).
            for dir in h
                .path
                .ancestors()
                .skip(1)
                .take_while(|d| d.starts_with(top))
            {
                if fs::remove_dir(dir).is_err() {
                    break;
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn v1_hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
    }

    fn procs_hierarchy(&self) -> Option<&Hierarchy> {
        if self.is_unified() {
            return self.hierarchies.first();
        }
        self.v1_hierarchy("pids")
            .or_else(|| self.v1_hierarchy("memory"))
            .or_else(|| self.hierarchies.iter().find(|h| !h.v2))
    }
}

/// What [`Cgroup::remove`] takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    Everything,
    /// Everything, after a `create` that did not finish.
    Unfinished,
    /// Only the directories this `create` made.
    OnlyMade,
}

/// Performs planned writes in order. A write marked `retry_after_next` that the kernel refuses with EINVAL is
/// written again after the next write that is not so marked (or at the end), and only then may fail; one marked
/// `if_present` whose file the kernel lacks is skipped.
fn execute(writes: Vec<(PathBuf, Write)>) -> Result<()> {
    let mut deferred = Vec::new();
    for (path, w) in writes {
        match write_planned(&path, &w) {
            Err(err) if w.retry_after_next && errno_of(&err) == Some(Errno::EINVAL) => {
                deferred.push((path, w));
                continue;
            }
            Err(err) if w.if_present && errno_of(&err) == Some(Errno::ENOENT) => continue,
            result => result?,
        }
        if !w.retry_after_next {
            for (path, w) in deferred.drain(..) {
                write_planned(&path, &w)?;
            }
        }
    }
    for (path, w) in deferred {
        write_planned(&path, &w)?;
    }
    Ok(())
}

fn write_planned(path: &Path, w: &Write) -> Result<()> {
    let result = if w.controller.is_empty() {
        write_file(path, &w.value)
    } else {
        v1::write(path, &w.value)
    };
    match &w.context {
        Some(context) => result.with_context(|| context.clone()),
        None => result,
    }
}

/// The errno under an error made from an io::Error, if any.
fn errno_of(err: &anyhow::Error) -> Option<Errno> {
    err.downcast_ref::<io::Error>()
        .and_then(io::Error::raw_os_error)
        .map(Errno::from_raw)
}

/// Writes `value` to a cgroup file with a single write(2), as the kernel takes one value per write.
fn write_file(path: &Path, value: &str) -> Result<()> {
    let context = || format!("write {value} to {}", path.display());
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(context)?;
    let written = file.write(value.as_bytes()).with_context(context)?;
    if written != value.len() {
        bail!("{}: short write of {written} bytes", context());
    }
    Ok(())
}

fn read_to_string(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    crate::sys::read_proc_file(path).with_context(|| format!("read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 22 0:32 / /run/memory-again rw,relatime - cgroup cgroup rw,memory
";

    const HYBRID_CGROUP: &str = "\
5:name=systemd:/user.slice/user-0.slice/session-1.scope
4:memory:/process_api/abc
3:cpu,cpuacct:/
2:pids:/user.slice
1:rdma:/
0::/user.slice/user-0.slice/session-1.scope
";

    const V2_MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V1_MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpuacct,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
";

    const V1_CGROUP: &str = "\
4:devices:/docker/abc
3:cpuset:/
2:cpu,cpuacct:/system.slice/x.service
0::/
";

    fn resolve(mountinfo: &str, cgroup: &str, path: Option<&str>) -> Result<Cgroup> {
        resolve_layout(mountinfo, cgroup, path.map(Path::new), "c1")
    }

    /// (mountpoint, controllers, v2, path) of every hierarchy.
    fn table(cg: &Cgroup) -> Vec<(String, String, bool, String)> {
        cg.hierarchies()
            .iter()
            .map(|h| {
                (
                    h.mountpoint.display().to_string(),
                    h.controllers.join(","),
                    h.v2,
                    h.path.display().to_string(),
                )
            })
            .collect()
    }

    fn row(
        mountpoint: &str,
        controllers: &str,
        v2: bool,
        path: &str,
    ) -> (String, String, bool, String) {
        (mountpoint.into(), controllers.into(), v2, path.into())
    }

    #[test]
    fn hybrid_relative_paths_start_at_own_cgroup_and_at_its_parent_on_v2() {
        let cg = resolve(HYBRID_MOUNTINFO, HYBRID_CGROUP, Some("pod/ctr")).unwrap();
        assert_eq!(
            table(&cg),
            vec![
                row(
                    "/sys/fs/cgroup/cpu,cpuacct",
                    "cpu,cpuacct",
                    false,
                    "/sys/fs/cgroup/cpu,cpuacct/pod/ctr"
                ),
                row(
                    "/sys/fs/cgroup/memory",
                    "memory",
                    false,
                    "/sys/fs/cgroup/memory/process_api/abc/pod/ctr"
                ),
                row(
                    "/sys/fs/cgroup/pids",
                    "pids",
                    false,
                    "/sys/fs/cgroup/pids/user.slice/pod/ctr"
                ),
                row(
                    "/sys/fs/cgroup/systemd",
                    "name=systemd",
                    false,
                    "/sys/fs/cgroup/systemd/user.slice/user-0.slice/session-1.scope/pod/ctr"
                ),
                row(
                    "/sys/fs/cgroup/unified",
                    "",
                    true,
                    "/sys/fs/cgroup/unified/user.slice/user-0.slice/pod/ctr"
                ),
            ]
        );
        assert!(!cg.is_unified());
    }

    #[test]
    fn hybrid_absolute_path_starts_at_every_root() {
        let cg = resolve(HYBRID_MOUNTINFO, HYBRID_CGROUP, Some("/machine/./c1/")).unwrap();
        let paths: Vec<String> = table(&cg).into_iter().map(|r| r.3).collect();
        assert_eq!(
            paths,
            [
                "/sys/fs/cgroup/cpu,cpuacct/machine/c1",
                "/sys/fs/cgroup/memory/machine/c1",
                "/sys/fs/cgroup/pids/machine/c1",
                "/sys/fs/cgroup/systemd/machine/c1",
                "/sys/fs/cgroup/unified/machine/c1",
            ]
        );
    }

    #[test]
    fn the_systemd_driver_finds_the_whole_hierarchy_beside_a_containers_mounts() {
        let with_container = format!(
            "{V2_MOUNTINFO}90 31 0:26 /hull/c1 /tmp/b/rootfs/sys/fs/cgroup ro,relatime - cgroup2 cgroup2 rw\n"
        );
        assert_eq!(
            unified_root(&with_container).unwrap(),
            Path::new("/sys/fs/cgroup")
        );
        let v1_too =
            format!("{V2_MOUNTINFO}91 31 0:40 / /sys/fs/cgroup/x rw - cgroup cgroup rw,memory\n");
        assert!(unified_root(&v1_too)
            .unwrap_err()
            .to_string()
            .contains("needs a pure cgroup v2 host"));
    }

    #[test]
    fn the_host_view_is_every_hierarchy_at_its_root() {
        let roots = |mountinfo, cgroup| -> Vec<String> {
            hierarchies_at(mountinfo, cgroup, true, Path::new(""))
                .unwrap()
                .iter()
                .map(|h| {
                    assert_eq!(h.path, h.mountpoint);
                    h.path.display().to_string()
                })
                .collect()
        };
        assert_eq!(
            roots(HYBRID_MOUNTINFO, HYBRID_CGROUP),
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/pids",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
            ]
        );
        assert_eq!(
            roots(V2_MOUNTINFO, "0::/user.slice/x\n"),
            ["/sys/fs/cgroup"]
        );
    }

    #[test]
    fn default_path_is_relative_hull_id() {
        for path in [None, Some("")] {
            let cg = resolve(HYBRID_MOUNTINFO, HYBRID_CGROUP, path).unwrap();
            assert_eq!(
                cg.hierarchies()[1].path,
                Path::new("/sys/fs/cgroup/memory/process_api/abc/hull/c1")
            );
            assert_eq!(
                cg.hierarchies()[4].path,
                Path::new("/sys/fs/cgroup/unified/user.slice/user-0.slice/hull/c1")
            );
        }
    }

    #[test]
    fn pure_v2() {
        let nested = "0::/user.slice/user-1000.slice/session-3.scope\n";
        let cg = resolve(V2_MOUNTINFO, nested, None).unwrap();
        assert!(cg.is_unified());
        assert_eq!(
            table(&cg),
            vec![row(
                "/sys/fs/cgroup",
                "",
                true,
                "/sys/fs/cgroup/user.slice/user-1000.slice/hull/c1"
            )]
        );
        let at_root = resolve(V2_MOUNTINFO, "0::/\n", Some("a/b")).unwrap();
        assert_eq!(
            at_root.hierarchies()[0].path,
            Path::new("/sys/fs/cgroup/a/b")
        );
        let absolute = resolve(V2_MOUNTINFO, nested, Some("/a/b")).unwrap();
        assert_eq!(
            absolute.hierarchies()[0].path,
            Path::new("/sys/fs/cgroup/a/b")
        );
    }

    #[test]
    fn pure_v1_names_hierarchies_by_their_proc_cgroup_controllers() {
        let cg = resolve(V1_MOUNTINFO, V1_CGROUP, None).unwrap();
        assert!(!cg.is_unified());
        assert_eq!(
            table(&cg),
            vec![
                row(
                    "/sys/fs/cgroup/cpu,cpuacct",
                    "cpu,cpuacct",
                    false,
                    "/sys/fs/cgroup/cpu,cpuacct/system.slice/x.service/hull/c1"
                ),
                row(
                    "/sys/fs/cgroup/cpuset",
                    "cpuset",
                    false,
                    "/sys/fs/cgroup/cpuset/hull/c1"
                ),
                row(
                    "/sys/fs/cgroup/devices",
                    "devices",
                    false,
                    "/sys/fs/cgroup/devices/docker/abc/hull/c1"
                ),
            ]
        );
    }

    #[test]
    fn own_cgroup_is_taken_relative_to_the_mount_root() {
        let mountinfo = "\
40 31 0:33 /docker/abc /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
41 31 0:38 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let cg = resolve(
            mountinfo,
            "4:devices:/docker/abc/sub\n0::/docker/abc/sub\n",
            None,
        )
        .unwrap();
        assert_eq!(
            cg.hierarchies()[0].path,
            Path::new("/sys/fs/cgroup/devices/sub/hull/c1")
        );
        assert_eq!(
            cg.hierarchies()[1].path,
            Path::new("/sys/fs/cgroup/unified/hull/c1")
        );
        let bind_of_other_subtree =
            format!("39 31 0:33 /other /run/devices rw - cgroup cgroup rw,devices\n{mountinfo}");
        let cg = resolve(&bind_of_other_subtree, "4:devices:/docker/abc\n", None).unwrap();
        assert_eq!(
            cg.hierarchies()[0].path,
            Path::new("/sys/fs/cgroup/devices/hull/c1")
        );
        let err = resolve(mountinfo, "4:devices:/elsewhere\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "own cgroup /elsewhere is outside the root /docker/abc of the cgroup mount at /sys/fs/cgroup/devices"
        );
    }

    #[test]
    fn a_write_of_a_file_the_kernel_lacks_is_skipped_only_when_optional() {
        let dir = tempfile::tempdir().unwrap();
        let there = dir.path().join("hugetlb.2MB.max");
        fs::write(&there, "").unwrap();
        let missing = dir.path().join("hugetlb.2MB.rsvd.max");
        execute(vec![
            (there.clone(), Write::new("", "hugetlb.2MB.max", 7)),
            (
                missing.clone(),
                Write::new("", "hugetlb.2MB.rsvd.max", 7).if_present(),
            ),
        ])
        .unwrap();
        assert_eq!(fs::read_to_string(&there).unwrap(), "7");
        let err = execute(vec![(missing, Write::new("", "hugetlb.2MB.rsvd.max", 7))]).unwrap_err();
        assert_eq!(errno_of(&err), Some(Errno::ENOENT));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let mountinfo = "41 31 0:38 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw\n";
        let cg = resolve(mountinfo, "0::/\n", Some("/x")).unwrap();
        assert_eq!(
            cg.hierarchies()[0].path,
            Path::new("/sys/fs/cgroup/my dir/x")
        );
    }

    #[test]
    fn dot_dot_inside_the_path_is_cleaned() {
        let cg = resolve(V2_MOUNTINFO, "0::/\n", Some("a/../b")).unwrap();
        assert_eq!(cg.hierarchies()[0].path, Path::new("/sys/fs/cgroup/b"));
        let cg = resolve(V2_MOUNTINFO, "0::/\n", Some("/a/b/../../c")).unwrap();
        assert_eq!(cg.hierarchies()[0].path, Path::new("/sys/fs/cgroup/c"));
    }

    #[test]
    fn escaping_or_empty_paths_are_refused() {
        for path in ["..", "../x", "/../x", "a/../../x", "/a/../.."] {
            let err = resolve(V2_MOUNTINFO, "0::/\n", Some(path)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("linux.cgroupsPath {path:?} escapes its cgroup root with \"..\""),
            );
        }
        for path in ["/", ".", "a/.."] {
            let err = resolve(V2_MOUNTINFO, "0::/\n", Some(path)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("linux.cgroupsPath {path:?} names the cgroup it starts from, not a cgroup of its own"),
            );
        }
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let err = resolve("22 1 0:21 / / rw - ext4 /dev/sda rw\n", "0::/\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no cgroup hierarchy of this process is mounted (see /proc/self/mountinfo)"
        );
        assert!(resolve("garbage\n", "0::/\n", None).is_err());
        assert!(resolve(V2_MOUNTINFO, "garbage\n", None).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let cg = resolve(HYBRID_MOUNTINFO, HYBRID_CGROUP, None).unwrap();
        let json = serde_json::to_string(&cg).unwrap();
        assert_eq!(serde_json::from_str::<Cgroup>(&json).unwrap(), cg);
    }

    /// Real-kernel tests: they need root and a mounted cgroup layout, and skip otherwise.
    mod kernel {
        use super::*;
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        use std::process::{Child, Command};

        /// A container cgroup under a per-test parent, cleaned up even when the test fails.
        struct Fixture {
            cg: Cgroup,
            child: Option<Child>,
        }

        impl Fixture {
            /// `absolute` picks "/<parent>/c" over "<parent>/c"; `None` when the test must skip.
            fn new(test: &str, absolute: bool) -> Option<Fixture> {
                if !nix::unistd::geteuid().is_root() {
                    println!("SKIP: {test}: needs root");
                    return None;
                }
                let parent = format!("hull-test-{}-{test}", std::process::id());
                let path = if absolute {
                    format!("/{parent}/c")
                } else {
                    format!("{parent}/c")
                };
                match Cgroup::resolve(Some(Path::new(&path)), test) {
                    Ok(cg) => Some(Fixture { cg, child: None }),
                    Err(err) => {
                        println!("SKIP: {test}: no cgroup layout: {err:#}");
                        None
                    }
                }
            }

            /// Starts `sleep 30` that enters `cg` by itself before its exec, as a container init does.
            fn spawn_sleep_in(&mut self, cg: &Cgroup) -> i32 {
                let mut entry = cg.entry().unwrap();
                entry.without_clone_into().unwrap();
                let mut command = Command::new("sleep");
                command.arg("30");
                // SAFETY: the closure only issues write(2) calls on fds it owns; no allocation on success.
                unsafe {
                    command.pre_exec(move || entry.enter().map_err(|_| io::Error::last_os_error()));
                }
                let child = command.spawn().unwrap();
                let pid = child.id() as i32;
                self.child = Some(child);
                pid
            }

            fn wait_child(&mut self) -> Option<i32> {
                let status = self.child.take().unwrap().wait().unwrap();
                status.signal()
            }

            /// The value of `file` in the container's cgroup of the hierarchy holding `controller`.
            fn read(&self, controller: &str, file: &str) -> String {
                let h = if self.cg.is_unified() {
                    &self.cg.hierarchies()[0]
                } else {
                    self.cg.v1_hierarchy(controller).unwrap()
                };
                let path = h.path.join(file);
                fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
                    .trim_end()
                    .to_owned()
            }
        }

        impl Drop for Fixture {
            fn drop(&mut self) {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                let _ = self.cg.destroy();
                for h in self.cg.hierarchies() {
                    if let Some(parent) = h.path.parent() {
                        let _ = fs::remove_dir(parent);
                    }
                }
            }
        }

        fn resources(json: &str) -> LinuxResources {
            serde_json::from_str(json).unwrap()
        }

        #[test]
        fn kernel_lifecycle() {
            let Some(mut fx) = Fixture::new("lifecycle", false) else {
                return;
            };
            fx.cg.create().unwrap();
            for h in fx.cg.hierarchies() {
                assert!(h.path.is_dir(), "{} missing", h.path.display());
            }
            let cg = fx.cg.clone();
            let pid = fx.spawn_sleep_in(&cg);
            for h in fx.cg.hierarchies() {
                let procs = fs::read_to_string(h.path.join("cgroup.procs")).unwrap();
                assert_eq!(procs, format!("{pid}\n"), "{}", h.path.display());
            }

            let r = resources(
                r#"{"memory":{"limit":104857600},"cpu":{"shares":512,"quota":20000,"period":50000},
                    "pids":{"limit":32},"devices":[{"allow":false,"access":"rwm"}]}"#,
            );
            fx.cg.apply(&r).unwrap();
            assert_eq!(fx.read("pids", "pids.max"), "32");
            if fx.cg.is_unified() {
                assert_eq!(fx.read("memory", "memory.max"), "104857600");
                assert_eq!(fx.read("cpu", "cpu.weight"), "59");
                assert_eq!(fx.read("cpu", "cpu.max"), "20000 50000");
            } else {
                assert_eq!(fx.read("memory", "memory.limit_in_bytes"), "104857600");
                assert_eq!(fx.read("cpu", "cpu.shares"), "512");
                assert_eq!(fx.read("cpu", "cpu.cfs_period_us"), "50000");
                assert_eq!(fx.read("cpu", "cpu.cfs_quota_us"), "20000");
                let expected: Vec<String> = v1_writes(&r, &Facts::default())
                    .unwrap()
                    .into_iter()
                    .filter(|w| w.file == "devices.allow")
                    .map(|w| w.value)
                    .collect();
                assert_eq!(fx.read("devices", "devices.list"), expected.join("\n"));
                let cpuset = fx.cg.v1_hierarchy("cpuset").unwrap();
                let root_cpus = fs::read_to_string(cpuset.mountpoint.join("cpuset.cpus")).unwrap();
                assert_eq!(fx.read("cpuset", "cpuset.cpus"), root_cpus.trim_end());
                let shares = fx.cg.v1_hierarchy("cpu").unwrap().path.join("cpu.shares");
                assert_eq!(
                    fx.cg
                        .apply(&resources(r#"{"cpu":{"shares":1}}"#))
                        .unwrap_err()
                        .to_string(),
                    format!(
                        "cpu.shares 1 is out of range: the minimum allowed is 2 ({})",
                        shares.display()
                    )
                );
            }

            let bad = resources(r#"{"cpu":{"period":1}}"#);
            let (file, value) = if fx.cg.is_unified() {
                ("cpu.max", "max 1")
            } else {
                ("cpu.cfs_period_us", "1")
            };
            let cpu_dir = match fx.cg.v1_hierarchy("cpu") {
                Some(h) => &h.path,
                None => &fx.cg.hierarchies()[0].path,
            };
            assert_eq!(
                format!("{:#}", fx.cg.apply(&bad).unwrap_err()),
                format!(
                    "write {value} to {}: Invalid argument (os error 22)",
                    cpu_dir.join(file).display()
                )
            );

            assert_eq!(fx.cg.pids().unwrap(), vec![pid]);
            assert!(!fx.cg.is_frozen().unwrap());
            fx.cg.set_frozen(true).unwrap();
            assert!(fx.cg.is_frozen().unwrap(), "frozen once set_frozen returns");
            fx.cg.set_frozen(false).unwrap();
            assert!(
                !fx.cg.is_frozen().unwrap(),
                "thawed once set_frozen returns"
            );

            fx.cg.signal_all(Signal::SIGKILL).unwrap();
            assert_eq!(fx.wait_child(), Some(libc::SIGKILL));
            assert_eq!(fx.cg.pids().unwrap(), Vec::<i32>::new());
            fx.cg.destroy().unwrap();
            for h in fx.cg.hierarchies() {
                assert!(!h.path.exists(), "{} still exists", h.path.display());
                assert!(
                    !h.path.parent().unwrap().exists(),
                    "the ancestor create made for {} is removed too",
                    h.path.display()
                );
            }
            fx.cg.destroy().unwrap();
            assert!(!fx.cg.is_frozen().unwrap());
            assert_eq!(fx.cg.pids().unwrap(), Vec::<i32>::new());
        }

        #[test]
        fn kernel_destroy_retries_busy_cgroup_then_names_it() {
            let Some(mut fx) = Fixture::new("busy", true) else {
                return;
            };
            fx.cg.create().unwrap();
            let mut sub = fx.cg.clone();
            for h in &mut sub.hierarchies {
                h.path.push("sub");
            }
            sub.create().unwrap();
            let pid = fx.spawn_sleep_in(&sub);
            assert_eq!(fx.cg.pids().unwrap(), vec![pid]);

            let start = Instant::now();
            let err = fx.cg.destroy().unwrap_err();
            assert!(
                start.elapsed() >= Duration::from_millis(900),
                "{:?}",
                start.elapsed()
            );
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "{:?}",
                start.elapsed()
            );
            assert_eq!(
                format!("{err:#}"),
                format!(
                    "remove cgroup {}: Device or resource busy (os error 16)",
                    fx.cg.hierarchies()[0].path.display()
                )
            );

            fx.cg.signal_all(Signal::SIGTERM).unwrap();
            assert_eq!(fx.wait_child(), Some(libc::SIGTERM));
            fx.cg.destroy().unwrap();
            for h in fx.cg.hierarchies() {
                assert!(!h.path.exists(), "{} still exists", h.path.display());
            }
        }

        #[test]
        fn kernel_refuses_bad_resources_before_writing() {
            let Some(mut fx) = Fixture::new("badvalue", false) else {
                return;
            };
            fx.cg.create().unwrap();
            let r =
                resources(r#"{"pids":{"limit":5},"hugepageLimits":[{"pageSize":"2M","limit":1}]}"#);
            assert_eq!(
                fx.cg.apply(&r).unwrap_err().to_string(),
                "linux.resources.hugepageLimits: page size \"2M\" is invalid: use a number with KB, MB or GB (\"2MB\")"
            );
            assert_eq!(fx.read("pids", "pids.max"), "max");
        }
    }
}
