//! `linux.intelRdt`: Intel RDT through the resctrl filesystem, as runc 1.5.1 does it (`libcontainer/intelrdt`).
//!
//! A container is placed in a resctrl control group ("CLOS"): `<root>/<closID>` when the config names one (shared
//! with whoever else uses it), else `<root>/<container id>`. The group's `schemata` file gets the configured
//! `l3CacheSchema`, `memBwSchema` and `schemata` lines, its `tasks` file gets the init's pid and every exec'd
//! process's pid, and with `enableMonitoring` the init also joins a monitoring group `mon_groups/<container id>`
//! inside it. The deprecated `enableCMT`/`enableMBM` flags are ignored, as runc ignores them.
//!
//! [`host::Host`] finds the mounted resctrl and its features; [`plan`] decides (the checks `plan::validate` and
//! `plan::update`, the paths, the `schemata` text) without touching the filesystem; [`group::Group`] performs those
//! decisions on the host's resctrl root and is kept in the container's state; [`stats::Stats`] is what it reads back
//! for `events --stats`.
//!
//! The lifecycle, with runc's call sites: `validate` when the container is created (`validate.intelrdtCheck`);
//! `Group::new` + `Group::apply` right after the init joins its cgroup (`initProcess.start`); `Group::set` when the
//! init reports its hooks stage (`procHooks`) and on every `update`; `Group::add` for each exec'd process
//! (`setnsProcess.start`); `Group::stats` for `events`; `Group::destroy` at delete, and after a failed start.

use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

pub mod group;
pub mod host;
pub mod plan;
pub mod stats;

#[cfg(test)]
mod fake;

/// What a container's state keeps of its `linux.intelRdt`: the config as it is now (`update` changes its schemas)
/// and its groups.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Assignment {
    pub config: LinuxIntelRdt,
    pub group: group::Group,
}
