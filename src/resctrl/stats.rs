//! The `intel_rdt` object of `events --stats`: runc's `intelrdt.GetStats` as `events.go` converts it, with the JSON
//! names of runc's `types/events.go`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Serialize, Serializer};

use super::group::read_trimmed;
use super::host::Host;
use crate::signal::go_quote;

/// Serialises to `{}` by default: what runc prints for a container without `intelRdt`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// `info/L3`, with CAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l3_cache_info: Option<L3CacheInfo>,
    /// The root group's L3 line, with CAT.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub l3_cache_schema_root: String,
    /// The container group's L3 line, with CAT.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub l3_cache_schema: String,
    /// `info/MB`, with MBA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_bw_info: Option<MemBwInfo>,
    /// The root group's MB line, with MBA.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mem_bw_schema_root: String,
    /// The container group's MB line, with MBA.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mem_bw_schema: String,
    /// Every line of the container group's `schemata`, as the kernel aligns them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemata: Vec<String>,
    /// One entry per `mon_data` domain, with MBM; `null` when there is none (Go's nil slice).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "empty_as_null"
    )]
    pub mbm_stats: Option<Vec<MbmNumaNodeStats>>,
    /// One entry per `mon_data` domain, with CMT; `null` when there is none.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "empty_as_null"
    )]
    pub cmt_stats: Option<Vec<CmtNumaNodeStats>>,
}

/// `info/L3`; zero values are left out, as Go's `omitempty` does.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct L3CacheInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cbm_mask: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub min_cbm_bits: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_closids: u64,
}

/// `info/MB`; zero values are left out.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct MemBwInfo {
    #[serde(skip_serializing_if = "is_zero")]
    pub bandwidth_gran: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub delay_linear: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub min_bandwidth: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub num_closids: u64,
}

/// The byte counters of one `mon_data` domain; an event the host lacks reads 0.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct MbmNumaNodeStats {
    pub mbm_total_bytes: u64,
    pub mbm_local_bytes: u64,
}

/// The LLC occupancy of one `mon_data` domain.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CmtNumaNodeStats {
    pub llc_occupancy: u64,
}

/// Reads the stats of the control group `group`, monitoring counters from `monitoring` (the container's monitoring
/// group, or the control group without one), in runc's order: root and group `schemata`, then `info/L3` and the L3
/// lines with CAT, `info/MB` and the MB lines with MBA, then `mon_data` with MBM or CMT. The first unreadable file
/// is the error.
pub(super) fn read(host: &Host, group: &Path, monitoring: &Path) -> Result<Stats> {
    let root_schemata = read_trimmed(&host.root().join("schemata"))?;
    let group_schemata = read_trimmed(&group.join("schemata"))?;
    let mut stats = Stats {
        schemata: group_schemata.split('\n').map(str::to_owned).collect(),
        ..Stats::default()
    };
    let info = host.root().join("info");
    if host.cat_enabled() {
        let dir = info.join("L3");
        stats.l3_cache_info = Some(L3CacheInfo {
            cbm_mask: read_trimmed(&dir.join("cbm_mask"))?,
            min_cbm_bits: read_uint(&dir.join("min_cbm_bits"))?,
            num_closids: read_uint(&dir.join("num_closids"))?,
        });
        stats.l3_cache_schema_root = last_line_naming(&root_schemata, "L3");
        stats.l3_cache_schema = last_line_naming(&group_schemata, "L3");
    }
    if host.mba_enabled() {
        let dir = info.join("MB");
        stats.mem_bw_info = Some(MemBwInfo {
            bandwidth_gran: read_uint(&dir.join("bandwidth_gran"))?,
            delay_linear: read_uint(&dir.join("delay_linear"))?,
            min_bandwidth: read_uint(&dir.join("min_bandwidth"))?,
            num_closids: read_uint(&dir.join("num_closids"))?,
        });
        stats.mem_bw_schema_root = last_line_naming(&root_schemata, "MB");
        stats.mem_bw_schema = last_line_naming(&group_schemata, "MB");
    }
    if host.mbm_enabled() || host.cmt_enabled() {
        read_monitoring(host, monitoring, &mut stats)?;
    }
    Ok(stats)
}

