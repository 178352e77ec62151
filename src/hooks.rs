//! Lifecycle hooks (runtime-spec config.md, "POSIX-platform Hooks"). Each hook is a program run with its `args`
//! (the first is its argv[0]) and `env` (hull's environment when unset, as Go's exec gives runc's hooks), the
//! container state JSON on stdin, and its output kept in anonymous files: a chatty hook never blocks, and nothing
//! of it reaches the caller's stdio (a `start` caller reading hull's stdout to EOF must not wait for a hook). A hook
//! past its `timeout` is SIGKILLed. Where each kind runs, and with which status, is [`Kind`]'s business; callers
//! pick [`run`] (the first failure stops the list and fails the operation) or [`run_warning`] (poststart, poststop:
//! a failure is a warning and the remaining hooks still run).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use oci_spec::runtime::{Hook, Hooks};

use crate::logger;
use crate::oci::SpecState;
use crate::signal;
use crate::sys;

/// The hook kinds, in the order the runtime spec runs them (and `features` lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Deprecated, still honoured: in the runtime namespace during `create`, just before createRuntime.
    Prestart,
    /// In the runtime namespace during `create`, after the mounts and before `pivot_root`.
    CreateRuntime,
    /// In the container's namespaces during `create`, after createRuntime and before `pivot_root`.
    CreateContainer,
    /// In the container, during `start`, just before the program's execve.
    StartContainer,
    /// In the runtime namespace, once the program runs, before `start` returns.
    Poststart,
    /// In the runtime namespace, at `delete`, once the container's resources are gone.
    Poststop,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The `status` a hook of this kind reads on stdin. prestart says "created" where runc says "creating": the
    /// runtime-tools `hooks_stdin` test requires it (prestart once ran at `start`), and crun does the same. The
    /// hooks that only exist since the create-time split keep runc's statuses.
    pub fn status(self) -> &'static str {
        match self {
            Kind::Prestart | Kind::StartContainer => "created",
            Kind::CreateRuntime | Kind::CreateContainer => "creating",
            Kind::Poststart => "running",
            Kind::Poststop => "stopped",
        }
    }

    /// This kind's hooks in `hooks`.
    pub fn list(self, hooks: Option<&Hooks>) -> &[Hook] {
        let Some(hooks) = hooks else {
            return &[];
        };
        let list = match self {
            #[allow(deprecated)]
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// Whether `hooks` has any hook of one of `kinds`.
pub fn any(hooks: Option<&Hooks>, kinds: &[Kind]) -> bool {
    kinds.iter().any(|kind| !kind.list(hooks).is_empty())
}

/// Check every hook: `path` absolute and `timeout` above zero, as the runtime spec requires.
pub fn validate(hooks: &Hooks) -> Result<()> {
    for kind in Kind::ALL {
        for (i, hook) in kind.list(Some(hooks)).iter().enumerate() {
            let what = || format!("hooks.{}[{i}]", kind.name());
            if !hook.path().is_absolute() {
                bail!("{}: path {} is not absolute", what(), hook.path().display());
            }
            if let Some(secs) = hook.timeout().filter(|secs| *secs <= 0) {
                bail!("{}: timeout must be greater than zero, not {secs}", what());
            }
        }
    }
    Ok(())
}

/// Run the `kind` hooks of `hooks` in order, each in `cwd` (inherited when `None`) with `state` (status set for
/// `kind`) on stdin; the first failure stops the list and is the error, worded as runc's
/// (`error running createRuntime hook #1: exit status 1, stdout: ..., stderr: ...`).
pub fn run(kind: Kind, hooks: Option<&Hooks>, state: SpecState, cwd: Option<&Path>) -> Result<()> {
    let list = kind.list(hooks);
    if list.is_empty() {
        return Ok(());
    }
    let input = state_json(kind, state)?;
    for (i, hook) in list.iter().enumerate() {
        run_one(hook, &input, cwd)
            .with_context(|| format!("error running {} hook #{i}", kind.name()))?;
    }
    Ok(())
}

/// Run every `kind` hook as [`run`] does, but a failure is logged as a warning and the next hook still runs (the
/// runtime spec's rule for poststart and poststop).
pub fn run_warning(kind: Kind, hooks: Option<&Hooks>, state: SpecState, cwd: Option<&Path>) {
    let list = kind.list(hooks);
    if list.is_empty() {
        return;
    }
    let input = match state_json(kind, state) {
        Ok(input) => input,
        Err(err) => return logger::log(logger::Level::Warning, &format!("{err:#}")),
    };
    for (i, hook) in list.iter().enumerate() {
        if let Err(err) = run_one(hook, &input, cwd) {
            let msg = format!("error running {} hook #{i}: {err:#}", kind.name());
            logger::log(logger::Level::Warning, &msg);
        }
    }
}

fn state_json(kind: Kind, state: SpecState) -> Result<Vec<u8>> {
    serde_json::to_vec(&SpecState {
        status: kind.status(),
        ..state
    })
    .context("encode the container state for hooks")
}

fn run_one(hook: &Hook, input: &[u8], cwd: Option<&Path>) -> Result<()> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if let Some((arg0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(arg0).args(rest);
    }
    if let Some(env) = hook.env().as_deref() {
        cmd.env_clear();
        for pair in env {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            cmd.env(key, value);
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut stdin = anonymous_file("hull-hook-state")?;
    stdin
        .write_all(input)
        .and_then(|()| stdin.rewind())
        .context("write the container state for a hook")?;
    let (stdout, stderr) = (
        anonymous_file("hull-hook-stdout")?,
        anonymous_file("hull-hook-stderr")?,
    );
    cmd.stdin(stdin)
        .stdout(stdout.try_clone().context("duplicate hook stdout")?)
        .stderr(stderr.try_clone().context("duplicate hook stderr")?);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("start {}", path.display()))?;
    let limit = hook
        .timeout()
        .map(|secs| Duration::from_secs(secs.max(1) as u64));
    let status = match limit {
        None => child.wait().context("wait for hook")?,
        Some(limit) => match wait_at_most(&mut child, limit)? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "hook ran past specified timeout of {:.1}s",
                    limit.as_secs_f64()
                );
            }
        },
    };
    if status.success() {
        return Ok(());
    }
    // Go's `ExitError` text, which runc's message carries.
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) if status.core_dumped() => {
            format!("signal: {} (core dumped)", signal::go_description(sig))
        }
        (None, Some(sig)) => format!("signal: {}", signal::go_description(sig)),
        _ => "failed".to_owned(),
    };
    Err(anyhow!(
        "{how}, stdout: {}, stderr: {}",
        read_back(stdout),
        read_back(stderr)
    ))
}

