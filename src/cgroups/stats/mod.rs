//! Resource usage counters of a container's cgroup, in the shape `runc events` prints (runc `types/events.go`, as
//! converted by `convertLibcontainerStats`), read the way runc 1.1's cgroupfs managers read them: on cgroup v1 and
//! hybrid hosts from the v1 controllers (cpuset, memory, cpu, cpuacct, pids, blkio, hugetlb), on pure cgroup v2
//! hosts from the container's unified directory. A controller or file that is missing leaves its fields zero; a
//! file that is present but malformed is an error naming it. Parsing is done by pure functions of a file's text.

mod parse;
mod report;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};

use super::Cgroup;
pub(super) use parse::value_by_key;
use parse::{
    cpu_v2, parse_blkio_v1, parse_cpu_list, parse_cpuacct_stat, parse_io_stat, parse_key_values,
    parse_param, parse_param_int, parse_percpu, parse_psi, parse_usage_all, throttling_v1,
};
pub use report::Stats;
use report::{
    Blkio, BlkioEntry, BlkioTable, CpuSet, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Psi,
};

/// Where the kernel lists the huge page sizes (`hugepages-2048kB`, ...).
const HUGEPAGES_DIR: &str = "/sys/kernel/mm/hugepages";

impl Cgroup {
    /// The container's resource usage, as `runc events` reports it.
    pub fn stats(&self) -> Result<Stats> {
        if self.is_unified() {
            return v2_stats(&Dir(&self.hierarchies[0].path));
        }
        let dir = |controller| self.v1_hierarchy(controller).map(|h| Dir(&h.path));
        let mut stats = Stats::default();
        if let Some(d) = dir("cpuset") {
            stats.cpuset = cpuset_v1(&d)?;
        }
        if let Some(d) = dir("memory") {
            stats.memory = memory_v1(&d)?;
        }
        if let Some(d) = dir("cpu") {
            stats.cpu.throttling = d.parse("cpu.stat", throttling_v1)?.unwrap_or_default();
        }
        if let Some(d) = dir("cpuacct") {
            stats.cpu.usage = cpuacct_v1(&d)?;
        }
        if let Some(d) = dir("pids") {
            stats.pids = pids(&d)?;
        }
        if let Some(d) = dir("blkio") {
            stats.blkio = blkio_v1(|file| d.parse(file, parse_blkio_v1))?;
        }
        if let Some(d) = dir("hugetlb") {
            stats.hugetlb = hugetlb(&d, HugetlbFiles::V1)?;
        }
        Ok(stats)
    }
}

/// A cgroup directory whose missing files read as `None`.
struct Dir<'a>(&'a Path);

impl Dir<'_> {
    fn read(&self, file: &str) -> Result<Option<String>> {
        let path = self.0.join(file);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
        }
    }

    fn parse<T>(&self, file: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<Option<T>> {
        let Some(text) = self.read(file)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .with_context(|| format!("parse {}", self.0.join(file).display()))
    }

    /// A single-number file; "max" is `u64::MAX`.
    fn param(&self, file: &str) -> Result<Option<u64>> {
        self.parse(file, parse_param)
    }
}

fn v2_stats(d: &Dir) -> Result<Stats> {
    let mut stats = Stats {
        pids: pids(d)?,
        memory: memory_v2(d)?,
        blkio: d.parse("io.stat", parse_io_stat)?.unwrap_or_default(),
        hugetlb: hugetlb(d, HugetlbFiles::V2)?,
        ..Stats::default()
    };
    if let Some(cpu) = d.parse("cpu.stat", cpu_v2)? {
        stats.cpu = cpu;
    }
    stats.cpu.psi = psi(d, "cpu.pressure")?;
    stats.memory.psi = psi(d, "memory.pressure")?;
    stats.blkio.psi = psi(d, "io.pressure")?;
    Ok(stats)
}

