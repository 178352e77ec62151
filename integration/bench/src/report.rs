//! The markdown table (stdout and --markdown), the target checks and the JSON document (--out).

use crate::host::Machine;
use crate::runtime::Runtime;
use crate::stats::{median, median_ms};
use crate::workloads::{Burst, PerRuntime, Phase, Results, Rounds};
use serde_json::{json, Map, Value};

/// One table cell: a number (for the ratios) and what is printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: Option<f64>,
    pub text: String,
}

impl Cell {
    fn text(text: &str) -> Self {
        Cell {
            value: None,
            text: text.to_owned(),
        }
    }

    fn number(value: f64, decimals: usize) -> Self {
        Cell {
            value: Some(value),
            text: format!("{value:.decimals$}"),
        }
    }

    fn note(mut self, note: &str) -> Self {
        self.text = format!("{} ({note})", self.text);
        self
    }
}

/// A table row: the workload label and one cell per column name (runtimes, `floor`).
pub struct Row {
    pub label: String,
    pub cells: Vec<(String, Cell)>,
}

impl Row {
    fn cell(&self, column: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, c)| c)
    }

    fn value(&self, column: &str) -> Option<f64> {
        self.cell(column).and_then(|c| c.value)
    }
}

/// What the report is about.
pub struct Report<'a> {
    pub runtimes: &'a [Runtime],
    /// Whether a floor program was measured.
    pub floor: bool,
    pub results: &'a Results,
    pub rounds: &'a Rounds,
    pub scale: usize,
    pub machine: &'a Machine,
    pub date: String,
    /// Extra lines after the table (skipped runtimes, a missing floor program).
    pub notes: Vec<String>,
}

/// The cell of one runtime in one workload: `summary(data)`, or why there is none.
fn cell_of<T>(
    runtimes: &[Runtime],
    name: &str,
    results: &PerRuntime<T>,
    summary: impl Fn(&T) -> Option<Cell>,
) -> Cell {
    if runtimes
        .iter()
        .any(|rt| rt.name == name && rt.skipped.is_some())
    {
        return Cell::text("skipped");
    }
    match results.get(name) {
        None => Cell::text("-"),
        Some(Err(_)) => Cell::text("FAILED"),
        Some(Ok(data)) => summary(data).unwrap_or_else(|| Cell::text("-")),
    }
}

fn ms(samples: &[u64]) -> Option<Cell> {
    median_ms(samples).map(|v| Cell::number(v, 2))
}

fn phase_cell(phase: &Phase, leftovers: Option<usize>) -> Option<Cell> {
    let mut cell = Cell::number(phase.wall_us as f64 / 1000.0, 2);
    if phase.failures > 0 {
        cell = cell.note(&format!("{} failed", phase.failures));
    }
    if let Some(n) = leftovers.filter(|n| *n > 0) {
        cell = cell.note(&format!("{n} left over"));
    }
    Some(cell)
}