/// Wait for `child` until `limit` has passed: on a pidfd, which becomes readable when the child exits (kernels
/// before 5.3 have none: then the wait is a poll every 10 ms).
fn wait_at_most(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let pidfd = sys::pidfd_open(Pid::from_raw(child.id() as i32)).ok();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().context("wait for hook")? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let slice = match &pidfd {
            Some(_) => left,
            None => left.min(Duration::from_millis(10)),
        };
        let timeout = PollTimeout::try_from(slice).unwrap_or(PollTimeout::MAX);
        let mut fds: Vec<PollFd> = pidfd
            .iter()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("wait for hook"),
        }
    }
}

/// An anonymous, close-on-exec file (memfd) for a hook's stdin or output.
fn anonymous_file(name: &str) -> Result<File> {
    let name = std::ffi::CString::new(name).context("memfd name")?;
    // SAFETY: a valid NUL-terminated name and flags; on success the kernel returns a new fd we then own.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for a hook");
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_back(mut file: File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn hooks(value: serde_json::Value) -> Hooks {
        serde_json::from_value(value).unwrap()
    }

    fn state<'a>(annotations: &'a BTreeMap<String, String>) -> SpecState<'a> {
        SpecState {
            oci_version: "1.2.0",
            id: "c1",
            status: "ignored",
            pid: 42,
            bundle: Path::new("/b"),
            annotations,
        }
    }

    #[test]
    fn a_hook_gets_args_env_cwd_and_the_state_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "echo \"$(head -c 7 /proc/$$/cmdline) $0 $1 $GREETING $(pwd)\" > {0}; cat >> {0}",
            out.display()
        );
        let h = hooks(json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["my-hook", "-c", script, "zero", "one"],
            "env": ["GREETING=hi"]
        }]}));
        let annotations = BTreeMap::from([("a".to_owned(), "b".to_owned())]);
        run(
            Kind::CreateRuntime,
            Some(&h),
            state(&annotations),
            Some(Path::new("/tmp")),
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "my-hook zero one hi /tmp\n{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":42,\
             \"bundle\":\"/b\",\"annotations\":{\"a\":\"b\"}}"
        );
    }

    #[test]
    fn each_kind_tells_its_status() {
        let statuses: Vec<_> = Kind::ALL.iter().map(|k| (k.name(), k.status())).collect();
        assert_eq!(
            statuses,
            [
                ("prestart", "created"),
                ("createRuntime", "creating"),
                ("createContainer", "creating"),
                ("startContainer", "created"),
                ("poststart", "running"),
                ("poststop", "stopped"),
            ]
        );
    }

    #[test]
    fn the_first_failure_stops_the_list_and_names_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("third-ran");
        let h = hooks(json!({"prestart": [
            {"path": "/bin/true"},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo err >&2; exit 3"]},
            {"path": "/bin/touch", "args": ["touch", marker]}
        ]}));
        let empty = BTreeMap::new();
        let err = run(Kind::Prestart, Some(&h), state(&empty), None).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "error running prestart hook #1: exit status 3, stdout: out\n, stderr: err\n"
        );
        assert!(!marker.exists(), "a hook after the failing one ran");
        let missing = hooks(json!({"poststop": [{"path": "/nonexistent/hook"}]}));
        let err = run(Kind::Poststop, Some(&missing), state(&empty), None).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "error running poststop hook #0: start /nonexistent/hook: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn warnings_let_the_remaining_hooks_run() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("second-ran");
        let h = hooks(json!({"poststart": [
            {"path": "/bin/false"},
            {"path": "/bin/touch", "args": ["touch", marker]}
        ]}));
        let empty = BTreeMap::new();
        run_warning(Kind::Poststart, Some(&h), state(&empty), None);
        assert!(
            marker.exists(),
            "the hook after the failing one did not run"
        );
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let h = hooks(json!({"poststart": [
            {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}
        ]}));
        let empty = BTreeMap::new();
        let started = Instant::now();
        let err = run(Kind::Poststart, Some(&h), state(&empty), None).unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "killed after {took:?}"
        );
        assert_eq!(
            format!("{err:#}"),
            "error running poststart hook #0: hook ran past specified timeout of 1.0s"
        );
    }

    #[test]
    fn validation_wants_absolute_paths_and_positive_timeouts() {
        let relative = hooks(json!({"createContainer": [{"path": "/bin/true"}, {"path": "hook"}]}));
        assert_eq!(
            validate(&relative).unwrap_err().to_string(),
            "hooks.createContainer[1]: path hook is not absolute"
        );
        let zero = hooks(json!({"poststop": [{"path": "/bin/true", "timeout": 0}]}));
        assert_eq!(
            validate(&zero).unwrap_err().to_string(),
            "hooks.poststop[0]: timeout must be greater than zero, not 0"
        );
        let fine = hooks(json!({"prestart": [{"path": "/bin/true", "timeout": 5}]}));
        validate(&fine).unwrap();
    }
}