/// A `<resource>.pressure` file, as runc's `statPSI` reads it: absent (no PSI in the kernel, or turned off for the
/// cgroup) or unreadable with ENOTSUP (a kernel wanting `psi=1`) is `None`.
fn psi(d: &Dir, file: &str) -> Result<Option<Psi>> {
    let text = match d.read(file) {
        Err(err)
            if err
                .downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error)
                == Some(libc::EOPNOTSUPP) =>
        {
            return Ok(None)
        }
        result => result?,
    };
    let Some(text) = text else {
        return Ok(None);
    };
    parse_psi(&text)
        .map(Some)
        .with_context(|| format!("parse {}", d.0.join(file).display()))
}

fn cpuset_v1(d: &Dir) -> Result<CpuSet> {
    let flag = |file: &str| d.param(file).map(Option::unwrap_or_default);
    Ok(CpuSet {
        cpus: d.parse("cpuset.cpus", parse_cpu_list)?.unwrap_or_default(),
        cpu_exclusive: flag("cpuset.cpu_exclusive")?,
        mems: d.parse("cpuset.mems", parse_cpu_list)?.unwrap_or_default(),
        mem_hardwall: flag("cpuset.mem_hardwall")?,
        mem_exclusive: flag("cpuset.mem_exclusive")?,
        memory_migrate: flag("cpuset.memory_migrate")?,
        memory_spread_page: flag("cpuset.memory_spread_page")?,
        memory_spread_slab: flag("cpuset.memory_spread_slab")?,
        memory_pressure: flag("cpuset.memory_pressure")?,
        sched_load_balance: flag("cpuset.sched_load_balance")?,
        sched_relax_domain_level: d
            .parse("cpuset.sched_relax_domain_level", parse_param_int)?
            .unwrap_or_default(),
    })
}

/// v1 memory: nothing without `memory.stat`, as runc. Swap (`memsw`) and kernel (`kmem`) accounting are optional.
fn memory_v1(d: &Dir) -> Result<Memory> {
    let Some(raw) = d.parse("memory.stat", parse_key_values)? else {
        return Ok(Memory::default());
    };
    let entry = |prefix: &str| -> Result<MemoryEntry> {
        let value = |name: &str| {
            d.param(&format!("{prefix}.{name}"))
                .map(Option::unwrap_or_default)
        };
        let Some(usage) = d.param(&format!("{prefix}.usage_in_bytes"))? else {
            return Ok(MemoryEntry::default());
        };
        Ok(MemoryEntry {
            limit: value("limit_in_bytes")?,
            usage,
            max: value("max_usage_in_bytes")?,
            failcnt: value("failcnt")?,
        })
    };
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or_default(),
        usage: entry("memory")?,
        swap: entry("memory.memsw")?,
        kernel: entry("memory.kmem")?,
        kernel_tcp: entry("memory.kmem.tcp")?,
        raw,
        psi: None,
    })
}

/// v2 memory: `memory.stat` as raw (its `file` is the cache), `memory.current`/`max`, swap added to memory.
fn memory_v2(d: &Dir) -> Result<Memory> {
    let Some(raw) = d.parse("memory.stat", parse_key_values)? else {
        return Ok(Memory::default());
    };
    let entry = |prefix: &str| -> Result<Option<MemoryEntry>> {
        let Some(usage) = d.param(&format!("{prefix}.current"))? else {
            return Ok(None);
        };
        let limit = d.param(&format!("{prefix}.max"))?.unwrap_or_default();
        Ok(Some(MemoryEntry {
            limit,
            usage,
            ..MemoryEntry::default()
        }))
    };
    let mut memory = Memory {
        cache: raw.get("file").copied().unwrap_or_default(),
        raw,
        ..Memory::default()
    };
    if let Some(usage) = entry("memory")? {
        memory.swap = swap_v2(&usage, entry("memory.swap")?.unwrap_or_default());
        memory.usage = usage;
    }
    Ok(memory)
}

/// cgroup v1 reports swap as memory plus swap; runc adds v2's memory counters to its swap ones to match
/// (an unlimited swap stays unlimited; Go's unsigned arithmetic wraps).
fn swap_v2(memory: &MemoryEntry, swap: MemoryEntry) -> MemoryEntry {
    MemoryEntry {
        usage: swap.usage.wrapping_add(memory.usage),
        limit: if swap.limit == u64::MAX {
            swap.limit
        } else {
            swap.limit.wrapping_add(memory.limit)
        },
        ..swap
    }
}

