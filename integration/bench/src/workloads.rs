//! The workloads. Timed loops interleave the runtimes round by round (A B C A B C ...) so all see
//! the same machine state; a runtime that fails a step drops out of that workload with the error,
//! the others go on. Every container id is recorded in a `Guard` before it is created, so whatever
//! a failed or interrupted workload leaves behind is `delete -f`ed.

use crate::bundle;
use crate::host;
use crate::runtime::{self, Guard, Runtime, INTERRUPTED};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Results of one workload: per runtime name, the data or the error that stopped it.
pub type PerRuntime<T> = BTreeMap<String, Result<T, String>>;

/// How many rounds (or containers) each workload uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Rounds {
    pub run: usize,
    pub lifecycle: usize,
    pub exec: usize,
    pub state: usize,
    pub state_containers: usize,
    pub concurrent: usize,
    pub rss: usize,
    pub parked: usize,
    pub checkpoint: usize,
}

impl Rounds {
    pub fn new(quick: bool) -> Self {
        let full = Rounds {
            run: 100,
            lifecycle: 100,
            exec: 50,
            state: 50,
            state_containers: 50,
            concurrent: 50,
            rss: 20,
            parked: 50,
            checkpoint: 10,
        };
        if !quick {
            return full;
        }
        let fifth = |n: usize| (n / 5).max(1);
        Rounds {
            run: fifth(full.run),
            lifecycle: fifth(full.lifecycle),
            exec: fifth(full.exec),
            state: fifth(full.state),
            state_containers: fifth(full.state_containers),
            concurrent: fifth(full.concurrent),
            rss: fifth(full.rss),
            parked: fifth(full.parked),
            checkpoint: fifth(full.checkpoint),
        }
    }
}

/// Everything the workloads share.
pub struct Bench<'a> {
    /// The runtimes that passed the probe, in command-line order.
    pub runtimes: Vec<&'a Runtime>,
    pub work: &'a Path,
    pub rootfs: &'a Path,
    /// The config every bundle starts from.
    pub base: &'a serde_json::Value,
    /// A bundle running /bin/true.
    pub true_bundle: PathBuf,
    /// A bundle running `sleep 1000000`.
    pub sleep_bundle: PathBuf,
    /// The floor program, when given and present.
    pub floor: Option<&'a Path>,
    pub rounds: &'a Rounds,
    /// Containers created at once by the scale workload (0: off).
    pub scale: usize,
    /// Runtimes the scale workload runs for.
    pub scale_runtimes: &'a [String],
}

#[derive(Debug, Default, Clone)]
pub struct Lifecycle {
    pub create: Vec<u64>,
    pub start: Vec<u64>,
    pub wait: Vec<u64>,
    pub delete: Vec<u64>,
    pub total: Vec<u64>,
}

/// One batch of commands launched at once.
#[derive(Debug, Default, Clone)]
pub struct Phase {
    /// From the release of all threads until the last command returned.
    pub wall_us: u64,
    pub attempted: usize,
    pub failures: usize,
    /// The first few error messages.
    pub errors: Vec<String>,
}

/// What a runtime left behind after deleting every container of a batch.
#[derive(Debug, Default, Clone)]
pub struct Leftovers {
    /// Entries of its state directory.
    pub state: Vec<String>,
    /// Cgroup directories named after the batch's ids.
    pub cgroups: Vec<String>,
}

impl Leftovers {
    pub fn count(&self) -> usize {
        self.state.len() + self.cgroups.len()
    }
}

/// The concurrent and scale workloads.
#[derive(Debug, Default, Clone)]
pub struct Burst {
    pub containers: usize,
    pub create: Phase,
    /// Not run by the scale workload.
    pub start: Option<Phase>,
    pub kill_delete: Phase,
    pub leftovers: Leftovers,
}

#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// ru_maxrss of each `create` (forked by the RSS helper), KiB.
    pub create_maxrss_kib: Vec<u64>,
    /// PSS of each parked container's init process (the pid file's pid), KiB.
    pub parked_pss_kib: Vec<u64>,
    /// Processes that appeared during the parked creates and are not a container's init.
    pub other_new_processes: usize,
}