impl Report<'_> {
    /// The columns after `workload`: every runtime, then `floor`.
    fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self.runtimes.iter().map(|rt| rt.name.clone()).collect();
        if self.floor {
            columns.push("floor".into());
        }
        columns
    }

    fn row<T>(
        &self,
        label: String,
        results: &PerRuntime<T>,
        summary: impl Fn(&T) -> Option<Cell>,
    ) -> Row {
        let cells = self
            .columns()
            .into_iter()
            .map(|name| {
                let cell = if name == "floor" && !results.contains_key("floor") {
                    Cell::text("")
                } else {
                    cell_of(self.runtimes, &name, results, &summary)
                };
                (name, cell)
            })
            .collect();
        Row { label, cells }
    }

    pub fn rows(&self) -> Vec<Row> {
        let r = self.results;
        let mut rows = Vec::new();
        if let Some(run) = &r.run {
            rows.push(self.row("run /bin/true (median ms)".into(), run, |s| ms(s)));
        }
        if let Some(life) = &r.lifecycle {
            rows.push(self.row("create (median ms)".into(), life, |l| ms(&l.create)));
            rows.push(self.row("start (median ms)".into(), life, |l| ms(&l.start)));
            rows.push(self.row("wait (median ms)".into(), life, |l| ms(&l.wait)));
            rows.push(self.row("delete (median ms)".into(), life, |l| ms(&l.delete)));
            rows.push(self.row(
                "create→start→wait→delete (median ms)".into(),
                life,
                |l| ms(&l.total),
            ));
        }
        if let Some(exec) = &r.exec {
            rows.push(self.row("exec /bin/true (median ms)".into(), exec, |s| ms(s)));
        }
        if let Some(state) = &r.state {
            rows.push(self.row("state (median ms)".into(), state, |s| ms(s)));
        }
        for (results, tag, n) in [
            (&r.concurrent, "", self.rounds.concurrent),
            (&r.scale, "scale: ", self.scale),
        ] {
            let Some(bursts) = results else { continue };
            rows.push(self.row(
                format!("{tag}{n} concurrent create (wall ms)"),
                bursts,
                |b: &Burst| phase_cell(&b.create, None),
            ));
            if bursts
                .values()
                .any(|b| b.as_ref().is_ok_and(|b| b.start.is_some()))
            {
                rows.push(self.row(
                    format!("{tag}{n} concurrent start (wall ms)"),
                    bursts,
                    |b: &Burst| phase_cell(b.start.as_ref()?, None),
                ));
            }
            rows.push(self.row(
                format!("{tag}{n} concurrent kill+delete (wall ms)"),
                bursts,
                |b: &Burst| phase_cell(&b.kill_delete, Some(b.leftovers.count())),
            ));
        }
        if let Some(memory) = &r.memory {
            rows.push(
                self.row("peak RSS during create (median KiB)".into(), memory, |m| {
                    median(&m.create_maxrss_kib).map(|v| Cell::number(v, 0))
                }),
            );
            rows.push(self.row(
                format!("PSS of {} parked (KiB total)", self.rounds.parked),
                memory,
                |m| Some(Cell::number(m.parked_pss_kib.iter().sum::<u64>() as f64, 0)),
            ));
        }
        if let Some(memlimit) = &r.memlimit {
            rows.push(
                self.row("smallest memory limit (KiB)".into(), memlimit, |m| {
                    Some(match m.smallest_kib {
                        Some(kib) => Cell::number(kib as f64, 0),
                        None => Cell::text("> 65536"),
                    })
                }),
            );
        }
        if let Some(size) = &r.size {
            rows.push(self.row("binary size (KiB)".into(), size, |s| {
                let cell = Cell::number((s.bytes as f64 / 1024.0).round(), 0);
                Some(if s.stripped == Some(false) {
                    cell.note("not stripped")
                } else {
                    cell
                })
            }));
        }
        if let Some(checkpoint) = &r.checkpoint {
            rows.push(self.row("checkpoint (median ms)".into(), checkpoint, |c| {
                ms(&c.checkpoint)
            }));
            rows.push(self.row("restore -d (median ms)".into(), checkpoint, |c| {
                ms(&c.restore)
            }));
        }
        rows
    }

    /// The header and the printed rows, with the hull/runc and hull/floor ratio columns.
    pub fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let has = |name: &str| self.runtimes.iter().any(|rt| rt.name == name);
        let ratios: Vec<(&str, &str)> = [("hull", "runc"), ("hull", "floor")]
            .into_iter()
            .filter(|(a, b)| has(a) && (has(b) || (*b == "floor" && self.floor)))
            .collect();
        let mut header = vec!["workload".to_owned()];
        header.extend(self.columns());
        header.extend(ratios.iter().map(|(a, b)| format!("{a}/{b}")));
        let rows = self
            .rows()
            .iter()
            .map(|row| {
                let mut line = vec![row.label.clone()];
                line.extend(row.cells.iter().map(|(_, cell)| cell.text.clone()));
                line.extend(
                    ratios
                        .iter()
                        .map(|(a, b)| ratio(row.value(a), row.value(b))),
                );
                line
            })
            .collect();
        (header, rows)
    }

    /// The table, the date and machine line, and the notes.
    pub fn markdown(&self) -> String {
        let (header, rows) = self.table();
        let mut out = markdown_table(&header, &rows);
        let m = self.machine;
        out.push_str(&format!(
            "\n{} · kernel {}, {} × {}, {} MiB, cgroup {}\n",
            self.date,
            m.kernel,
            m.cpu,
            m.cpus,
            m.memory_kib / 1024,
            m.cgroup
        ));
        for note in &self.notes {
            out.push_str(&format!("\n{note}"));
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out
    }

    /// The value of a table row (found by the start of its label) in one column.
    pub fn median_of(&self, label: &str, column: &str) -> Option<f64> {
        self.rows()
            .iter()
            .find(|row| row.label.starts_with(label))
            .and_then(|row| row.value(column))
    }

    /// The target checks (informational unless --enforce).
    pub fn targets(&self) -> Vec<Target> {
        let rows = self.rows();
        let find = |prefix: &str| rows.iter().find(|row| row.label.starts_with(prefix));
        let value = |prefix: &str, column: &str| find(prefix).and_then(|row| row.value(column));
        let ratio_target = |name: &str, prefix: &str, other: &str, max: f64| {
            let got = value(prefix, "hull")
                .zip(value(prefix, other))
                .map(|(h, o)| h / o);
            Target::check(name, got.map(|r| format!("{r:.2}x")), got.map(|r| r <= max))
        };
        let parked = self.rounds.parked;
        let parked_max = 10240 * parked as u64 / 50;
        let mut targets = vec![
            ratio_target("run ≤ 1.5x floor", "run /bin/true", "floor", 1.5),
            ratio_target("run ≤ 0.25x runc", "run /bin/true", "runc", 0.25),
            // Issue 19's target for the systemd path (crun refuses hybrid hosts: n/a there).
            ratio_target("run ≤ 0.5x crun", "run /bin/true", "crun", 0.5),
            ratio_target("lifecycle total ≤ 0.25x runc", "create→start", "runc", 0.25),
            ratio_target("exec ≤ 0.3x runc", "exec", "runc", 0.3),
            ratio_target("state ≤ 0.25x runc", "state", "runc", 0.25),
        ];
        let rss = value("peak RSS", "hull");
        targets.push(Target::check(
            "create peak RSS ≤ 2048 KiB",
            rss.map(|v| format!("{v:.0} KiB")),
            rss.map(|v| v <= 2048.0),
        ));
        let pss = value("PSS of", "hull");
        targets.push(Target::check(
            &format!("{parked} parked ≤ {parked_max} KiB PSS"),
            pss.map(|v| format!("{v:.0} KiB")),
            pss.map(|v| v <= parked_max as f64),
        ));
        let limit = hull(&self.results.memlimit);
        targets.push(Target::check(
            "memory limit 512 KiB works",
            limit.map(|m| match m.smallest_kib {
                Some(kib) => format!("smallest {kib} KiB"),
                None => "none ≤ 64 MiB".into(),
            }),
            limit.map(|m| m.works_512_kib),
        ));
        let size = hull(&self.results.size);
        targets.push(Target::check(
            "binary ≤ 2.5 MiB",
            size.map(|s| format!("{} bytes", s.bytes)),
            size.map(|s| s.bytes <= 2_621_440),
        ));
        let scale = hull(&self.results.scale);
        targets.push(Target::check(
            &match self.scale {
                0 => "scale (--scale N): all created, no leftovers".to_owned(),
                n => format!("scale {n}: all created, no leftovers"),
            },
            scale.map(|b| {
                format!(
                    "{} failed creates, {} failed kill+delete, {} left over",
                    b.create.failures,
                    b.kill_delete.failures,
                    b.leftovers.count()
                )
            }),
            scale.map(|b| {
                b.create.failures == 0 && b.kill_delete.failures == 0 && b.leftovers.count() == 0
            }),
        ));
        targets
    }
}