fn cpuacct_v1(d: &Dir) -> Result<CpuUsage> {
    let (user, kernel) = d
        .parse("cpuacct.stat", parse_cpuacct_stat)?
        .unwrap_or_default();
    let (percpu_kernel, percpu_user) = d
        .parse("cpuacct.usage_all", parse_usage_all)?
        .unwrap_or_default();
    Ok(CpuUsage {
        total: d.param("cpuacct.usage")?.unwrap_or_default(),
        percpu: d
            .parse("cpuacct.usage_percpu", parse_percpu)?
            .unwrap_or_default(),
        percpu_kernel,
        percpu_user,
        kernel,
        user,
    })
}

/// `pids.current` and `pids.max` ("max" is 0); without them (a cgroup v2 directory without the pids controller),
/// the processes in `cgroup.procs` are counted, with no limit.
fn pids(d: &Dir) -> Result<Pids> {
    match d.param("pids.current")? {
        Some(current) => Ok(Pids {
            current,
            limit: match d.param("pids.max")? {
                Some(u64::MAX) | None => 0,
                Some(limit) => limit,
            },
        }),
        None => Ok(Pids {
            current: d
                .read("cgroup.procs")?
                .map_or(0, |text| text.matches('\n').count() as u64),
            limit: 0,
        }),
    }
}

/// Which files hold a huge page size's counters, on each cgroup version.
#[derive(Clone, Copy)]
enum HugetlbFiles {
    /// `hugetlb.<size>.usage_in_bytes`, `.max_usage_in_bytes` and `.failcnt`.
    V1,
    /// `hugetlb.<size>.current` and the `max` key of `.events`.
    V2,
}

fn hugetlb(d: &Dir, files: HugetlbFiles) -> Result<BTreeMap<String, Hugetlb>> {
    let mut stats = BTreeMap::new();
    for size in hugepage_sizes()? {
        let file = |name: &str| format!("hugetlb.{size}.{name}");
        let entry = match files {
            HugetlbFiles::V1 => d.param(&file("usage_in_bytes"))?.map(|usage| -> Result<_> {
                Ok(Hugetlb {
                    usage,
                    max: d.param(&file("max_usage_in_bytes"))?.unwrap_or_default(),
                    failcnt: d.param(&file("failcnt"))?.unwrap_or_default(),
                })
            }),
            HugetlbFiles::V2 => d.param(&file("current"))?.map(|usage| -> Result<_> {
                Ok(Hugetlb {
                    usage,
                    max: 0,
                    failcnt: d
                        .parse(&file("events"), |text| value_by_key(text, "max"))?
                        .unwrap_or_default(),
                })
            }),
        };
        if let Some(entry) = entry {
            stats.insert(size, entry?);
        }
    }
    Ok(stats)
}

/// The host's huge page sizes in the kernel's hugetlb file naming ("2MB", "1GB"); none without hugetlbfs support.
fn hugepage_sizes() -> Result<Vec<String>> {
    let entries = match fs::read_dir(HUGEPAGES_DIR) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("list {HUGEPAGES_DIR}")),
    };
    let mut sizes = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("list {HUGEPAGES_DIR}"))?;
        if let Some(size) = entry.file_name().to_str().and_then(hugepage_size_name) {
            sizes.push(size);
        }
    }
    Ok(sizes)
}

/// "hugepages-2048kB" → "2MB": the size in the largest binary unit (KB, MB, GB, ...) it reaches, as runc names
/// them (go-units `CustomSize("%g%s", bytes, 1024, ...)`). Other names are not page sizes.
fn hugepage_size_name(dir_name: &str) -> Option<String> {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let kib: u64 = dir_name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    let mut size = kib as f64 * 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    Some(format!("{size}{}", UNITS[unit]))
}