#[derive(Debug, Default, Clone)]
pub struct MemLimit {
    /// Whether `memory.swap` (= limit) was set; dropped when the runtime refuses it.
    pub swap: bool,
    /// The smallest multiple of 64 KiB under which `run /bin/true` succeeded; None when not even
    /// 64 MiB did.
    pub smallest_kib: Option<u64>,
    pub works_512_kib: bool,
    /// Every probe: limit (KiB), success, first line of stderr on failure.
    pub probes: Vec<(u64, bool, String)>,
}

#[derive(Debug, Clone)]
pub struct Size {
    pub resolved: PathBuf,
    pub bytes: u64,
    /// None when not a 64-bit little-endian ELF file.
    pub stripped: Option<bool>,
}

/// All results; None for workloads that were not run.
#[derive(Debug, Default)]
pub struct Results {
    /// Includes the floor program under the name `floor`.
    pub run: Option<PerRuntime<Vec<u64>>>,
    pub lifecycle: Option<PerRuntime<Lifecycle>>,
    pub exec: Option<PerRuntime<Vec<u64>>>,
    pub state: Option<PerRuntime<Vec<u64>>>,
    pub concurrent: Option<PerRuntime<Burst>>,
    pub scale: Option<PerRuntime<Burst>>,
    pub memory: Option<PerRuntime<Memory>>,
    pub memlimit: Option<PerRuntime<MemLimit>>,
    pub size: Option<PerRuntime<Size>>,
    pub checkpoint: Option<PerRuntime<Checkpoint>>,
}

pub const WORKLOADS: [&str; 10] = [
    "run",
    "lifecycle",
    "exec",
    "state",
    "concurrent",
    "scale",
    "memory",
    "memlimit",
    "size",
    "checkpoint",
];

/// Checkpoint and restore of a sleeping container, each timed.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    pub checkpoint: Vec<u64>,
    pub restore: Vec<u64>,
}

/// Short progress lines on stderr: rewritten in place on a terminal, every tenth otherwise.
struct Progress {
    label: String,
    total: usize,
    tty: bool,
}

