//! Invoking a runtime (or the floor program), timing it, and cleaning up what it created.
//!
//! Every invocation gets stdin and stdout on /dev/null and stderr on a fresh memfd: `create` leaves a
//! parked process that keeps the stdio it inherited, so a pipe would never see EOF. The time is
//! taken with the monotonic clock around spawn + reap.
//!
//! Peak RSS is measured through `bench --rss-helper`: `ru_maxrss` keeps the largest RSS a process
//! had across exec, and a child spawned by the bench starts out with the bench's address space
//! (all of it with vfork, its anonymous pages with fork), so the bench's own RSS would be the
//! floor of every measurement. The helper is a fresh small exec of the bench that forks the
//! runtime and reports the child's `ru_maxrss`.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM: no new measured invocation starts, the cleanup still runs.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long one invocation may take before it is killed and counted as failed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The most of a child's stderr kept for error messages.
const STDERR_LIMIT: u64 = 16 * 1024;

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Wall time from spawn to reap.
    pub micros: u64,
    /// The raw wait status.
    pub status: i32,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    pub fn describe_status(&self) -> String {
        describe_status(self.status)
    }

    /// The first non-empty stderr line, or the exit status when stderr was empty.
    pub fn first_line(&self) -> String {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| self.describe_status())
    }
}

pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// Runs `program args...` and times it; an error only when it could not be spawned or reaped.
pub fn timed<S: AsRef<OsStr>>(program: &Path, args: &[S], timeout: Duration) -> Result<Outcome> {
    let stderr = memfd().context("memfd_create for stderr")?;
    let child_stderr = stderr.try_clone().context("dup stderr memfd")?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(child_stderr));
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("spawn {}", program.display()))?;
    let reaped = reap(child.id() as libc::pid_t, timeout);
    let micros = start.elapsed().as_micros() as u64;
    drop(command);
    drop(child);
    let (status, _) = reaped.with_context(|| format!("wait for {}", program.display()))?;
    Ok(Outcome {
        micros,
        status,
        stderr: read_all(stderr)?,
    })
}

fn memfd() -> Result<File> {
    // SAFETY: the name is a NUL-terminated C string literal with static lifetime.
    let fd = unsafe { libc::memfd_create(c"bench-stderr".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: fd is a fresh, valid descriptor from memfd_create that nothing else owns, so the
    // File can take sole ownership and close it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_all(mut file: File) -> Result<String> {
    file.seek(SeekFrom::Start(0))
        .context("rewind stderr memfd")?;
    let mut bytes = Vec::new();
    file.take(STDERR_LIMIT)
        .read_to_end(&mut bytes)
        .context("read stderr memfd")?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Waits for our child `pid` (at most `timeout`, then SIGKILL) and returns its wait status and
/// peak RSS in KiB.
fn reap(pid: libc::pid_t, timeout: Duration) -> Result<(i32, u64)> {
    // A pidfd gives the timeout; without one (kernel < 5.3) wait4 blocks.
    if let Some(pidfd) = pidfd_open(pid)? {
        if !poll_readable(&pidfd, timeout)? {
            // SAFETY: kill takes no pointers; pid is our own child and has not been reaped yet
            // (only the wait4 below reaps it), so the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = wait4(pid);
            bail!("timed out after {} s (killed)", timeout.as_secs());
        }
    }
    wait4(pid)
}

/// Waits for `pid` and returns its wait status and `ru_maxrss` (KiB).
pub fn wait4(pid: libc::pid_t) -> Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: libc::rusage is a plain-old-data C struct, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 only writes into status and usage, locals we own that outlive the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage.ru_maxrss.max(0) as u64));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
}

/// A pidfd for `pid`, or None when the process is already gone (or pidfds are unsupported).
pub fn pidfd_open(pid: libc::pid_t) -> Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes only integer arguments and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: fd is a fresh, valid descriptor just returned by pidfd_open (which always sets
        // O_CLOEXEC) and owned by nothing else, so OwnedFd can take sole ownership.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) | Some(libc::ENOSYS) => Ok(None),
        _ => Err(err).with_context(|| format!("pidfd_open({pid})")),
    }
}

/// Waits until the process behind `pidfd` has exited; false on timeout.
pub fn poll_readable(pidfd: &OwnedFd, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: pfd is one initialized pollfd we own (nfds = 1), and its fd stays open for the
        // call because pidfd is borrowed.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return Ok(true);
        }
        if r == 0 {
            return Ok(false);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("poll pidfd");
        }
    }
}

/// The hidden first argument that turns the bench into the RSS helper:
/// `bench --rss-helper REPORT PROGRAM ARGS...` forks PROGRAM, waits for it, writes its
/// `ru_maxrss` (KiB) to REPORT and exits with its status.
pub const RSS_HELPER: &str = "--rss-helper";

