//! Running one case: a temporary bundle and state directory, `<runtime> run`, a timeout, and
//! `<runtime> delete -f` whatever happened.

use crate::cases::{Case, Context, Expect};
use crate::check::Checks;
use crate::host::Host;
use crate::Options;
use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The config every case starts from; the runner sets `root` and the case edits the rest.
const TEMPLATE: &str = include_str!("../../../bundles/conformance/config.json");

/// Set in the runtime's own environment; it must not reach the container process.
pub const SENTINEL: &str = "HULL_CONFORMANCE_SENTINEL";

/// How long `<runtime> run` may take before the container is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `<runtime> delete -f` may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the output pipes to close after the runtime has been dealt with.
const PIPE_GRACE: Duration = Duration::from_secs(5);

/// How much of the runtime's output a failure message quotes.
const QUOTE_LIMIT: usize = 400;

/// What one runtime invocation did.
struct Outcome {
    /// The exit code; `None` when the runtime was killed by a signal or timed out.
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn describe(&self) -> String {
        let how = match (self.timed_out, self.code) {
            (true, _) => "a timeout".to_string(),
            (false, Some(code)) => format!("exit status {code}"),
            (false, None) => "death by a signal".to_string(),
        };
        format!("{how}; stderr: {:?}", shorten(self.stderr.trim()))
    }
}

/// Runs `case` in a fresh bundle; returns whether every check passed. Mismatches are printed.
pub fn run_case(options: &Options, host: &Host, case: &Case) -> Result<bool> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("hull-conformance-{}-", case.name))
        .tempdir()
        .context("creating a temporary directory")?;
    let (bundle, state, scratch) = (
        dir.path().join("bundle"),
        dir.path().join("state"),
        dir.path().join("scratch"),
    );
    for path in [&bundle, &state, &scratch] {
        fs::create_dir(path).with_context(|| format!("creating {}", path.display()))?;
    }
    let id = format!("conformance-{}-{}", std::process::id(), case.name);
    let context = Context {
        host,
        scratch: &scratch,
        id: &id,
    };

    let mut spec: Value =
        serde_json::from_str(TEMPLATE).context("parsing bundles/conformance/config.json")?;
    spec["root"] = json!({ "path": options.rootfs, "readonly": true });
    (case.configure)(&mut spec, &context)
        .with_context(|| format!("configuring case {}", case.name))?;
    let config = serde_json::to_string_pretty(&spec)?;
    fs::write(bundle.join("config.json"), config).context("writing config.json")?;

    let outcome = invoke(options, &state, &bundle, &id)?;
    let passed = judge(case, &spec, &context, &outcome);

    if options.keep {
        fs::write(dir.path().join("stdout"), &outcome.stdout)?;
        fs::write(dir.path().join("stderr"), &outcome.stderr)?;
        println!("kept {}: {}", case.name, dir.keep().display());
    }
    Ok(passed)
}

fn judge(case: &Case, spec: &Value, context: &Context, outcome: &Outcome) -> bool {
    let mut checks = Checks::new(case.name, Value::Null);
    match case.expect {
        Expect::Facts(verify) if outcome.code == Some(0) => {
            match serde_json::from_str(&outcome.stdout) {
                Ok(facts) => {
                    checks = Checks::new(case.name, facts);
                    verify(&mut checks, spec, context);
                }
                Err(err) => {
                    let seen = format!("{err}: {:?}", shorten(&outcome.stdout));
                    checks.fail("facts", "JSON from checker facts", seen);
                }
            }
        }
        Expect::Facts(_) => checks.fail("runtime", "exit status 0", outcome.describe()),
        Expect::Exit(code) => {
            if outcome.code != Some(code) {
                let expected = format!("exit status {code} (the process's own)");
                checks.fail("runtime", expected, outcome.describe());
            }
        }
        Expect::Rejected(verify) => {
            if outcome.timed_out || outcome.code == Some(0) {
                let expected = "the config to be refused (non-zero exit)";
                checks.fail("runtime", expected, outcome.describe());
            }
            if !outcome.stdout.is_empty() {
                let seen = format!("it printed {:?}", shorten(&outcome.stdout));
                checks.fail("process", "not to run", seen);
            }
            verify(&mut checks, spec, context);
        }
    }
    checks.passed()
}

/// `<runtime> --root STATE run --bundle BUNDLE ID`, then `<runtime> --root STATE delete -f ID`.
fn invoke(options: &Options, state: &Path, bundle: &Path, id: &str) -> Result<Outcome> {
    let mut run = Command::new(&options.runtime);
    run.arg("--root")
        .arg(state)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(id);
    run.env(SENTINEL, "leaked")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = run
        .spawn()
        .with_context(|| format!("starting {}", options.runtime.display()))?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let status = wait(&mut child, RUN_TIMEOUT)?;
    if status.is_none() {
        child.kill().ok();
        child.wait()?;
    }
    delete(options, state, id)?;
    Ok(Outcome {
        code: status.and_then(|status| status.code()),
        timed_out: status.is_none(),
        stdout: stdout.recv_timeout(PIPE_GRACE).unwrap_or_default(),
        stderr: stderr.recv_timeout(PIPE_GRACE).unwrap_or_default(),
    })
}

/// `<runtime> delete -f ID`, which also kills a container left running. Its complaint about a
/// container that `run` has already removed is expected and ignored.
fn delete(options: &Options, state: &Path, id: &str) -> Result<()> {
    let mut child = Command::new(&options.runtime)
        .arg("--root")
        .arg(state)
        .args(["delete", "-f", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} delete", options.runtime.display()))?;
    if wait(&mut child, DELETE_TIMEOUT)?.is_none() {
        child.kill().ok();
        child.wait()?;
        println!(
            "WARN {} delete -f {id} timed out",
            options.runtime.display()
        );
    }
    Ok(())
}

/// Waits for `child` until `timeout`; `None` when it is still running then.
fn wait(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a pipe to its end on a thread; a container process that outlives the runtime may keep
/// it open, so the caller waits for the result only for a while.
fn collect(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).ok();
            sender
                .send(String::from_utf8_lossy(&bytes).into_owned())
                .ok();
        });
    }
    receiver
}

/// The start of `text`, marked when cut, for failure messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