/// hull's data in a workload, when it was measured.
fn hull<T>(results: &Option<PerRuntime<T>>) -> Option<&T> {
    results.as_ref()?.get("hull")?.as_ref().ok()
}

/// One target check for hull.
pub struct Target {
    pub name: String,
    pub value: String,
    /// None: not measured in this run.
    pub met: Option<bool>,
}

impl Target {
    fn check(name: &str, value: Option<String>, met: Option<bool>) -> Self {
        Target {
            name: name.to_owned(),
            value: value.unwrap_or_else(|| "-".into()),
            met,
        }
    }

    pub fn result(&self) -> &'static str {
        match self.met {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "n/a",
        }
    }
}

pub fn targets_markdown(targets: &[Target]) -> String {
    let header = ["target", "hull", "result"].map(str::to_owned).to_vec();
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| vec![t.name.clone(), t.value.clone(), t.result().to_owned()])
        .collect();
    markdown_table(&header, &rows)
}

/// `a/b` with two decimals, empty when either is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => String::new(),
    }
}

/// A markdown table with padded columns: the first left-aligned, the others right-aligned.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h).max(3)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for (i, w) in widths.iter().enumerate() {
            let cell = cells.get(i).map_or("", String::as_str);
            let pad = " ".repeat(w - width(cell));
            if i == 0 {
                out.push_str(&format!(" {cell}{pad} |"));
            } else {
                out.push_str(&format!(" {pad}{cell} |"));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    out.push('|');
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!(" {} |", "-".repeat(*w)));
        } else {
            out.push_str(&format!(" {}: |", "-".repeat(w - 1)));
        }
    }
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// The JSON document: machine, runtimes and every raw sample.
pub fn json(report: &Report, targets: Option<&[Target]>) -> Value {
    let m = report.machine;
    let runtimes: Map<String, Value> = report
        .runtimes
        .iter()
        .map(|rt| {
            (
                rt.name.clone(),
                json!({
                    "path": rt.path.display().to_string(),
                    "version": rt.version,
                    "skipped": rt.skipped,
                }),
            )
        })
        .collect();
    let r = report.results;
    let mut workloads = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            workloads.insert(name.to_owned(), value);
        }
    };
    put(
        "run",
        r.run.as_ref().map(|w| per_runtime(w, |s| json!({"us": s}))),
    );
    put(
        "lifecycle",
        r.lifecycle.as_ref().map(|w| {
            per_runtime(w, |l| {
                json!({"create_us": l.create, "start_us": l.start, "wait_us": l.wait,
                       "delete_us": l.delete, "total_us": l.total})
            })
        }),
    );
    put(
        "exec",
        r.exec
            .as_ref()
            .map(|w| per_runtime(w, |s| json!({"us": s}))),
    );
    put(
        "state",
        r.state
            .as_ref()
            .map(|w| per_runtime(w, |s| json!({"us": s}))),
    );
    put(
        "concurrent",
        r.concurrent.as_ref().map(|w| per_runtime(w, burst_json)),
    );
    put(
        "scale",
        r.scale.as_ref().map(|w| per_runtime(w, burst_json)),
    );
    put(
        "memory",
        r.memory.as_ref().map(|w| {
            per_runtime(w, |m| {
                json!({
                    "create_maxrss_kib": m.create_maxrss_kib,
                    "parked_pss_kib": m.parked_pss_kib,
                    "parked_pss_total_kib": m.parked_pss_kib.iter().sum::<u64>(),
                    "other_new_processes": m.other_new_processes,
                })
            })
        }),
    );
    put(
        "memlimit",
        r.memlimit.as_ref().map(|w| {
            per_runtime(w, |m| {
                json!({
                    "swap": m.swap,
                    "smallest_kib": m.smallest_kib,
                    "works_512_kib": m.works_512_kib,
                    "probes": m.probes.iter().map(|(kib, ok, why)| json!({"kib": kib, "ok": ok, "error": why})).collect::<Vec<_>>(),
                })
            })
        }),
    );
    put(
        "size",
        r.size.as_ref().map(|w| {
            per_runtime(w, |s| {
                json!({"path": s.resolved.display().to_string(), "bytes": s.bytes, "stripped": s.stripped})
            })
        }),
    );
    put(
        "checkpoint",
        r.checkpoint.as_ref().map(|w| {
            per_runtime(
                w,
                |c| json!({"checkpoint_us": c.checkpoint, "restore_us": c.restore}),
            )
        }),
    );
    let rounds = report.rounds;
    let mut doc = json!({
        "date": report.date,
        "machine": {
            "kernel": m.kernel, "cpu": m.cpu, "cpus": m.cpus, "memory_kib": m.memory_kib, "cgroup": m.cgroup,
        },
        "runtimes": runtimes,
        "rounds": {
            "run": rounds.run, "lifecycle": rounds.lifecycle, "exec": rounds.exec, "state": rounds.state,
            "state_containers": rounds.state_containers, "concurrent": rounds.concurrent,
            "rss": rounds.rss, "parked": rounds.parked, "scale": report.scale, "checkpoint": rounds.checkpoint,
        },
        "workloads": workloads,
    });
    if let Some(targets) = targets {
        doc["targets"] = targets
            .iter()
            .map(|t| json!({"target": t.name, "value": t.value, "met": t.met}))
            .collect();
    }
    doc
}