/// The helper's main; never returns.
pub fn rss_helper(args: &[std::ffi::OsString]) -> ! {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let fail = |message: String| -> ! {
        eprintln!("bench {RSS_HELPER}: {message}");
        std::process::exit(125)
    };
    let [report, program, ..] = args else {
        fail("usage: bench --rss-helper REPORT PROGRAM ARGS...".into())
    };
    let argv: Vec<CString> = args[1..]
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| fail(format!("NUL in {a:?}"))))
        .collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let program =
        CString::new(program.as_bytes()).unwrap_or_else(|_| fail("NUL in program".into()));
    // A plain fork: the child gets a copy of this small address space, not a share of it.
    // SAFETY: the helper runs first thing in main, before any thread is spawned, so the process
    // is single-threaded and the child inherits no lock held by another thread; the child only
    // calls async-signal-safe functions (execv, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: execv and _exit are async-signal-safe, so fine in a forked child; program and
        // every argv entry are NUL-terminated CStrings, and argv_ptrs ends in a null pointer, all
        // built before the fork and alive here. Nothing allocates between fork and exec.
        unsafe {
            libc::execv(program.as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let (status, maxrss) = wait4(pid).unwrap_or_else(|e| fail(format!("{e:#}")));
    if let Err(err) = std::fs::write(report, format!("{maxrss}\n")) {
        fail(format!("write {}: {err}", Path::new(report).display()));
    }
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    std::process::exit(128 + libc::WTERMSIG(status));
}

fn read_rss_report(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let _ = std::fs::remove_file(path);
    text.trim()
        .parse()
        .with_context(|| format!("{} holds {:?}", path.display(), text.trim()))
}

/// One OCI runtime under test, with its own state directory.
pub struct Runtime {
    /// The name used in ids, columns and JSON keys (`hull`, `runc`, `crun`).
    pub name: String,
    /// The binary as given on the command line.
    pub path: PathBuf,
    /// Its `--root` state directory, inside the bench's temp dir.
    pub root: PathBuf,
    /// The first line of `--version`.
    pub version: String,
    /// Why it was not measured (its probe `run` failed), if so.
    pub skipped: Option<String>,
    /// Whether it runs with the global `--systemd-cgroup` flag.
    pub systemd_cgroup: bool,
}

impl Runtime {
    /// `RT --root STATE args...`, timed; refused once the bench was interrupted.
    pub fn invoke<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        self.invoke_with_timeout(args, TIMEOUT)
    }

    pub fn invoke_with_timeout<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<Outcome> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        self.spawn(args, timeout)
    }

    fn spawn<S: AsRef<OsStr>>(&self, args: &[S], timeout: Duration) -> Result<Outcome> {
        let mut full = self.global_flags();
        full.extend(args.iter().map(AsRef::as_ref));
        timed(&self.path, &full, timeout).with_context(|| self.command_line(args))
    }

    /// Like `invoke`, but a non-zero exit is an error that names the command and quotes its stderr.
    pub fn must<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Outcome> {
        let outcome = self.invoke(args)?;
        self.require_success(args, &outcome)?;
        Ok(outcome)
    }

    /// An error naming the command and quoting its stderr, unless `outcome` is a success.
    fn require_success<S: AsRef<OsStr>>(&self, args: &[S], outcome: &Outcome) -> Result<()> {
        if !outcome.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.command_line(args),
                outcome.describe_status(),
                outcome.stderr.trim()
            );
        }
        Ok(())
    }

    /// Runs `RT --root STATE args...` (which must succeed) through the RSS helper and returns its
    /// peak RSS in KiB.
    pub fn peak_rss<S: AsRef<OsStr>>(&self, args: &[S], report: &Path) -> Result<u64> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let exe = std::env::current_exe().context("find the bench binary for --rss-helper")?;
        let mut full: Vec<&OsStr> = vec![
            OsStr::new(RSS_HELPER),
            report.as_os_str(),
            self.path.as_os_str(),
        ];
        full.extend(self.global_flags());
        full.extend(args.iter().map(AsRef::as_ref));
        let outcome = timed(&exe, &full, TIMEOUT).with_context(|| self.command_line(args))?;
        self.require_success(args, &outcome)?;
        read_rss_report(report)
    }

    /// `delete -f ID`, ignoring the result; runs even after an interrupt.
    pub fn force_delete(&self, id: &str) {
        let _ = self.spawn(&["delete", "-f", id], TIMEOUT);
    }

    /// `--root STATE`, and `--systemd-cgroup` when asked for.
    fn global_flags(&self) -> Vec<&OsStr> {
        let mut flags = vec![OsStr::new("--root"), self.root.as_os_str()];
        if self.systemd_cgroup {
            flags.push(OsStr::new("--systemd-cgroup"));
        }
        flags
    }

    pub fn command_line<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let mut line = self.path.display().to_string();
        for arg in self
            .global_flags()
            .into_iter()
            .chain(args.iter().map(AsRef::as_ref))
        {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }
}

/// Container ids created during a workload; dropping the guard `delete -f`s those not yet
/// deleted, so an error or an interrupt leaves nothing behind.
pub struct Guard<'a> {
    ids: Mutex<Vec<(&'a Runtime, String)>>,
}

impl<'a> Guard<'a> {
    pub fn new() -> Self {
        Guard {
            ids: Mutex::new(Vec::new()),
        }
    }

    /// Records `id` before the command that creates it runs.
    pub fn add(&self, runtime: &'a Runtime, id: &str) {
        self.lock().push((runtime, id.to_owned()));
    }

    /// Forgets `id` once the runtime deleted it.
    pub fn done(&self, runtime: &Runtime, id: &str) {
        self.lock()
            .retain(|(rt, known)| !(std::ptr::eq(*rt, runtime) && known == id));
    }

    /// `delete -f`s every id still recorded.
    pub fn cleanup(&self) {
        let ids = std::mem::take(&mut *self.lock());
        for (runtime, id) in ids {
            runtime.force_delete(&id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'a Runtime, String)>> {
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}