/// The counters of every domain directory in `<group>/mon_data`, in name order (runc's `getMonitoringStats`). Only
/// the events the host lists are read.
fn read_monitoring(host: &Host, group: &Path, stats: &mut Stats) -> Result<()> {
    let mon_data = group.join("mon_data");
    let mut domains = Vec::new();
    for entry in fs::read_dir(&mon_data).with_context(|| format!("open {}", mon_data.display()))? {
        let entry = entry.with_context(|| format!("read {}", mon_data.display()))?;
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            domains.push(entry.path());
        }
    }
    domains.sort();
    let events = host.monitoring();
    let counter = |domain: &Path, listed: bool, file: &str| -> Result<u64> {
        if listed {
            read_uint(&domain.join(file))
        } else {
            Ok(0)
        }
    };
    let mut mbm = Vec::new();
    let mut cmt = Vec::new();
    for domain in &domains {
        if host.mbm_enabled() {
            mbm.push(MbmNumaNodeStats {
                mbm_total_bytes: counter(domain, events.mbm_total_bytes, "mbm_total_bytes")?,
                mbm_local_bytes: counter(domain, events.mbm_local_bytes, "mbm_local_bytes")?,
            });
        }
        if host.cmt_enabled() {
            cmt.push(CmtNumaNodeStats {
                llc_occupancy: counter(domain, events.llc_occupancy, "llc_occupancy")?,
            });
        }
    }
    stats.mbm_stats = host.mbm_enabled().then_some(mbm);
    stats.cmt_stats = host.cmt_enabled().then_some(cmt);
    Ok(())
}

/// The last line that mentions `resource` anywhere, trimmed; "" when none does. runc matches by substring, so
/// `L3CODE` counts as L3 and `SMBA` as MB.
fn last_line_naming(schemata: &str, resource: &str) -> String {
    schemata
        .split('\n')
        .rfind(|line| line.contains(resource))
        .map_or_else(String::new, |line| line.trim().to_owned())
}