/// The v1 blkio counters, found as runc does: the first group of files (BFQ with debug statistics, BFQ, CFQ,
/// recursive throttling, plain throttling) whose first file has entries is used, and the walk stops at the end of
/// that group, or early at a later file of it that is missing, empty or unreadable (only the latter is an error).
fn blkio_v1(read: impl Fn(&str) -> Result<Option<Vec<BlkioEntry>>>) -> Result<Blkio> {
    use BlkioTable::*;
    const GROUPS: [&[(&str, BlkioTable)]; 5] = [
        &[
            ("blkio.bfq.sectors_recursive", Sectors),
            ("blkio.bfq.io_service_time_recursive", ServiceTime),
            ("blkio.bfq.io_wait_time_recursive", WaitTime),
            ("blkio.bfq.io_merged_recursive", Merged),
            ("blkio.bfq.io_queued_recursive", Queued),
            ("blkio.bfq.time_recursive", Time),
            ("blkio.bfq.io_serviced_recursive", Serviced),
            ("blkio.bfq.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.bfq.io_serviced_recursive", Serviced),
            ("blkio.bfq.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.sectors_recursive", Sectors),
            ("blkio.io_service_time_recursive", ServiceTime),
            ("blkio.io_wait_time_recursive", WaitTime),
            ("blkio.io_merged_recursive", Merged),
            ("blkio.io_queued_recursive", Queued),
            ("blkio.time_recursive", Time),
            ("blkio.io_serviced_recursive", Serviced),
            ("blkio.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.throttle.io_serviced_recursive", Serviced),
            ("blkio.throttle.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.throttle.io_serviced", Serviced),
            ("blkio.throttle.io_service_bytes", ServiceBytes),
        ],
    ];
    let mut blkio = Blkio::default();
    for group in GROUPS {
        for (i, (file, table)) in group.iter().enumerate() {
            match read(file) {
                Ok(Some(entries)) if !entries.is_empty() => *table.of(&mut blkio) = entries,
                _ if i == 0 => break,
                Err(err) => return Err(err),
                Ok(_) => return Ok(blkio),
            }
            if i == group.len() - 1 {
                return Ok(blkio);
            }
        }
    }
    Ok(blkio)
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{json, Value};

    use super::report::Cpu;

    use crate::cgroups::Hierarchy;

    /// Files of a runc 1.1.5 container's cgroup on this project's hybrid test host (kernel 6.18), and what
    /// `runc events --stats` printed for them, less the all-zero nested groups runc 1.4+ leaves out (`omitzero`).
    const V1_MEMORY_STAT: &str =
        "cache 184320\nrss 53248\nrss_huge 0\nshmem 0\nmapped_file 86016\n\
        dirty 0\nwriteback 0\nswap 0\npgpgin 477\npgpgout 419\npgfault 729\npgmajfault 1\n\
        hierarchical_memory_limit 104857600\nhierarchical_memsw_limit 9223372036854771712\n\
        total_cache 184320\ntotal_rss 53248\n";

    fn v1_files() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![
            ("cpuset", "cpuset.cpus", "0-1\n"),
            ("cpuset", "cpuset.mems", "0\n"),
            ("cpuset", "cpuset.cpu_exclusive", "0\n"),
            ("cpuset", "cpuset.mem_hardwall", "0\n"),
            ("cpuset", "cpuset.mem_exclusive", "0\n"),
            ("cpuset", "cpuset.memory_migrate", "0\n"),
            ("cpuset", "cpuset.memory_spread_page", "0\n"),
            ("cpuset", "cpuset.memory_spread_slab", "0\n"),
            ("cpuset", "cpuset.memory_pressure", "0\n"),
            ("cpuset", "cpuset.sched_load_balance", "1\n"),
            ("cpuset", "cpuset.sched_relax_domain_level", "-1\n"),
            ("memory", "memory.stat", V1_MEMORY_STAT),
            ("memory", "memory.usage_in_bytes", "897024\n"),
            ("memory", "memory.max_usage_in_bytes", "2510848\n"),
            ("memory", "memory.failcnt", "0\n"),
            ("memory", "memory.limit_in_bytes", "104857600\n"),
            ("memory", "memory.memsw.usage_in_bytes", "897024\n"),
            ("memory", "memory.memsw.max_usage_in_bytes", "2510848\n"),
            ("memory", "memory.memsw.failcnt", "0\n"),
            (
                "memory",
                "memory.memsw.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("memory", "memory.kmem.usage_in_bytes", "425984\n"),
            ("memory", "memory.kmem.max_usage_in_bytes", "557056\n"),
            ("memory", "memory.kmem.failcnt", "0\n"),
            (
                "memory",
                "memory.kmem.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("memory", "memory.kmem.tcp.usage_in_bytes", "0\n"),
            ("memory", "memory.kmem.tcp.max_usage_in_bytes", "0\n"),
            ("memory", "memory.kmem.tcp.failcnt", "0\n"),
            (
                "memory",
                "memory.kmem.tcp.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "cpu",
                "cpu.stat",
                "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n",
            ),
            ("cpuacct", "cpuacct.stat", "user 0\nsystem 1\n"),
            ("cpuacct", "cpuacct.usage", "12966934\n"),
            ("cpuacct", "cpuacct.usage_percpu", "9263848 3703086 \n"),
            (
                "cpuacct",
                "cpuacct.usage_all",
                "cpu user system\n0 0 12000000\n1 0 0\n",
            ),
            ("pids", "pids.current", "1\n"),
            ("pids", "pids.max", "42\n"),
            ("blkio", "blkio.bfq.io_serviced_recursive", "Total 0\n"),
            ("blkio", "blkio.bfq.io_service_bytes_recursive", "Total 0\n"),
            ("blkio", "blkio.throttle.io_serviced_recursive", "Total 0\n"),
            ("blkio", "blkio.throttle.io_serviced", "Total 0\n"),
        ]
    }

    /// A fake hierarchy per controller (or one shared by `cpu,cpuacct`), holding `files`.
    fn fake_v1(root: &Path, files: &[(&str, &str, &str)], combined_cpu: bool) -> Cgroup {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for (controller, file, text) in files {
            let mount = if combined_cpu && controller.starts_with("cpu") && *controller != "cpuset"
            {
                "cpu,cpuacct"
            } else {
                controller
            };
            let path = root.join(mount).join("c1");
            fs::create_dir_all(&path).unwrap();
            fs::write(path.join(file), text).unwrap();
            if !hierarchies.iter().any(|h| h.path == path) {
                hierarchies.push(Hierarchy {
                    mountpoint: root.join(mount),
                    controllers: mount.split(',').map(str::to_owned).collect(),
                    v2: false,
                    path,
                });
            }
        }
        Cgroup {
            hierarchies,
            created: Vec::new(),
            systemd: None,
        }
    }

    fn fake_v2(root: &Path, files: &[(&str, &str)]) -> Cgroup {
        let path = root.join("c1");
        fs::create_dir_all(&path).unwrap();
        for (file, text) in files {
            fs::write(path.join(file), text).unwrap();
        }
        Cgroup {
            hierarchies: vec![Hierarchy {
                mountpoint: root.to_path_buf(),
                controllers: Vec::new(),
                v2: true,
                path,
            }],
            created: Vec::new(),
            systemd: None,
        }
    }

    fn json_of(stats: &Stats) -> Value {
        serde_json::to_value(stats).unwrap()
    }

    #[test]
    fn v1_reads_as_runc_prints() {
        let tmp = tempfile::tempdir().unwrap();
        for combined in [false, true] {
            let root = tmp.path().join(combined.to_string());
            let cg = fake_v1(&root, &v1_files(), combined);
            let stats = cg.stats().unwrap();
            assert_eq!(
                json_of(&stats),
                json!({
                    "cpu": {
                        "usage": {"total": 12966934u64, "percpu": [9263848u64, 3703086u64],
                                  "percpu_kernel": [12000000u64, 0], "percpu_user": [0, 0],
                                  "kernel": 10000000u64, "user": 0}
                    },
                    "cpuset": {"cpus": [0, 1], "cpu_exclusive": 0, "mems": [0], "mem_hardwall": 0,
                               "mem_exclusive": 0, "memory_migrate": 0, "memory_spread_page": 0,
                               "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 1,
                               "sched_relax_domain_level": -1},
                    "memory": {
                        "cache": 184320,
                        "usage": {"limit": 104857600u64, "usage": 897024, "max": 2510848, "failcnt": 0},
                        "swap": {"limit": 9223372036854771712u64, "usage": 897024, "max": 2510848,
                                 "failcnt": 0},
                        "kernel": {"limit": 9223372036854771712u64, "usage": 425984, "max": 557056,
                                   "failcnt": 0},
                        "kernelTCP": {"limit": 9223372036854771712u64, "failcnt": 0},
                        "raw": {"cache": 184320, "rss": 53248, "rss_huge": 0, "shmem": 0,
                                "mapped_file": 86016, "dirty": 0, "writeback": 0, "swap": 0,
                                "pgpgin": 477, "pgpgout": 419, "pgfault": 729, "pgmajfault": 1,
                                "hierarchical_memory_limit": 104857600u64,
                                "hierarchical_memsw_limit": 9223372036854771712u64,
                                "total_cache": 184320, "total_rss": 53248}
                    },
                    "pids": {"current": 1, "limit": 42},
                    "blkio": {},
                    "hugetlb": {},
                    "intel_rdt": {},
                    "network_interfaces": null
                }),
                "combined cpu,cpuacct: {combined}"
            );
        }
    }

    /// runc 1.2+ reports pressure stall information on cgroup v2 (`cgroups/fs2/psi.go`); Go writes whole floats
    /// without a fraction, and an all-zero line is left out.
    #[test]
    fn pressure_stall_information_as_runc_reports_it() {
        let parsed = parse_psi(
            "some avg10=1.50 avg60=0.00 avg300=12.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"{"some":{"avg10":1.5,"avg60":0,"avg300":12,"total":12345}}"#
        );
        assert!(parse_psi("some avg10\n").is_err());
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("cpu.pressure"),
            "some avg10=0.10 avg60=0.20 avg300=0.30 total=7\n",
        )
        .unwrap();
        let d = Dir(tmp.path());
        assert_eq!(psi(&d, "io.pressure").unwrap(), None, "no file, no psi");
        let cpu = psi(&d, "cpu.pressure").unwrap().unwrap();
        assert_eq!((cpu.some.avg60, cpu.some.total), (0.2, 7));
    }

    #[test]
    fn v1_without_swap_kmem_or_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<_> = v1_files()
            .into_iter()
            .filter(|(c, f, _)| {
                !f.contains("memsw") && !f.contains("kmem") && *c != "cpuset" && *c != "blkio"
            })
            .collect();
        let stats = fake_v1(tmp.path(), &files, false).stats().unwrap();
        assert_eq!(stats.memory.swap, MemoryEntry::default());
        assert_eq!(stats.memory.kernel, MemoryEntry::default());
        assert_eq!(stats.memory.usage.limit, 104857600);
        assert_eq!(stats.cpuset, CpuSet::default());
        assert_eq!(stats.pids.limit, 42);

        let no_memory_stat: Vec<_> = v1_files()
            .into_iter()
            .filter(|(_, f, _)| *f != "memory.stat")
            .collect();
        let stats = fake_v1(&tmp.path().join("b"), &no_memory_stat, false)
            .stats()
            .unwrap();
        assert_eq!(stats.memory, Memory::default());

        let cg = Cgroup {
            hierarchies: vec![Hierarchy {
                mountpoint: tmp.path().join("gone"),
                controllers: vec!["memory".into()],
                v2: false,
                path: tmp.path().join("gone/c1"),
            }],
            created: Vec::new(),
            systemd: None,
        };
        assert_eq!(cg.stats().unwrap(), Stats::default());
    }

    #[test]
    fn v1_unlimited_pids_and_malformed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = v1_files();
        files.retain(|(_, f, _)| *f != "pids.max");
        files.push(("pids", "pids.max", "max\n"));
        let cg = fake_v1(tmp.path(), &files, false);
        assert_eq!(
            cg.stats().unwrap().pids,
            Pids {
                current: 1,
                limit: 0
            }
        );

        let stat = cg
            .v1_hierarchy("cpuacct")
            .unwrap()
            .path
            .join("cpuacct.stat");
        fs::write(&stat, "system 1\nuser 0\n").unwrap();
        assert_eq!(
            format!("{:#}", cg.stats().unwrap_err()),
            format!(
                "parse {}: malformed content \"system 1\\nuser 0\\n\"",
                stat.display()
            )
        );
    }

    #[test]
    fn v2_reads_as_runc_converts() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = fake_v2(
            tmp.path(),
            &[
                (
                    "cpu.stat",
                    "usage_usec 12966\nuser_usec 1000\nsystem_usec 11966\nnice_usec 0\nnr_periods 10\n\
                     nr_throttled 2\nthrottled_usec 345\nnr_bursts 0\nburst_usec 0\n",
                ),
                (
                    "memory.stat",
                    "anon 53248\nfile 184320\nkernel 425984\nsock 0\nshmem 0\nfile_mapped 86016\n",
                ),
                ("memory.current", "897024\n"),
                ("memory.max", "104857600\n"),
                ("memory.swap.current", "4096\n"),
                ("memory.swap.max", "max\n"),
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
                (
                    "io.stat",
                    "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=0 wbytes=0 rios=0 wios=0\n",
                ),
            ],
        );
        let stats = cg.stats().unwrap();
        let data = json_of(&stats);
        assert_eq!(
            data["cpu"],
            json!({"usage": {"total": 12966000u64, "kernel": 11966000u64, "user": 1000000u64},
                   "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 345000}})
        );
        assert_eq!(
            data["memory"],
            json!({
                "cache": 184320,
                "usage": {"limit": 104857600u64, "usage": 897024, "failcnt": 0},
                "swap": {"limit": u64::MAX, "usage": 901120, "failcnt": 0},
                "raw": {"anon": 53248, "file": 184320, "kernel": 425984, "sock": 0, "shmem": 0,
                        "file_mapped": 86016}
            })
        );
        assert_eq!(data["pids"], json!({"current": 3}));
        assert_eq!(
            data["blkio"],
            json!({
                "ioServiceBytesRecursive": [
                    {"major": 8, "op": "Read", "value": 4096},
                    {"major": 8, "op": "Write", "value": 8192},
                    {"major": 253, "minor": 1, "op": "Read"},
                    {"major": 253, "minor": 1, "op": "Write"}
                ],
                "ioServicedRecursive": [
                    {"major": 8, "op": "Read", "value": 1},
                    {"major": 8, "op": "Write", "value": 2},
                    {"major": 253, "minor": 1, "op": "Read"},
                    {"major": 253, "minor": 1, "op": "Write"}
                ]
            })
        );
        assert_eq!(data["cpuset"], json_of(&Stats::default())["cpuset"]);
    }

    #[test]
    fn v2_swap_and_pids_fallbacks() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = fake_v2(
            tmp.path(),
            &[
                ("memory.stat", "anon 1\n"),
                ("memory.current", "100\n"),
                ("memory.max", "max\n"),
                ("cgroup.procs", "12\n13\n"),
            ],
        );
        let stats = cg.stats().unwrap();
        assert_eq!(
            stats.memory.swap,
            MemoryEntry {
                limit: u64::MAX,
                usage: 100,
                ..MemoryEntry::default()
            }
        );
        assert_eq!(stats.memory.cache, 0);
        assert_eq!(
            stats.pids,
            Pids {
                current: 2,
                limit: 0
            }
        );
        assert_eq!(stats.cpu, Cpu::default());

        let memory = MemoryEntry {
            limit: 1000,
            usage: 10,
            ..MemoryEntry::default()
        };
        let swap = MemoryEntry {
            limit: 500,
            usage: 5,
            ..MemoryEntry::default()
        };
        assert_eq!(
            swap_v2(&memory, swap),
            MemoryEntry {
                limit: 1500,
                usage: 15,
                ..MemoryEntry::default()
            }
        );
    }

    #[test]
    fn blkio_v1_walks_groups_like_runc() {
        let files = |list: &'static [(&'static str, &'static str)]| {
            move |file: &str| -> Result<Option<Vec<BlkioEntry>>> {
                list.iter()
                    .find(|(f, _)| *f == file)
                    .map(|(_, text)| parse_blkio_v1(text).with_context(|| format!("parse {file}")))
                    .transpose()
            }
        };
        let entry = |minor, op: &str, value| BlkioEntry {
            major: 8,
            minor,
            op: op.to_owned(),
            value,
        };
        // Empty BFQ files: fall through to the recursive throttling group.
        let blkio = blkio_v1(files(&[
            ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 3\n8:0 Write 4\n8:0 Sync 5\n8:0 Async 2\n8:0 Discard 0\n8:0 Total 7\nTotal 7\n",
            ),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:16 Read 4096\nTotal 4096\n",
            ),
            ("blkio.throttle.io_serviced", "8:0 Read 99\n"),
        ]))
        .unwrap();
        assert_eq!(
            blkio.io_serviced_recursive,
            [
                entry(0, "Read", 3),
                entry(0, "Write", 4),
                entry(0, "Sync", 5),
                entry(0, "Async", 2),
                entry(0, "Discard", 0),
                entry(0, "Total", 7)
            ]
        );
        assert_eq!(blkio.io_service_bytes_recursive, [entry(16, "Read", 4096)]);

        // CFQ: the walk stops at the first later file that is missing, keeping what it read.
        let blkio = blkio_v1(files(&[
            ("blkio.sectors_recursive", "8:0 2048\n"),
            ("blkio.io_service_time_recursive", "8:0 Read 10\n"),
            ("blkio.throttle.io_serviced_recursive", "8:0 Read 3\n"),
        ]))
        .unwrap();
        assert_eq!(blkio.sectors_recursive, [entry(0, "", 2048)]);
        assert_eq!(blkio.io_service_time_recursive, [entry(0, "Read", 10)]);
        assert!(blkio.io_serviced_recursive.is_empty());

        // A malformed first file skips its group; a malformed later file is an error.
        let blkio = blkio_v1(files(&[
            ("blkio.throttle.io_serviced_recursive", "garbage\n"),
            ("blkio.throttle.io_serviced", "8:0 Read 1\n"),
            ("blkio.throttle.io_service_bytes", "8:0 Read 512\n"),
        ]))
        .unwrap();
        assert_eq!(blkio.io_service_bytes_recursive, [entry(0, "Read", 512)]);
        let err = blkio_v1(files(&[
            ("blkio.throttle.io_serviced", "8:0 Read 1\n"),
            ("blkio.throttle.io_service_bytes", "8:x Read 512\n"),
        ]))
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "parse blkio.throttle.io_service_bytes: invalid number \"x\" in line \"8:x Read 512\""
        );
    }

    #[test]
    fn hugepage_names() {
        assert_eq!(
            hugepage_size_name("hugepages-2048kB").as_deref(),
            Some("2MB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-64kB").as_deref(),
            Some("64KB")
        );
        assert_eq!(
            hugepage_size_name("hugepages-32768kB").as_deref(),
            Some("32MB")
        );
        assert_eq!(hugepage_size_name("hugepages-2048MB"), None);
        assert_eq!(hugepage_size_name("other"), None);
    }

    #[test]
    fn hugetlb_counters_per_version() {
        let sizes = hugepage_sizes().unwrap();
        let Some(size) = sizes.first() else {
            println!("SKIP: no huge page sizes on this host");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let v1 = tmp.path().join("v1");
        fs::create_dir_all(&v1).unwrap();
        for (name, value) in [
            ("usage_in_bytes", "4"),
            ("max_usage_in_bytes", "8"),
            ("failcnt", "1"),
        ] {
            fs::write(v1.join(format!("hugetlb.{size}.{name}")), value).unwrap();
        }
        assert_eq!(
            hugetlb(&Dir(&v1), HugetlbFiles::V1).unwrap(),
            BTreeMap::from([(
                size.clone(),
                Hugetlb {
                    usage: 4,
                    max: 8,
                    failcnt: 1
                }
            )])
        );
        let v2 = tmp.path().join("v2");
        fs::create_dir_all(&v2).unwrap();
        fs::write(v2.join(format!("hugetlb.{size}.current")), "4\n").unwrap();
        fs::write(v2.join(format!("hugetlb.{size}.events")), "max 3\n").unwrap();
        assert_eq!(
            hugetlb(&Dir(&v2), HugetlbFiles::V2).unwrap(),
            BTreeMap::from([(
                size.clone(),
                Hugetlb {
                    usage: 4,
                    max: 0,
                    failcnt: 3
                }
            )])
        );
    }
}