impl Progress {
    fn new(label: &str, total: usize) -> Self {
        Progress {
            label: label.to_owned(),
            total,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&self, done: usize) {
        if self.tty {
            eprint!("\rbench: {} {done}/{}   ", self.label, self.total);
        } else if done == 1 || done == self.total || done.is_multiple_of((self.total / 10).max(1)) {
            eprintln!("bench: {} {done}/{}", self.label, self.total);
        }
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Runs `step(round, slot index, data)` for `rounds` rounds over the slots still Ok.
fn interleaved<T>(
    label: &str,
    rounds: usize,
    slots: &mut [Result<T, String>],
    mut step: impl FnMut(usize, usize, &mut T) -> Result<()>,
) {
    let progress = Progress::new(label, rounds);
    for round in 0..rounds {
        progress.tick(round + 1);
        for (index, slot) in slots.iter_mut().enumerate() {
            if let Ok(data) = slot {
                if let Err(err) = step(round, index, data) {
                    *slot = Err(format!("{err:#}"));
                }
            }
        }
    }
    progress.finish();
}

fn collect<T>(
    names: impl IntoIterator<Item = String>,
    slots: Vec<Result<T, String>>,
) -> PerRuntime<T> {
    names.into_iter().zip(slots).collect()
}

impl<'a> Bench<'a> {
    /// One empty, still-Ok result per measured runtime, for `interleaved`.
    fn fresh_slots<T: Default>(&self) -> Vec<Result<T, String>> {
        self.runtimes.iter().map(|_| Ok(T::default())).collect()
    }

    fn names(&self) -> Vec<String> {
        self.runtimes.iter().map(|rt| rt.name.clone()).collect()
    }

    fn pid_file(&self, id: &str) -> PathBuf {
        self.work.join("pids").join(format!("{id}.pid"))
    }

    /// `create` (with a pid file) + `start` of a sleeping container.
    fn start_sleeper(&self, guard: &Guard<'a>, rt: &'a Runtime, id: &str) -> Result<()> {
        guard.add(rt, id);
        rt.must(&[
            "create".as_ref(),
            "--bundle".as_ref(),
            self.sleep_bundle.as_os_str(),
            id.as_ref(),
        ])?;
        rt.must(&["start", id])?;
        Ok(())
    }

    /// `kill ID KILL` + `delete -f ID`.
    fn stop(&self, guard: &Guard<'a>, rt: &'a Runtime, id: &str) -> Result<()> {
        let killed = rt.must(&["kill", id, "KILL"]);
        rt.must(&["delete", "-f", id])?;
        guard.done(rt, id);
        killed.map(|_| ())
    }

    /// 1. `run` of /bin/true, and the floor program doing the same kernel work.
    pub fn run(&self) -> PerRuntime<Vec<u64>> {
        let guard = Guard::new();
        let mut names = self.names();
        if self.floor.is_some() {
            names.push("floor".into());
        }
        let mut slots: Vec<Result<Vec<u64>, String>> =
            names.iter().map(|_| Ok(Vec::new())).collect();
        interleaved(
            "run",
            self.rounds.run,
            &mut slots,
            |round, index, samples| {
                let Some(rt) = self.runtimes.get(index) else {
                    let floor = self.floor.context("no floor program")?;
                    samples.push(self.floor_once(floor, round)?);
                    return Ok(());
                };
                let id = format!("bc-{}-run-{round}", rt.name);
                guard.add(rt, &id);
                let outcome = rt.must(&[
                    "run".as_ref(),
                    "--bundle".as_ref(),
                    self.true_bundle.as_os_str(),
                    id.as_ref(),
                ])?;
                guard.done(rt, &id);
                samples.push(outcome.micros);
                Ok(())
            },
        );
        collect(names, slots)
    }

    fn floor_once(&self, floor: &Path, round: usize) -> Result<u64> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let name = format!("bc-floor-{round}");
        let args = [self.rootfs.as_os_str(), name.as_ref()];
        let outcome = runtime::timed(floor, &args, runtime::TIMEOUT)?;
        if !outcome.success() {
            bail!(
                "`{} {} {name}` failed ({}): {}",
                floor.display(),
                self.rootfs.display(),
                outcome.describe_status(),
                outcome.stderr.trim()
            );
        }
        Ok(outcome.micros)
    }

    /// 2. create → start → wait for the init to exit → delete, each step timed.
    pub fn lifecycle(&self) -> PerRuntime<Lifecycle> {
        let guard = Guard::new();
        let mut slots: Vec<Result<Lifecycle, String>> = self.fresh_slots();
        interleaved(
            "lifecycle",
            self.rounds.lifecycle,
            &mut slots,
            |round, index, data| {
                let rt = self.runtimes[index];
                let id = format!("bc-{}-life-{round}", rt.name);
                let pid_file = self.pid_file(&id);
                guard.add(rt, &id);
                let create = rt.must(&[
                    "create".as_ref(),
                    "--bundle".as_ref(),
                    self.true_bundle.as_os_str(),
                    "--pid-file".as_ref(),
                    pid_file.as_os_str(),
                    id.as_ref(),
                ])?;
                let pid = host::read_pid(&pid_file)?;
                let _ = std::fs::remove_file(&pid_file);
                // Opened before start so the exit cannot be missed; the init is not our child.
                let pidfd = runtime::pidfd_open(pid)?;
                let start = rt.must(&["start", &id])?;
                let waited = Instant::now();
                if let Some(pidfd) = &pidfd {
                    if !runtime::poll_readable(pidfd, runtime::TIMEOUT)? {
                        bail!(
                            "{id}: init {pid} still running {} s after start",
                            runtime::TIMEOUT.as_secs()
                        );
                    }
                }
                let wait = waited.elapsed().as_micros() as u64;
                let delete = rt.must(&["delete", &id])?;
                guard.done(rt, &id);
                data.create.push(create.micros);
                data.start.push(start.micros);
                data.wait.push(wait);
                data.delete.push(delete.micros);
                data.total
                    .push(create.micros + start.micros + wait + delete.micros);
                Ok(())
            },
        );
        collect(self.names(), slots)
    }

    /// 3. `exec ID /bin/true` in one sleeping container per runtime.
    pub fn exec(&self) -> PerRuntime<Vec<u64>> {
        let guard = Guard::new();
        let ids: Vec<String> = self
            .runtimes
            .iter()
            .map(|rt| format!("bc-{}-exec", rt.name))
            .collect();
        let mut slots: Vec<Result<Vec<u64>, String>> = self
            .runtimes
            .iter()
            .zip(&ids)
            .map(|(rt, id)| {
                self.start_sleeper(&guard, rt, id)
                    .map(|()| Vec::new())
                    .map_err(|e| format!("{e:#}"))
            })
            .collect();
        interleaved("exec", self.rounds.exec, &mut slots, |_, index, samples| {
            let outcome = self.runtimes[index].must(&["exec", &ids[index], "/bin/true"])?;
            samples.push(outcome.micros);
            Ok(())
        });
        self.stop_all(&guard, &mut slots, |index| vec![ids[index].clone()]);
        collect(self.names(), slots)
    }

    /// 10. `checkpoint` of a sleeping container into a fresh image directory, then `restore -d` of it under the same
    /// id, each timed; CRIU is the first `criu` on PATH for every runtime (the Makefile puts its wrapper there).
    /// Only hull and runc take part: they drive the same CRIU binary the same way (`criu swrk`).
    pub fn checkpoint(&self) -> PerRuntime<Checkpoint> {
        let guard = Guard::new();
        let mut slots: Vec<Result<Checkpoint, String>> = self
            .runtimes
            .iter()
            .map(|rt| match rt.name.as_str() {
                "hull" | "runc" => Ok(Checkpoint::default()),
                _ => Err("skipped: checkpoint is compared between hull and runc".to_owned()),
            })
            .collect();
        interleaved(
            "checkpoint",
            self.rounds.checkpoint,
            &mut slots,
            |round, index, data| {
                let rt = self.runtimes[index];
                let id = format!("bc-{}-ckpt-{round}", rt.name);
                let images = self.work.join("checkpoints").join(&id);
                self.start_sleeper(&guard, rt, &id)?;
                let checkpoint = rt.must(&[
                    "checkpoint".as_ref(),
                    "--image-path".as_ref(),
                    images.as_os_str(),
                    id.as_ref(),
                ])?;
                let restore = rt.must(&[
                    "restore".as_ref(),
                    "-d".as_ref(),
                    "--bundle".as_ref(),
                    self.sleep_bundle.as_os_str(),
                    "--image-path".as_ref(),
                    images.as_os_str(),
                    id.as_ref(),
                ])?;
                self.stop(&guard, rt, &id)?;
                std::fs::remove_dir_all(&images)
                    .with_context(|| format!("remove {}", images.display()))?;
                data.checkpoint.push(checkpoint.micros);
                data.restore.push(restore.micros);
                Ok(())
            },
        );
        collect(self.names(), slots)
    }

    /// Stops the given containers of each runtime whose slot is still Ok; a failure fails the slot.
    fn stop_all<T>(
        &self,
        guard: &Guard<'a>,
        slots: &mut [Result<T, String>],
        ids: impl Fn(usize) -> Vec<String>,
    ) {
        for (index, slot) in slots.iter_mut().enumerate() {
            if slot.is_err() {
                continue;
            }
            let rt = self.runtimes[index];
            for id in ids(index) {
                if let Err(err) = self.stop(guard, rt, &id) {
                    *slot = Err(format!("{err:#}"));
                    break;
                }
            }
        }
    }

    /// 4. `state ID` over many sleeping containers per runtime.
    pub fn state(&self) -> PerRuntime<Vec<u64>> {
        let guard = Guard::new();
        let count = self.rounds.state_containers;
        let ids = |index: usize| -> Vec<String> {
            (0..count)
                .map(|k| format!("bc-{}-state-{k}", self.runtimes[index].name))
                .collect()
        };
        let mut slots: Vec<Result<Vec<u64>, String>> = self.fresh_slots();
        interleaved("state setup", count, &mut slots, |k, index, _| {
            self.start_sleeper(&guard, self.runtimes[index], &ids(index)[k])
        });
        interleaved(
            "state",
            self.rounds.state,
            &mut slots,
            |round, index, samples| {
                let id = format!("bc-{}-state-{}", self.runtimes[index].name, round % count);
                let outcome = self.runtimes[index].must(&["state", &id])?;
                samples.push(outcome.micros);
                Ok(())
            },
        );
        self.stop_all(&guard, &mut slots, ids);
        collect(self.names(), slots)
    }

    /// The runtimes in the order the concurrency workloads use: hull first.
    fn hull_first(&self) -> Vec<&'a Runtime> {
        let mut order = self.runtimes.clone();
        order.sort_by_key(|rt| rt.name != "hull");
        order
    }

    /// 5. `concurrent`: n creates at once, then n starts, then n kill + delete -f.
    pub fn concurrent(&self) -> PerRuntime<Burst> {
        let n = self.rounds.concurrent;
        self.hull_first()
            .into_iter()
            .map(|rt| {
                eprintln!("bench: concurrent {}: {n} containers", rt.name);
                let result = self.burst(rt, "conc", n, true, 256 * 1024, runtime::TIMEOUT);
                (rt.name.clone(), result.map_err(|e| format!("{e:#}")))
            })
            .collect()
    }

    /// 5b. `scale`: N creates at once (all threads released together), then N kill + delete -f.
    pub fn scale(&self) -> PerRuntime<Burst> {
        let n = self.scale;
        self.hull_first()
            .into_iter()
            .filter(|rt| self.scale_runtimes.contains(&rt.name))
            .map(|rt| {
                eprintln!("bench: scale {}: {n} containers", rt.name);
                let result =
                    self.burst(rt, "scale", n, false, 128 * 1024, Duration::from_secs(600));
                (rt.name.clone(), result.map_err(|e| format!("{e:#}")))
            })
            .collect()
    }

    fn burst(
        &self,
        rt: &'a Runtime,
        tag: &str,
        n: usize,
        start: bool,
        stack: usize,
        timeout: Duration,
    ) -> Result<Burst> {
        let guard = Guard::new();
        let prefix = format!("bc-{}-{tag}-", rt.name);
        let ids: Vec<String> = (0..n).map(|k| format!("{prefix}{k}")).collect();
        for id in &ids {
            guard.add(rt, id);
        }
        let check = |outcome: Result<runtime::Outcome>, what: &str, id: &str| -> Result<()> {
            let outcome = outcome?;
            if !outcome.success() {
                bail!("{what} {id}: {}", outcome.first_line());
            }
            Ok(())
        };
        let bundle = self.sleep_bundle.as_os_str();
        let (create, created) = at_once(&ids, stack, |id| {
            let args = ["create".as_ref(), "--bundle".as_ref(), bundle, id.as_ref()];
            check(rt.invoke_with_timeout(&args, timeout), "create", id)
        });
        let created: Vec<String> = ids
            .iter()
            .zip(&created)
            .filter(|(_, ok)| **ok)
            .map(|(id, _)| id.clone())
            .collect();
        let start = start.then(|| {
            at_once(&created, stack, |id| {
                check(rt.invoke_with_timeout(&["start", id], timeout), "start", id)
            })
            .0
        });
        let (kill_delete, deleted) = at_once(&created, stack, |id| {
            let killed = check(
                rt.invoke_with_timeout(&["kill", id, "KILL"], timeout),
                "kill",
                id,
            );
            check(
                rt.invoke_with_timeout(&["delete", "-f", id], timeout),
                "delete -f",
                id,
            )?;
            killed
        });
        for (id, _) in created.iter().zip(&deleted).filter(|(_, ok)| **ok) {
            guard.done(rt, id);
        }
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        // Leftovers are looked for before the guard cleans up after failed creates: a create
        // that fails should not leave anything either.
        let leftovers = Leftovers {
            state: host::entries(&rt.root),
            cgroups: host::cgroups_named(&prefix, 6)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        };
        // Then the failed creates are deleted and what is still there removed (empty cgroups
        // that the runtime failed to remove).
        guard.cleanup();
        for cgroup in leftovers
            .cgroups
            .iter()
            .map(Path::new)
            .filter(|p| p.exists())
        {
            if let Err(err) = host::remove_cgroup(cgroup) {
                eprintln!("bench: remove leftover cgroup {}: {err}", cgroup.display());
            }
        }
        Ok(Burst {
            containers: n,
            create,
            start,
            kill_delete,
            leftovers,
        })
    }

    /// 6. Peak RSS of `create`, and PSS of parked (created, not started) containers.
    pub fn memory(&self) -> PerRuntime<Memory> {
        let guard = Guard::new();
        let mut slots: Vec<Result<Memory, String>> = self.fresh_slots();
        interleaved(
            "memory rss",
            self.rounds.rss,
            &mut slots,
            |round, index, data| {
                let rt = self.runtimes[index];
                let id = format!("bc-{}-rss-{round}", rt.name);
                guard.add(rt, &id);
                let args = [
                    "create".as_ref(),
                    "--bundle".as_ref(),
                    self.true_bundle.as_os_str(),
                    id.as_ref(),
                ];
                let report = self.work.join("rss-report");
                data.create_maxrss_kib.push(rt.peak_rss(&args, &report)?);
                rt.must(&["delete", "-f", &id])?;
                guard.done(rt, &id);
                Ok(())
            },
        );
        for (index, slot) in slots.iter_mut().enumerate() {
            if let Ok(data) = slot {
                if let Err(err) = self.parked(&guard, self.runtimes[index], data) {
                    *slot = Err(format!("{err:#}"));
                }
            }
        }
        collect(self.names(), slots)
    }

    fn parked(&self, guard: &Guard<'a>, rt: &'a Runtime, data: &mut Memory) -> Result<()> {
        let count = self.rounds.parked;
        let before: HashSet<i32> = host::pids().into_iter().collect();
        let ids: Vec<String> = (0..count)
            .map(|k| format!("bc-{}-park-{k}", rt.name))
            .collect();
        let mut inits = HashSet::new();
        let progress = Progress::new(&format!("memory parked {}", rt.name), count);
        for (k, id) in ids.iter().enumerate() {
            progress.tick(k + 1);
            let pid_file = self.pid_file(id);
            guard.add(rt, id);
            rt.must(&[
                "create".as_ref(),
                "--bundle".as_ref(),
                self.true_bundle.as_os_str(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                id.as_ref(),
            ])?;
            inits.insert(host::read_pid(&pid_file)?);
            let _ = std::fs::remove_file(&pid_file);
        }
        progress.finish();
        for pid in &inits {
            data.parked_pss_kib.push(host::pss_kib(*pid)?);
        }
        data.other_new_processes = host::pids()
            .into_iter()
            .filter(|pid| !before.contains(pid) && !inits.contains(pid))
            .count();
        for id in &ids {
            rt.must(&["delete", "-f", id])?;
            guard.done(rt, id);
        }
        Ok(())
    }

    /// 7. The smallest memory limit under which `run /bin/true` succeeds.
    pub fn memlimit(&self) -> PerRuntime<MemLimit> {
        self.runtimes
            .iter()
            .map(|rt| {
                let result = self.memlimit_of(rt).map_err(|e| format!("{e:#}"));
                (rt.name.clone(), result)
            })
            .collect()
    }

    fn memlimit_of(&self, rt: &'a Runtime) -> Result<MemLimit> {
        const STEP_KIB: u64 = 64;
        const MAX_STEPS: u64 = 1024; // 64 MiB
        let guard = Guard::new();
        let dir = self.work.join(format!("memlimit-{}", rt.name));
        let mut result = MemLimit {
            swap: true,
            ..MemLimit::default()
        };
        let mut serial = 0;
        let mut probe = |kib: u64, swap: bool, result: &mut MemLimit| -> Result<bool> {
            let bytes = kib * 1024;
            let memory = if swap {
                json!({"limit": bytes, "swap": bytes})
            } else {
                json!({"limit": bytes})
            };
            bundle::write(&dir, self.base, &["/bin/true"], Some(memory))?;
            serial += 1;
            let id = format!("bc-{}-mem-{serial}", rt.name);
            guard.add(rt, &id);
            let args = [
                "run".as_ref(),
                "--bundle".as_ref(),
                dir.as_os_str(),
                id.as_ref(),
            ];
            let (ok, why) = match rt.invoke_with_timeout(&args, Duration::from_secs(30)) {
                Ok(outcome) if outcome.success() => (true, String::new()),
                Ok(outcome) => (false, outcome.first_line()),
                Err(_) if INTERRUPTED.load(Ordering::Relaxed) => bail!("interrupted"),
                Err(err) => (false, format!("{err:#}")),
            };
            if ok {
                guard.done(rt, &id);
            } else {
                rt.force_delete(&id);
                guard.done(rt, &id);
            }
            eprintln!(
                "bench: memlimit {} {kib} KiB{}: {}",
                rt.name,
                if swap { "" } else { " (no swap)" },
                if ok { "ok" } else { "failed" }
            );
            result.probes.push((kib, ok, why));
            Ok(ok)
        };
        // Swap accounting may be missing: then setting memory.swap fails and is left out.
        if !probe(STEP_KIB * MAX_STEPS, true, &mut result)? {
            result.swap = false;
            if !probe(STEP_KIB * MAX_STEPS, false, &mut result)? {
                return Ok(result);
            }
        }
        let swap = result.swap;
        let (mut bad, mut good) = (0, MAX_STEPS);
        if probe(STEP_KIB, swap, &mut result)? {
            good = 1;
        } else {
            bad = 1;
        }
        while good - bad > 1 {
            let mid = (bad + good) / 2;
            if probe(mid * STEP_KIB, swap, &mut result)? {
                good = mid;
            } else {
                bad = mid;
            }
        }
        result.smallest_kib = Some(good * STEP_KIB);
        result.works_512_kib = match result.probes.iter().find(|(kib, _, _)| *kib == 512) {
            Some((_, ok, _)) => *ok,
            None => probe(512, swap, &mut result)?,
        };
        Ok(result)
    }

    /// 8. Binary size and whether it is stripped.
    pub fn size(&self) -> PerRuntime<Size> {
        self.runtimes
            .iter()
            .map(|rt| {
                let size = || -> Result<Size> {
                    let resolved = rt
                        .path
                        .canonicalize()
                        .with_context(|| format!("resolve {}", rt.path.display()))?;
                    let bytes = std::fs::metadata(&resolved)
                        .with_context(|| format!("stat {}", resolved.display()))?
                        .len();
                    let stripped = host::stripped(&resolved)?;
                    Ok(Size {
                        resolved,
                        bytes,
                        stripped,
                    })
                };
                (rt.name.clone(), size().map_err(|e| format!("{e:#}")))
            })
            .collect()
    }
}

/// Runs `op(id)` for every id, each in its own thread, all released at the same moment; returns
/// the wall time until all returned with the failures, and which ids succeeded.
fn at_once(
    ids: &[String],
    stack: usize,
    op: impl Fn(&str) -> Result<()> + Sync,
) -> (Phase, Vec<bool>) {
    let gate = RwLock::new(());
    let closed = gate
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let op = &op;
    let gate_ref = &gate;
    let (wall_us, outcomes) = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                std::thread::Builder::new()
                    .stack_size(stack)
                    .spawn_scoped(scope, move || {
                        drop(
                            gate_ref
                                .read()
                                .unwrap_or_else(|poisoned| poisoned.into_inner()),
                        );
                        op(id)
                    })
            })
            .collect();
        // Let the threads reach the gate before it opens.
        std::thread::sleep(Duration::from_millis(20 + ids.len() as u64 / 10));
        let started = Instant::now();
        drop(closed);
        let outcomes: Vec<Result<(), String>> = handles
            .into_iter()
            .map(|handle| match handle {
                Ok(handle) => match handle.join() {
                    Ok(result) => result.map_err(|e| format!("{e:#}")),
                    Err(_) => Err("thread panicked".to_owned()),
                },
                Err(err) => Err(format!("spawn thread: {err}")),
            })
            .collect();
        (started.elapsed().as_micros() as u64, outcomes)
    });
    let mut phase = Phase {
        wall_us,
        attempted: ids.len(),
        ..Phase::default()
    };
    for outcome in &outcomes {
        if let Err(err) = outcome {
            phase.failures += 1;
            if phase.errors.len() < 5 {
                phase.errors.push(err.clone());
            }
        }
    }
    (phase, outcomes.iter().map(Result::is_ok).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_rounds_are_a_fifth() {
        let quick = Rounds::new(true);
        assert_eq!(quick.run, 20);
        assert_eq!(quick.exec, 10);
        assert_eq!(quick.rss, 4);
        assert_eq!(Rounds::new(false).concurrent, 50);
    }

    #[test]
    fn at_once_counts_failures() {
        let ids: Vec<String> = (0..8).map(|k| k.to_string()).collect();
        let (phase, ok) = at_once(&ids, 64 * 1024, |id| {
            if id.parse::<u32>()? % 2 == 0 {
                Ok(())
            } else {
                bail!("odd {id}")
            }
        });
        assert_eq!(phase.attempted, 8);
        assert_eq!(phase.failures, 4);
        assert_eq!(ok, vec![true, false, true, false, true, false, true, false]);
    }
}