/// A decimal counter file, read as runc's `getIntelRdtParamUint` (`fscommon.ParseUint`): surrounding whitespace
/// ignored, a negative number is 0, anything else is an error quoting the raw contents.
fn read_uint(path: &Path) -> Result<u64> {
    let contents = fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    let text = contents.trim();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(text) {
        if let Ok(value) = text.parse() {
            return Ok(value);
        }
    } else if text
        .strip_prefix('-')
        .is_some_and(|digits| all_digits(digits) && digits.bytes().any(|b| b != b'0'))
    {
        return Ok(0);
    }
    bail!(
        "unable to parse {} as a uint from file {}",
        go_quote(&contents),
        go_quote(&path.display().to_string())
    )
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Go marshals a nil slice as `null`: runc's per-domain lists stay nil when `mon_data` has no domain.
fn empty_as_null<S: Serializer, T: Serialize>(
    list: &Option<Vec<T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match list {
        Some(list) if !list.is_empty() => list.serialize(serializer),
        _ => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logger::error_chain_text;
    use crate::resctrl::fake::FakeResctrl;
    use crate::resctrl::group::Group;
    use crate::resctrl::plan::tests::rdt;

    const ID: &str = "ctr";

    /// A container group with the kernel's schemata alignment and two monitoring domains.
    fn container(fake: &FakeResctrl, json: &str) -> Group {
        let config = rdt(json);
        let mut group = Group::new(&fake.host(), &config, ID);
        let group_dir = group.path().strip_prefix(fake.root()).unwrap().to_owned();
        fs::create_dir_all(group.path().join("mon_groups")).unwrap();
        group.apply(&config, 1).unwrap();
        fake.write(
            &group_dir.join("schemata").to_string_lossy(),
            "    L3:0=0f0;1=00f\n    MB:0=70;1=20\n",
        );
        let mon = group.monitoring_path().unwrap_or(group.path()).to_owned();
        for (domain, total, local, llc) in [
            ("mon_L3_01", 30, 40, 50),
            ("mon_L3_00", 9123911, 2361361, 123331),
        ] {
            for (file, value) in [
                ("mbm_total_bytes", total),
                ("mbm_local_bytes", local),
                ("llc_occupancy", llc),
            ] {
                let path = mon.join("mon_data").join(domain).join(file);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, format!("{value}\n")).unwrap();
            }
        }
        group
    }

    fn json(stats: &Stats) -> String {
        serde_json::to_string(stats).unwrap()
    }

    #[test]
    fn no_rdt_is_an_empty_object() {
        assert_eq!(json(&Stats::default()), "{}");
    }

    #[test]
    fn all_features_give_runc_fields_in_runc_order() {
        let fake = FakeResctrl::new()
            .with_cat()
            .with_mba()
            .with_monitoring("mbm_total_bytes\nmbm_local_bytes\nllc_occupancy\n");
        let group = container(&fake, r#"{"enableMonitoring":true}"#);
        let stats = group.stats(&fake.host()).unwrap();
        assert_eq!(
            json(&stats),
            concat!(
                r#"{"l3_cache_info":{"cbm_mask":"7ff","min_cbm_bits":1,"num_closids":16},"#,
                r#""l3_cache_schema_root":"L3:0=7ff;1=7ff","l3_cache_schema":"L3:0=0f0;1=00f","#,
                r#""mem_bw_info":{"bandwidth_gran":10,"delay_linear":1,"min_bandwidth":10,"num_closids":8},"#,
                r#""mem_bw_schema_root":"MB:0=100;1=100","mem_bw_schema":"MB:0=70;1=20","#,
                r#""schemata":["L3:0=0f0;1=00f","    MB:0=70;1=20"],"#,
                r#""mbm_stats":[{"mbm_total_bytes":9123911,"mbm_local_bytes":2361361},"#,
                r#"{"mbm_total_bytes":30,"mbm_local_bytes":40}],"#,
                r#""cmt_stats":[{"llc_occupancy":123331},{"llc_occupancy":50}]}"#
            )
        );
    }

    #[test]
    fn without_features_only_the_schemata_are_reported() {
        let fake = FakeResctrl::new();
        let group = container(&fake, "{}");
        assert_eq!(
            json(&group.stats(&fake.host()).unwrap()),
            r#"{"schemata":["L3:0=0f0;1=00f","    MB:0=70;1=20"]}"#
        );
    }

    #[test]
    fn counters_come_from_the_control_group_without_a_monitoring_group() {
        let fake = FakeResctrl::new().with_monitoring("llc_occupancy\n");
        let group = container(&fake, "{}");
        let stats = group.stats(&fake.host()).unwrap();
        assert_eq!(stats.mbm_stats, None);
        assert_eq!(
            stats.cmt_stats,
            Some(vec![
                CmtNumaNodeStats {
                    llc_occupancy: 123331
                },
                CmtNumaNodeStats { llc_occupancy: 50 }
            ])
        );
    }

    #[test]
    fn only_listed_events_are_read() {
        let fake = FakeResctrl::new().with_monitoring("mbm_local_bytes\n");
        let group = container(&fake, r#"{"enableMonitoring":true}"#);
        fs::remove_file(
            group
                .monitoring_path()
                .unwrap()
                .join("mon_data/mon_L3_00/mbm_total_bytes"),
        )
        .unwrap();
        let stats = group.stats(&fake.host()).unwrap();
        assert_eq!(
            stats.mbm_stats.unwrap()[0],
            MbmNumaNodeStats {
                mbm_total_bytes: 0,
                mbm_local_bytes: 2361361
            }
        );
    }

    #[test]
    fn no_domains_serialise_as_null() {
        let stats = Stats {
            mbm_stats: Some(Vec::new()),
            cmt_stats: Some(Vec::new()),
            ..Stats::default()
        };
        assert_eq!(json(&stats), r#"{"mbm_stats":null,"cmt_stats":null}"#);
    }

    #[test]
    fn zero_info_values_are_left_out() {
        let stats = Stats {
            l3_cache_info: Some(L3CacheInfo::default()),
            mem_bw_info: Some(MemBwInfo {
                delay_linear: 0,
                ..MemBwInfo {
                    bandwidth_gran: 10,
                    delay_linear: 1,
                    min_bandwidth: 10,
                    num_closids: 8,
                }
            }),
            ..Stats::default()
        };
        assert_eq!(
            json(&stats),
            r#"{"l3_cache_info":{},"mem_bw_info":{"bandwidth_gran":10,"min_bandwidth":10,"num_closids":8}}"#
        );
    }

    #[test]
    fn schema_lines_match_by_substring_and_the_last_wins() {
        let schemata = "L3CODE:0=ff\nL3DATA:0=f0\n   MB:0=50\n SMBA:0=100";
        assert_eq!(last_line_naming(schemata, "L3"), "L3DATA:0=f0");
        assert_eq!(last_line_naming(schemata, "MB"), "SMBA:0=100");
        assert_eq!(last_line_naming("L2:0=1", "L3"), "");
    }

    #[test]
    fn counters_parse_as_runc_parses_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("llc_occupancy");
        let parse = |contents: &str| {
            fs::write(&file, contents).unwrap();
            read_uint(&file).map_err(|e| e.to_string())
        };
        assert_eq!(parse(" 42\n"), Ok(42));
        assert_eq!(parse("-5\n"), Ok(0));
        assert_eq!(parse("-99999999999999999999999"), Ok(0));
        let quoted = go_quote(&file.display().to_string());
        assert_eq!(
            parse("Unavailable\n"),
            Err(format!(
                r#"unable to parse "Unavailable\n" as a uint from file {quoted}"#
            ))
        );
        assert!(parse("+5").is_err());
        assert!(parse("-0").is_err());
        assert!(parse("18446744073709551616").is_err());
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let fake = FakeResctrl::new().with_cat();
        let group = container(&fake, "{}");
        fs::remove_file(fake.root().join("info/L3/num_closids")).unwrap();
        let err = group.stats(&fake.host()).unwrap_err();
        assert_eq!(
            error_chain_text(&err),
            format!(
                "unable to get container Intel RDT stats: open {}: No such file or directory",
                fake.root().join("info/L3/num_closids").display()
            )
        );
    }

    #[test]
    fn missing_mon_data_is_an_error_with_monitoring() {
        let fake = FakeResctrl::new().with_monitoring("llc_occupancy\n");
        let group = container(&fake, "{}");
        fs::remove_dir_all(group.path().join("mon_data")).unwrap();
        let err = group.stats(&fake.host()).unwrap_err();
        assert!(
            error_chain_text(&err).contains("mon_data: No such file or directory"),
            "{}",
            error_chain_text(&err)
        );
    }
}