/// `{runtime: data | {"error": message}}`.
fn per_runtime<T>(results: &PerRuntime<T>, data: impl Fn(&T) -> Value) -> Value {
    results
        .iter()
        .map(|(name, result)| {
            let value = match result {
                Ok(d) => data(d),
                Err(e) => json!({"error": e}),
            };
            (name.clone(), value)
        })
        .collect::<Map<String, Value>>()
        .into()
}

fn burst_json(b: &Burst) -> Value {
    let phase = |p: &Phase| json!({"wall_us": p.wall_us, "attempted": p.attempted, "failures": p.failures, "errors": p.errors});
    json!({
        "containers": b.containers,
        "create": phase(&b.create),
        "start": b.start.as_ref().map(phase),
        "kill_delete": phase(&b.kill_delete),
        "leftovers": {"state": b.leftovers.state, "cgroups": b.leftovers.cgroups},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::Lifecycle;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn runtime(name: &str, skipped: Option<&str>) -> Runtime {
        Runtime {
            name: name.into(),
            path: PathBuf::from(format!("/bin/{name}")),
            root: PathBuf::from("/tmp/state"),
            version: String::new(),
            skipped: skipped.map(str::to_owned),
            systemd_cgroup: false,
        }
    }

    fn machine() -> Machine {
        Machine {
            kernel: "6.1.0".into(),
            cpu: "Test CPU".into(),
            cpus: 2,
            memory_kib: 4 * 1024 * 1024,
            cgroup: "hybrid",
        }
    }

    #[test]
    fn markdown_table_pads_and_aligns() {
        let header = vec!["workload".to_owned(), "hull".to_owned(), "runc".to_owned()];
        let rows = vec![
            vec!["run (ms)".to_owned(), "5.00".to_owned(), "20.50".to_owned()],
            vec![
                "create→start".to_owned(),
                "1.25".to_owned(),
                "FAILED".to_owned(),
            ],
        ];
        assert_eq!(
            markdown_table(&header, &rows),
            "| workload     | hull |   runc |\n\
             | ------------ | ---: | -----: |\n\
             | run (ms)     | 5.00 |  20.50 |\n\
             | create→start | 1.25 | FAILED |\n"
        );
    }

    #[test]
    fn ratio_has_two_decimals() {
        assert_eq!(ratio(Some(1.0), Some(3.0)), "0.33");
        assert_eq!(ratio(Some(5.0), Some(20.0)), "0.25");
        assert_eq!(ratio(Some(5.0), None), "");
        assert_eq!(ratio(Some(5.0), Some(0.0)), "");
    }

    #[test]
    fn table_has_runtime_floor_and_ratio_columns() {
        let runtimes = vec![
            runtime("hull", None),
            runtime("runc", None),
            runtime("crun", Some("cgroup v1")),
        ];
        let mut run = BTreeMap::new();
        run.insert("hull".to_owned(), Ok(vec![5000, 6000, 4000]));
        run.insert("runc".to_owned(), Ok(vec![20000, 20000]));
        run.insert("floor".to_owned(), Ok(vec![4000]));
        let mut lifecycle = BTreeMap::new();
        lifecycle.insert(
            "hull".to_owned(),
            Ok(Lifecycle {
                total: vec![1000],
                ..Default::default()
            }),
        );
        lifecycle.insert("runc".to_owned(), Err("boom".to_owned()));
        let results = Results {
            run: Some(run),
            lifecycle: Some(lifecycle),
            ..Default::default()
        };
        let rounds = Rounds::new(false);
        let machine = machine();
        let report = Report {
            runtimes: &runtimes,
            floor: true,
            results: &results,
            rounds: &rounds,
            scale: 0,
            machine: &machine,
            date: "2026-01-01T00:00:00Z".into(),
            notes: vec![],
        };
        let (header, rows) = report.table();
        assert_eq!(
            header,
            [
                "workload",
                "hull",
                "runc",
                "crun",
                "floor",
                "hull/runc",
                "hull/floor"
            ]
        );
        assert_eq!(
            rows[0],
            [
                "run /bin/true (median ms)",
                "5.00",
                "20.00",
                "skipped",
                "4.00",
                "0.25",
                "1.25"
            ]
        );
        assert_eq!(
            rows[5],
            [
                "create→start→wait→delete (median ms)",
                "1.00",
                "FAILED",
                "skipped",
                "",
                "",
                ""
            ]
        );
        let markdown = report.markdown();
        assert!(markdown.contains(
            "\n2026-01-01T00:00:00Z · kernel 6.1.0, Test CPU × 2, 4096 MiB, cgroup hybrid\n"
        ));
        let targets = report.targets();
        assert_eq!(targets[0].result(), "ok");
        assert_eq!(targets[0].value, "1.25x");
        assert_eq!(targets[1].result(), "ok");
        assert_eq!(targets[2].result(), "n/a");
        assert_eq!(targets[3].result(), "n/a");
    }

    #[test]
    fn table_without_floor_has_no_floor_columns() {
        let runtimes = vec![runtime("hull", None), runtime("runc", None)];
        let mut state = BTreeMap::new();
        state.insert("hull".to_owned(), Ok(vec![1500]));
        state.insert("runc".to_owned(), Ok(vec![3000]));
        let results = Results {
            state: Some(state),
            ..Default::default()
        };
        let rounds = Rounds::new(true);
        let machine = machine();
        let report = Report {
            runtimes: &runtimes,
            floor: false,
            results: &results,
            rounds: &rounds,
            scale: 0,
            machine: &machine,
            date: String::new(),
            notes: vec![],
        };
        let (header, rows) = report.table();
        assert_eq!(header, ["workload", "hull", "runc", "hull/runc"]);
        assert_eq!(rows, [["state (median ms)", "1.50", "3.00", "0.50"]]);
    }
}
