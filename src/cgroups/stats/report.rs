//! The counters in the shape `runc events --stats` prints them (runc `types/events.go`), field for field.

use std::collections::BTreeMap;

use serde::Serialize;

/// `data` of a `stats` event. Field order and names are runc's; Go's `omitempty` and `omitzero` are mirrored by
/// `skip_serializing_if`: maps and slices are left out when empty, and (runc 1.4+, `omitzero`) the nested usage,
/// throttling and memory entries when all their fields are zero; the top-level groups always appear.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Filled by `events` for a container with `linux.intelRdt`; `{}` otherwise, as runc prints it.
    pub intel_rdt: crate::resctrl::stats::Stats,
    /// runc lists the host ends of `veth` interfaces it created; hull creates none, so this is always `null`.
    pub network_interfaces: (),
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Cpu {
    #[serde(skip_serializing_if = "is_default")]
    pub usage: CpuUsage,
    #[serde(skip_serializing_if = "is_default")]
    pub throttling: Throttling,
    /// cgroup v2 `cpu.pressure` (runc 1.2+), absent where the kernel has no PSI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// Pressure stall information of one resource (`<resource>.pressure`): the `some` and `full` lines.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Psi {
    #[serde(skip_serializing_if = "is_default")]
    pub some: PsiData,
    #[serde(skip_serializing_if = "is_default")]
    pub full: PsiData,
}

/// One PSI line: the share of time stalled over 10, 60 and 300 s (percent), and the total stall time (µs).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct PsiData {
    #[serde(serialize_with = "go_float")]
    pub avg10: f64,
    #[serde(serialize_with = "go_float")]
    pub avg60: f64,
    #[serde(serialize_with = "go_float")]
    pub avg300: f64,
    pub total: u64,
}

/// A float as Go's encoding/json writes it: a whole number without a fraction (`0`, not `0.0`).
fn go_float<S: serde::Serializer>(
    value: &f64,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// CPU time in nanoseconds.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// cgroup v1 cpuset state (runc reads none on cgroup v2).
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// Bytes; `max` is the peak usage (v1 only).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    #[serde(skip_serializing_if = "is_default")]
    pub usage: MemoryEntry,
    /// Memory plus swap, as cgroup v1's `memsw` (v2's separate swap counters are added to memory's).
    #[serde(skip_serializing_if = "is_default")]
    pub swap: MemoryEntry,
    #[serde(skip_serializing_if = "is_default")]
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP", skip_serializing_if = "is_default")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat` as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    /// cgroup v2 `memory.pressure` (runc 1.2+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
    /// cgroup v2 `io.pressure` (runc 1.2+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

/// One huge page size; `max` is the peak usage (v1 only).
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Go's `omitzero` for a struct: every field zero.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One of [`Blkio`]'s tables.
#[derive(Clone, Copy)]
pub(super) enum BlkioTable {
    ServiceBytes,
    Serviced,
    Queued,
    ServiceTime,
    WaitTime,
    Merged,
    Time,
    Sectors,
}

impl BlkioTable {
    pub(super) fn of(self, blkio: &mut Blkio) -> &mut Vec<BlkioEntry> {
        match self {
            BlkioTable::ServiceBytes => &mut blkio.io_service_bytes_recursive,
            BlkioTable::Serviced => &mut blkio.io_serviced_recursive,
            BlkioTable::Queued => &mut blkio.io_queued_recursive,
            BlkioTable::ServiceTime => &mut blkio.io_service_time_recursive,
            BlkioTable::WaitTime => &mut blkio.io_wait_time_recursive,
            BlkioTable::Merged => &mut blkio.io_merged_recursive,
            BlkioTable::Time => &mut blkio.io_time_recursive,
            BlkioTable::Sectors => &mut blkio.sectors_recursive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_in_runc_field_order() {
        let text = serde_json::to_string(&Stats::default()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"cpu":{},"#,
                r#""cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"#,
                r#""memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"#,
                r#""sched_relax_domain_level":0},"#,
                r#""memory":{},"#,
                r#""pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}"#
            ),
            "runc 1.4+ leaves out nested groups that are all zero (Go's omitzero)"
        );
        let throttling = Throttling {
            periods: 1,
            throttled_periods: 2,
            throttled_time: 3,
        };
        assert_eq!(
            serde_json::to_string(&throttling).unwrap(),
            r#"{"periods":1,"throttledPeriods":2,"throttledTime":3}"#
        );
        let mut blkio = Blkio::default();
        for table in [
            BlkioTable::ServiceBytes,
            BlkioTable::Serviced,
            BlkioTable::Queued,
            BlkioTable::ServiceTime,
            BlkioTable::WaitTime,
            BlkioTable::Merged,
            BlkioTable::Time,
            BlkioTable::Sectors,
        ] {
            table.of(&mut blkio).push(BlkioEntry::default());
        }
        assert_eq!(
            serde_json::to_string(&blkio).unwrap(),
            concat!(
                r#"{"ioServiceBytesRecursive":[{}],"ioServicedRecursive":[{}],"ioQueueRecursive":[{}],"#,
                r#""ioServiceTimeRecursive":[{}],"ioWaitTimeRecursive":[{}],"ioMergedRecursive":[{}],"#,
                r#""ioTimeRecursive":[{}],"sectorsRecursive":[{}]}"#
            )
        );
        let hugetlb = Hugetlb {
            usage: 0,
            max: 0,
            failcnt: 0,
        };
        assert_eq!(serde_json::to_string(&hugetlb).unwrap(), r#"{"failcnt":0}"#);
    }
}
