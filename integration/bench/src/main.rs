//! `bench` compares OCI runtimes that take runc's command line on the same busybox bundle.
//!
//!     bench --rootfs DIR --runtime hull=PATH --runtime runc=PATH [--runtime crun=PATH]
//!           [--floor PATH] [--config TEMPLATE] [--out FILE.json] [--markdown FILE.md]
//!           [--quick] [--scale N] [--scale-runtimes A,B] [--only W1,W2] [--targets] [--enforce]
//!           [--guard-run RATIO] [--systemd-cgroup]
//!
//! Workloads: run, lifecycle, exec, state, concurrent, scale (with --scale N), memory, memlimit,
//! size, checkpoint (hull and runc, with the first `criu` on PATH). Timed loops interleave the runtimes round by
//! round. Each runtime gets its own `--root` under a temp dir; a runtime whose probe (`run` of /bin/true) fails is reported as skipped. With
//! `--systemd-cgroup` every runtime gets that global flag (its bundles name no cgroupsPath, so each makes its default
//! transient scope through systemd): the path engines take on a systemd host.
//!
//! Exit status: 0; 1 when a measured runtime failed a command that must succeed (failures of the
//! concurrent and scale bursts are counted, not fatal); 2 for usage or setup errors; 3 when
//! --enforce is given and a target was missed; 4 when --guard-run RATIO is given and hull's median `run` took more
//! than RATIO times runc's (the speed regression guard of `make test`); 130 when interrupted.

mod bundle;
mod host;
mod report;
mod runtime;
mod stats;
mod workloads;

use anyhow::{bail, Context, Result};
use runtime::{Runtime, INTERRUPTED};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::Instant;
use workloads::{Bench, Results, Rounds, WORKLOADS};

const USAGE: &str =
    "usage: bench --rootfs DIR --runtime hull=PATH --runtime runc=PATH [--runtime crun=PATH]
             [--floor PATH] [--config TEMPLATE] [--out FILE.json] [--markdown FILE.md] [--quick]
             [--scale N] [--scale-runtimes A,B] [--only W1,W2] [--targets] [--enforce]
             [--guard-run RATIO] [--systemd-cgroup]
workloads (--only): run, lifecycle, exec, state, concurrent, scale, memory, memlimit, size, checkpoint";

/// Command-line options.
#[derive(Debug)]
pub struct Options {
    /// The busybox root filesystem every bundle uses read-only.
    pub rootfs: PathBuf,
    /// `NAME=PATH` pairs in command-line order.
    pub runtimes: Vec<(String, PathBuf)>,
    /// `PATH ROOTFS NAME`: the same kernel work as the bundle without a runtime.
    pub floor: Option<PathBuf>,
    /// The config template (default bundles/demo/config.json).
    pub config: PathBuf,
    pub out: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// A fifth of the default rounds.
    pub quick: bool,
    /// Containers created at once by the scale workload (0: off).
    pub scale: usize,
    pub scale_runtimes: Vec<String>,
    /// Workloads to run (default: all).
    pub only: Vec<String>,
    /// Print the target checks.
    pub targets: bool,
    /// Exit 3 when a target is missed (implies --targets).
    pub enforce: bool,
    /// Exit 4 when hull's median `run` exceeds this many times runc's.
    pub guard_run: Option<f64>,
    /// Run every runtime with `--systemd-cgroup`.
    pub systemd_cgroup: bool,
}

