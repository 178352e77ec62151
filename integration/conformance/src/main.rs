//! `conformance` runs `checker` in containers through an OCI runtime, one container per case,
//! and compares what `checker facts` saw inside with what the case configured.
//!
//!     conformance --runtime PATH --rootfs DIR [--filter SUBSTR] [--keep]
//!
//! Each failed check prints `FAIL <case>: <fact>: expected <X>, saw <Y>`; the last line is
//! `N passed, N failed` (with `, N skipped` when cases could not run here).

mod cases;
mod check;
mod host;
mod runner;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: conformance --runtime PATH --rootfs DIR [--filter SUBSTR] [--known-failures A,B] [--keep]";

/// Command-line options.
pub struct Options {
    /// The OCI runtime binary under test (runc, hull, ...).
    pub runtime: PathBuf,
    /// An assembled root filesystem that holds `/checker`; it is used read-only.
    pub rootfs: PathBuf,
    /// Runs only the cases whose name contains this.
    pub filter: Option<String>,
    /// Keeps each case's bundle, runtime state and output for inspection.
    pub keep: bool,
    /// Cases this runtime is known to fail (a documented bug of that runtime version): a failure is
    /// reported as `XFAIL` and counted as skipped, a pass as `XPASS`.
    pub known_failures: Vec<String>,
}

fn main() -> ExitCode {
    match parse_options(std::env::args().skip(1)).and_then(|options| run(&options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("conformance: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let (mut runtime, mut rootfs, mut filter, mut keep) = (None, None, None, false);
    let mut known_failures = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--runtime" => runtime = Some(PathBuf::from(value()?)),
            "--rootfs" => rootfs = Some(PathBuf::from(value()?)),
            "--filter" => filter = Some(value()?),
            "--keep" => keep = true,
            "--known-failures" => {
                known_failures = value()?.split(',').map(str::to_owned).collect();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let runtime = runtime.with_context(|| format!("--runtime is required\n{USAGE}"))?;
    let rootfs = rootfs.with_context(|| format!("--rootfs is required\n{USAGE}"))?;
    let rootfs = rootfs
        .canonicalize()
        .with_context(|| format!("rootfs {}", rootfs.display()))?;
    if !rootfs.join("checker").is_file() {
        bail!(
            "{} has no /checker: assemble it with {}",
            rootfs.display(),
            "bundles/mkrootfs.sh DIR integration/target/release/checker"
        );
    }
    Ok(Options {
        runtime,
        rootfs,
        filter,
        keep,
        known_failures,
    })
}

/// Runs the selected cases in order; returns whether none failed.
fn run(options: &Options) -> Result<bool> {
    let host = host::Host::observe(&options.rootfs, &options.runtime)?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let cases = cases::all();
    let selected = cases.iter().filter(|case| {
        options
            .filter
            .as_ref()
            .is_none_or(|filter| case.name.contains(filter.as_str()))
    });
    for case in selected {
        if let Some(reason) = (case.requires)(&host) {
            println!("SKIP {}: {reason}", case.name);
            skipped += 1;
            continue;
        }
        let known = options.known_failures.iter().any(|k| k == case.name);
        match (runner::run_case(options, &host, case)?, known) {
            (true, false) => {
                println!("ok   {}", case.name);
                passed += 1;
            }
            (true, true) => {
                println!("XPASS {}: listed as a known failure but passed", case.name);
                passed += 1;
            }
            (false, true) => {
                println!("XFAIL {}: known failure of this runtime", case.name);
                skipped += 1;
            }
            (false, false) => failed += 1,
        }
    }
    if skipped == 0 {
        println!("{passed} passed, {failed} failed");
    } else {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    Ok(failed == 0)
}
