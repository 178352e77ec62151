//! Log sink shared by every command: stderr or `--log FILE`, text or JSON in logrus' shape (what containerd and
//! podman parse), and the single error line every failure ends with.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use crate::timefmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
    /// When this process image started logging: the origin of the `--debug` timing trace.
    started: Instant,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up the sink once, from the global flags. `log_path` None means stderr.
pub fn init(log_path: Option<&str>, format: Format, debug: bool) -> Result<()> {
    let file = match log_path {
        None | Some("") | Some("/dev/stderr") => None,
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_SYNC | libc::O_CLOEXEC)
                .mode(0o644)
                .open(path)
                .with_context(|| format!("open log file {path}"))?,
        ),
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
        started: Instant::now(),
    });
    Ok(())
}

/// In a cloned child about to enter the container: the `--log` file's fd, kept open only for the `--debug` trace
/// (a diagnostic mode); otherwise closed, and later records of this process go nowhere. The child reports its
/// errors through the sync channel, so nothing a user needs is lost.
pub fn keep_or_close_file_in_child() -> Option<RawFd> {
    let file = LOGGER.get()?.file.as_ref()?;
    if debug_enabled() {
        return Some(file.as_raw_fd());
    }
    FILE_CLOSED.store(true, Ordering::Relaxed);
    crate::sys::close_in_child(file.as_raw_fd());
    None
}

/// Set once a child closed its copy of the log file (see [`keep_or_close_file_in_child`]).
static FILE_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether `--log` sends records somewhere other than stderr.
pub fn logs_to_file() -> bool {
    LOGGER.get().is_some_and(|l| l.file.is_some())
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

/// One record in logrus' JSON shape: keys sorted (`level`, `msg`, `time`), RFC 3339 time.
fn json_record(level: Level, msg: &str, time: &str) -> String {
    format!(
        "{{\"level\":\"{}\",\"msg\":{},\"time\":\"{}\"}}\n",
        level.name(),
        serde_json::Value::String(msg.to_owned()),
        time
    )
}

/// One record in logrus' plain text shape.
fn text_record(level: Level, msg: &str, time: &str) -> String {
    format!(
        "time=\"{}\" level={} msg={}\n",
        time,
        level.name(),
        serde_json::Value::String(msg.to_owned())
    )
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        eprintln!("{}: {msg}", level.name());
        return;
    };
    if level == Level::Debug && !logger.debug {
        return;
    }
    let time = timefmt::rfc3339(SystemTime::now());
    let record = match logger.format {
        Format::Json => json_record(level, msg, &time),
        Format::Text => text_record(level, msg, &time),
    };
    match &logger.file {
        Some(_) if FILE_CLOSED.load(Ordering::Relaxed) => {}
        Some(file) => {
            let mut file: &File = file;
            let _ = file.write_all(record.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(record.as_bytes());
        }
    }
}

pub fn debug(msg: impl AsRef<str>) {
    if debug_enabled() {
        log(Level::Debug, msg.as_ref());
    }
}

/// The `--debug` timing trace: one record per setup step, with the milliseconds since hull's argument parsing
/// (a forked init shares the origin, so its steps line up with the parent's). Free when `--debug` is off.
pub fn phase(step: &str) {
    if let Some(logger) = LOGGER.get().filter(|l| l.debug) {
        let ms = logger.started.elapsed().as_secs_f64() * 1000.0;
        log(Level::Debug, &format!("phase {step}: {ms:.3} ms"));
    }
}

/// The text of an error and its causes joined with ": ", with OS errors written as plain `strerror` text
/// (`open /x/config.json: No such file or directory`, not `... (os error 2)`).
pub fn error_chain_text(err: &anyhow::Error) -> String {
    err.chain().map(cause_text).collect::<Vec<_>>().join(": ")
}

pub fn cause_text(cause: &(dyn std::error::Error + 'static)) -> String {
    if let Some(errno) = cause.downcast_ref::<nix::errno::Errno>() {
        return errno.desc().to_owned();
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        if let Some(raw) = io.raw_os_error() {
            return nix::errno::Errno::from_raw(raw).desc().to_owned();
        }
    }
    cause.to_string()
}

/// Report a command's failure: one `error: ...` line on stderr and, when `--log` points at a file, exactly one
/// error record there (containerd takes the last `level=error` JSON line; podman parses the file as one object).
pub fn report_failure(err: &anyhow::Error) {
    let text = error_chain_text(err);
    eprintln!("error: {text}");
    if logs_to_file() {
        log(Level::Error, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_record_has_logrus_keys_in_order() {
        let line = json_record(Level::Error, "say \"hi\"", "2026-11-23T01:02:03Z");
        assert_eq!(
            line,
            "{\"level\":\"error\",\"msg\":\"say \\\"hi\\\"\",\"time\":\"2026-11-23T01:02:03Z\"}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["msg"], "say \"hi\"");
    }

    #[test]
    fn text_record_quotes_the_message() {
        assert_eq!(
            text_record(Level::Error, "container does not exist", "T"),
            "time=\"T\" level=error msg=\"container does not exist\"\n"
        );
    }

    #[test]
    fn error_chain_uses_strerror_text() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = anyhow::Error::new(io).context("open /x/config.json");
        assert_eq!(
            error_chain_text(&err),
            "open /x/config.json: No such file or directory"
        );
        let err = anyhow::Error::new(nix::errno::Errno::EPERM).context("mount proc");
        assert_eq!(
            error_chain_text(&err),
            "mount proc: Operation not permitted"
        );
    }
}