fn main() -> ExitCode {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if raw.first().is_some_and(|a| a == runtime::RSS_HELPER) {
        runtime::rss_helper(&raw[1..]);
    }
    match parse_options(std::env::args().skip(1)).and_then(|options| bench(&options)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let mut options = Options {
        rootfs: PathBuf::new(),
        runtimes: Vec::new(),
        floor: None,
        config: PathBuf::from("bundles/demo/config.json"),
        out: None,
        markdown: None,
        quick: false,
        scale: 0,
        scale_runtimes: vec!["hull".into()],
        only: WORKLOADS.iter().map(|w| w.to_string()).collect(),
        targets: false,
        enforce: false,
        guard_run: None,
        systemd_cgroup: false,
    };
    let mut rootfs = None;
    let list = |value: String| -> Vec<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--rootfs" => rootfs = Some(PathBuf::from(value()?)),
            "--runtime" => {
                let pair = value()?;
                let (name, path) = pair
                    .split_once('=')
                    .with_context(|| format!("--runtime takes NAME=PATH, not {pair:?}"))?;
                let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if name.is_empty() || !name.chars().all(valid) || name == "floor" {
                    bail!("runtime name {name:?}: use letters, digits, - and _ (and not `floor`)");
                }
                if options.runtimes.iter().any(|(known, _)| known == name) {
                    bail!("runtime {name} given twice");
                }
                options
                    .runtimes
                    .push((name.to_owned(), PathBuf::from(path)));
            }
            "--floor" => options.floor = Some(PathBuf::from(value()?)),
            "--config" => options.config = PathBuf::from(value()?),
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--markdown" => options.markdown = Some(PathBuf::from(value()?)),
            "--quick" => options.quick = true,
            "--systemd-cgroup" => options.systemd_cgroup = true,
            "--scale" => {
                let n = value()?;
                options.scale = n
                    .parse()
                    .with_context(|| format!("--scale takes a number, not {n:?}"))?;
            }
            "--scale-runtimes" => options.scale_runtimes = list(value()?),
            "--only" => {
                options.only = list(value()?);
                if let Some(unknown) = options
                    .only
                    .iter()
                    .find(|w| !WORKLOADS.contains(&w.as_str()))
                {
                    bail!("unknown workload {unknown:?}\n{USAGE}");
                }
            }
            "--targets" => options.targets = true,
            "--enforce" => {
                options.enforce = true;
                options.targets = true;
            }
            "--guard-run" => {
                let ratio = value()?;
                options.guard_run = Some(
                    ratio
                        .parse()
                        .with_context(|| format!("--guard-run takes a ratio, not {ratio:?}"))?,
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    options.rootfs = rootfs.with_context(|| format!("--rootfs is required\n{USAGE}"))?;
    if options.runtimes.is_empty() {
        bail!("at least one --runtime NAME=PATH is required\n{USAGE}");
    }
    Ok(options)
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM stop the measurements; the containers created so far are still deleted.
fn install_signal_handlers() {
    // SAFETY: sigaction is a plain-old-data struct, so zeroed is a valid value (no flags, empty
    // handler); sigemptyset and sigaction only touch action, which we own, and a null oldact is
    // allowed. on_signal is an extern "C" fn(c_int) that does a single atomic store, which is
    // async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

/// The bench's temp dir (bundles, state dirs, pid files), removed on drop.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            eprintln!("bench: remove {}: {err}", self.0.display());
        }
    }
}

/// The first line of `PATH --version`.
fn version(path: &Path) -> String {
    match Command::new(path).arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        Err(err) => format!("unknown ({err})"),
    }
}

/// Why the runtime cannot run here, if one `run` of /bin/true fails.
fn probe(rt: &Runtime, bundle: &Path) -> Option<String> {
    let id = format!("bc-{}-probe", rt.name);
    match rt.invoke(&[
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        id.as_ref(),
    ]) {
        Ok(outcome) if outcome.success() => None,
        Ok(outcome) => {
            rt.force_delete(&id);
            Some(outcome.first_line())
        }
        // The cause without the command line, e.g. `spawn /usr/bin/crun: No such file or directory`.
        Err(err) => {
            let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
            let reason = if causes.is_empty() {
                err.to_string()
            } else {
                causes.join(": ")
            };
            Some(reason.lines().next().unwrap_or("").to_owned())
        }
    }
}

fn check_rootfs(rootfs: &Path) -> Result<PathBuf> {
    let rootfs = rootfs
        .canonicalize()
        .with_context(|| format!("rootfs {}", rootfs.display()))?;
    for program in ["bin/true", "bin/sleep"] {
        // Not followed: busybox links may be absolute, meaningful only inside the rootfs.
        std::fs::symlink_metadata(rootfs.join(program))
            .with_context(|| format!("rootfs {} has no /{program}", rootfs.display()))?;
    }
    Ok(rootfs)
}

fn bench(options: &Options) -> Result<ExitCode> {
    let began = Instant::now();
    let rootfs = check_rootfs(&options.rootfs)?;
    let base = bundle::base_config(&options.config, &rootfs).with_context(|| {
        "the config template is bundles/demo/config.json relative to the current directory, or --config"
    })?;
    host::raise_nofile();
    install_signal_handlers();
    let work = WorkDir(host::make_temp_dir("bench")?);
    let pids = work.0.join("pids");
    std::fs::create_dir_all(&pids).with_context(|| format!("create {}", pids.display()))?;
    let true_bundle = work.0.join("bundle-true");
    let sleep_bundle = work.0.join("bundle-sleep");
    bundle::write(&true_bundle, &base, &["/bin/true"], None)?;
    bundle::write(&sleep_bundle, &base, &["sleep", "1000000"], None)?;

    let mut notes = Vec::new();
    let mut runtimes: Vec<Runtime> = options
        .runtimes
        .iter()
        .map(|(name, path)| Runtime {
            name: name.clone(),
            path: path.clone(),
            root: work.0.join(format!("state-{name}")),
            version: version(path),
            skipped: None,
            systemd_cgroup: options.systemd_cgroup,
        })
        .collect();
    if options.systemd_cgroup {
        notes.push("cgroup driver: systemd (every runtime ran with --systemd-cgroup)".to_owned());
    }
    for rt in &mut runtimes {
        rt.skipped = probe(rt, &true_bundle);
        match &rt.skipped {
            Some(why) => {
                eprintln!("bench: {} skipped: {why}", rt.name);
                notes.push(format!("{} skipped: {why}", rt.name));
            }
            None => eprintln!(
                "bench: {} = {} ({})",
                rt.name,
                rt.path.display(),
                rt.version
            ),
        }
    }
    let floor = match &options.floor {
        Some(path) if path.is_file() => Some(
            path.canonicalize()
                .with_context(|| format!("{}", path.display()))?,
        ),
        Some(path) => {
            notes.push(format!(
                "floor {} does not exist: not measured",
                path.display()
            ));
            None
        }
        None => None,
    };

    let rounds = Rounds::new(options.quick);
    let bench = Bench {
        runtimes: runtimes.iter().filter(|rt| rt.skipped.is_none()).collect(),
        work: &work.0,
        rootfs: &rootfs,
        base: &base,
        true_bundle,
        sleep_bundle,
        floor: floor.as_deref(),
        rounds: &rounds,
        scale: options.scale,
        scale_runtimes: &options.scale_runtimes,
    };
    let results = run_workloads(&bench, options);
    drop(bench);

    let errors = errors(&results);
    notes.extend(
        errors
            .iter()
            .map(|e| format!("FAILED {}", e.lines().next().unwrap_or(""))),
    );
    let report = report::Report {
        runtimes: &runtimes,
        floor: floor.is_some(),
        results: &results,
        rounds: &rounds,
        scale: options.scale,
        machine: &host::machine(),
        date: host::now_rfc3339(),
        notes,
    };
    let targets = options.targets.then(|| report.targets());
    let mut markdown = report.markdown();
    if let Some(targets) = &targets {
        markdown.push('\n');
        markdown.push_str(&report::targets_markdown(targets));
    }
    print!("{markdown}");
    if let Some(path) = &options.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &options.out {
        let doc = report::json(&report, targets.as_deref());
        let text = serde_json::to_string_pretty(&doc).context("serialize results")?;
        std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    }
    for error in &errors {
        eprintln!("bench: FAILED {error}");
    }
    eprintln!("bench: done in {:.1} s", began.elapsed().as_secs_f64());
    drop(work);
    let guard_failed = match options.guard_run {
        Some(max) => !speed_guard(&report, max),
        None => false,
    };
    Ok(if INTERRUPTED.load(Ordering::Relaxed) {
        ExitCode::from(130)
    } else if !errors.is_empty() {
        ExitCode::from(1)
    } else if options.enforce && targets.iter().flatten().any(|t| t.met == Some(false)) {
        ExitCode::from(3)
    } else if guard_failed {
        ExitCode::from(4)
    } else {
        ExitCode::SUCCESS
    })
}

/// The speed regression guard: hull's median `run` within `max` times runc's, measured in the same session.
fn speed_guard(report: &report::Report, max: f64) -> bool {
    let median = |name: &str| report.median_of("run /bin/true", name);
    let (Some(hull), Some(runc)) = (median("hull"), median("runc")) else {
        println!("FAIL speed guard: expected `run` medians for hull and runc, one is missing");
        return false;
    };
    let ratio = hull / runc;
    if ratio > max {
        println!(
            "FAIL speed guard: expected hull run /bin/true <= {max:.2}x runc, saw {ratio:.2}x ({hull:.2} ms vs {runc:.2} ms)"
        );
        return false;
    }
    println!("ok   speed guard: hull run /bin/true is {ratio:.2}x runc (limit {max:.2}x)");
    true
}

fn run_workloads(bench: &Bench, options: &Options) -> Results {
    let mut results = Results::default();
    let wanted = |name: &str| options.only.iter().any(|w| w == name);
    let timed = |name: &str| {
        let wanted = wanted(name) && !INTERRUPTED.load(Ordering::Relaxed);
        if wanted {
            eprintln!("bench: == {name}");
        }
        wanted
    };
    if timed("run") {
        results.run = Some(bench.run());
    }
    if timed("lifecycle") {
        results.lifecycle = Some(bench.lifecycle());
    }
    if timed("exec") {
        results.exec = Some(bench.exec());
    }
    if timed("state") {
        results.state = Some(bench.state());
    }
    if timed("concurrent") {
        results.concurrent = Some(bench.concurrent());
    }
    if options.scale > 0 && timed("scale") {
        results.scale = Some(bench.scale());
    }
    if timed("memory") {
        results.memory = Some(bench.memory());
    }
    if timed("memlimit") {
        results.memlimit = Some(bench.memlimit());
    }
    if timed("size") {
        results.size = Some(bench.size());
    }
    if timed("checkpoint") {
        results.checkpoint = Some(bench.checkpoint());
    }
    results
}

/// `workload runtime: error` for every runtime that failed a workload.
fn errors(results: &Results) -> Vec<String> {
    fn collect<T>(
        out: &mut Vec<String>,
        workload: &str,
        results: &Option<workloads::PerRuntime<T>>,
    ) {
        for (name, result) in results.iter().flatten() {
            if let Err(err) = result {
                out.push(format!("{workload} {name}: {err}"));
            }
        }
    }
    let mut out = Vec::new();
    collect(&mut out, "run", &results.run);
    collect(&mut out, "lifecycle", &results.lifecycle);
    collect(&mut out, "exec", &results.exec);
    collect(&mut out, "state", &results.state);
    collect(&mut out, "concurrent", &results.concurrent);
    collect(&mut out, "scale", &results.scale);
    collect(&mut out, "memory", &results.memory);
    collect(&mut out, "memlimit", &results.memlimit);
    collect(&mut out, "size", &results.size);
    collect(&mut out, "checkpoint", &results.checkpoint);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        parse_options(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_runtimes_in_order() {
        let o = parse(&[
            "--rootfs",
            "/r",
            "--runtime",
            "hull=/h",
            "--runtime",
            "runc=/usr/sbin/runc",
            "--quick",
        ])
        .unwrap();
        assert_eq!(o.runtimes[0], ("hull".to_owned(), PathBuf::from("/h")));
        assert_eq!(o.runtimes[1].0, "runc");
        assert!(o.quick);
        assert_eq!(o.only.len(), WORKLOADS.len());
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse(&["--runtime", "hull=/h"]).is_err());
        assert!(parse(&["--rootfs", "/r"]).is_err());
        assert!(parse(&["--rootfs", "/r", "--runtime", "hull"]).is_err());
        assert!(parse(&["--rootfs", "/r", "--runtime", "a/b=/x"]).is_err());
        assert!(parse(&["--rootfs", "/r", "--runtime", "h=/x", "--only", "nope"]).is_err());
        assert!(parse(&["--rootfs", "/r", "--runtime", "h=/x", "--runtime", "h=/y"]).is_err());
    }

    #[test]
    fn enforce_implies_targets() {
        let o = parse(&[
            "--rootfs",
            "/r",
            "--runtime",
            "h=/x",
            "--enforce",
            "--scale",
            "1000",
        ])
        .unwrap();
        assert!(o.targets && o.enforce);
        assert_eq!(o.scale, 1000);
    }
}
