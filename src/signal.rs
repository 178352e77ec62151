//! Signal arguments of `hull kill`, parsed like runc's `parseSignal`
//! (runc `kill.go`).
//!
//! runc first tries `strconv.Atoi`: any decimal integer is taken as is, with
//! no range check, so `0` (probe), real-time numbers such as `34` and even
//! out-of-range numbers pass (the kernel rejects the last with `EINVAL` at
//! kill(2) time). Otherwise the text is upper-cased, `SIG` is prefixed if
//! missing, and the name is looked up in golang.org/x/sys/unix's Linux signal
//! table, which has one name per number: no `SIGIOT`, `SIGCLD`, `SIGPOLL`,
//! `SIGRTMIN` or `SIGRTMIN+n`. A miss is `unknown signal "<raw input>"`.

use anyhow::bail;

/// x/sys/unix `signalList` (Linux): names accepted by `unix.SignalNum`.
const SIGNALS: &[(&str, libc::c_int)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
];

/// Go's description of signals 1 to 31 (`syscall.Signal.String()` on Linux), which runc's errors carry, as in
/// `signal: bad system call`.
const GO_DESCRIPTIONS: [&str; 31] = [
    "hangup",
    "interrupt",
    "quit",
    "illegal instruction",
    "trace/breakpoint trap",
    "aborted",
    "bus error",
    "floating point exception",
    "killed",
    "user defined signal 1",
    "segmentation fault",
    "user defined signal 2",
    "broken pipe",
    "alarm clock",
    "terminated",
    "stack fault",
    "child exited",
    "continued",
    "stopped (signal)",
    "stopped",
    "stopped (tty input)",
    "stopped (tty output)",
    "urgent I/O condition",
    "CPU time limit exceeded",
    "file size limit exceeded",
    "virtual timer expired",
    "profiling timer expired",
    "window changed",
    "I/O possible",
    "power failure",
    "bad system call",
];

/// How Go names signal `sig` (`signal 34` beyond the table, as Go prints it).
pub fn go_description(sig: libc::c_int) -> String {
    usize::try_from(sig)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| GO_DESCRIPTIONS.get(i))
        .map_or_else(|| format!("signal {sig}"), |d| (*d).to_owned())
}

/// Parses a `kill` signal argument into the number passed to kill(2).
///
/// A plain number is returned as is, truncated to a C `int` as the kernel
/// does with Go's 64-bit value (so `0` and real-time numbers work). A name
/// may be in any case and may omit the `SIG` prefix. The caller substitutes
/// `SIGTERM` for a missing argument, as runc does.
pub fn parse_signal(raw: &str) -> anyhow::Result<libc::c_int> {
    if let Some(n) = go_atoi(raw) {
        // Truncation on purpose: runc passes its int64 to kill(2), whose
        // `int sig` keeps the low 32 bits.
        return Ok(n as libc::c_int);
    }
    let upper = raw.to_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match SIGNALS.iter().find(|(n, _)| *n == name) {
        Some(&(_, num)) => Ok(num),
        None => bail!("unknown signal {}", go_quote(raw)),
    }
}

/// Go's `strconv.Atoi`: optional sign, then one or more ASCII digits, in
/// `int64` range.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `%q` verb (`strconv.Quote`), for error messages that quote a value as runc does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => {
                let n = u32::from(c);
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_described_as_go_describes_them() {
        assert_eq!(go_description(libc::SIGSYS), "bad system call");
        assert_eq!(go_description(libc::SIGKILL), "killed");
        assert_eq!(go_description(libc::SIGSEGV), "segmentation fault");
        assert_eq!(go_description(libc::SIGHUP), "hangup");
        assert_eq!(go_description(34), "signal 34");
    }

    fn err(raw: &str) -> String {
        parse_signal(raw).unwrap_err().to_string()
    }

    #[test]
    fn numbers_are_taken_verbatim() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("34").unwrap(), 34);
        assert_eq!(parse_signal("+15").unwrap(), 15);
        assert_eq!(parse_signal("009").unwrap(), 9);
        assert_eq!(parse_signal("99").unwrap(), 99);
        assert_eq!(parse_signal("-1").unwrap(), -1);
    }

    #[test]
    fn names_with_and_without_prefix_in_any_case() {
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("kill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SigUsr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("hup").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("WINCH").unwrap(), libc::SIGWINCH);
        // Go's strings.ToUpper maps dotless i to I, as Rust does.
        assert_eq!(parse_signal("k\u{131}ll").unwrap(), libc::SIGKILL);
    }

    #[test]
    fn unknown_names_quote_the_raw_argument() {
        assert_eq!(err("FOO"), r#"unknown signal "FOO""#);
        assert_eq!(err("foo"), r#"unknown signal "foo""#);
        assert_eq!(err(""), r#"unknown signal """#);
        assert_eq!(err("SIG"), r#"unknown signal "SIG""#);
        assert_eq!(err(" 9"), r#"unknown signal " 9""#);
        assert_eq!(err("a\"b\\c\td"), r#"unknown signal "a\"b\\c\td""#);
        assert_eq!(err("x\u{1}"), r#"unknown signal "x\x01""#);
    }

    #[test]
    fn aliases_and_realtime_names_are_not_in_the_go_table() {
        for raw in ["IOT", "SIGCLD", "POLL", "RTMIN", "SIGRTMIN+3", "RTMAX"] {
            assert_eq!(err(raw), format!("unknown signal \"{raw}\""));
        }
    }

    #[test]
    fn out_of_range_numbers_fall_back_to_names() {
        assert_eq!(
            err("99999999999999999999"),
            r#"unknown signal "99999999999999999999""#
        );
        // In int64 range: accepted, truncated like the kernel's int.
        assert_eq!(parse_signal("4294967305").unwrap(), 9);
    }
}
