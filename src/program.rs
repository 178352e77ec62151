//! The program the container runs: its environment, the lookup of `args[0]` (Go's `exec.LookPath`, which runc
//! uses, so errors read the same), and the final execve.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use nix::errno::Errno;
use nix::unistd::{faccessat, AccessFlags};

/// The process environment as runc builds it: the configured variables with each name once (at its first position,
/// with its last value: runc sets them one by one with `os.Setenv`), plus `HOME` from the container's passwd when
/// the config does not set it. A variable without `=` is an error.
pub fn environment(configured: &[String], home: &str) -> Result<Vec<String>> {
    let mut env: Vec<String> = Vec::with_capacity(configured.len() + 1);
    // Each name's place in `env`: a later duplicate replaces the value in place, in linear time.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(configured.len());
    for pair in configured {
        let Some((name, _)) = pair.split_once('=') else {
            return Err(anyhow!("invalid environment '{pair}'"));
        };
        if name.is_empty() {
            return Err(anyhow!("invalid environment '{pair}': empty variable name"));
        }
        match index.get(name) {
            Some(&at) => env[at].clone_from(pair),
            None => {
                index.insert(name, env.len());
                env.push(pair.clone());
            }
        }
    }
    if !index.contains_key("HOME") {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

fn check_executable(path: &Path) -> std::result::Result<(), Errno> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    if meta.is_dir() {
        return Err(Errno::EISDIR);
    }
    match faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS | Errno::EPERM) if meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Find `file` like Go's `exec.LookPath` with the container's `PATH` (from its environment).
pub fn look_path(file: &str, env: &[String]) -> Result<PathBuf> {
    if file.contains('/') {
        return match check_executable(Path::new(file)) {
            Ok(()) => Ok(PathBuf::from(file)),
            Err(Errno::ENOENT) => Err(anyhow!(
                "exec: {file:?}: stat {file}: {}",
                go_error_text(Errno::ENOENT)
            )),
            Err(e) => Err(anyhow!("exec: {file:?}: {}", go_error_text(e))),
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path_var
        .split(':')
        .filter(|d| !path_var.is_empty() || !d.is_empty())
    {
        let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(file);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(anyhow!(
        "exec: {file:?}: executable file not found in $PATH"
    ))
}

/// An errno as Go's syscall package spells it ("no such file or directory"): the C text with a lowercase start.
/// Engines match runc's exec errors by these words, case-sensitively (docker 20.10 turns "no such file or
/// directory" into exit code 127 and "permission denied" into 126).
pub fn go_error_text(errno: Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub fn c_strings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| anyhow!("{s:?} contains a NUL byte")))
        .collect()
}

pub fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| anyhow!("{} contains a NUL byte", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_added_only_when_missing() {
        let env = environment(&["PATH=/bin".into()], "/root").unwrap();
        assert_eq!(env, ["PATH=/bin", "HOME=/root"]);
        let env = environment(&["HOME=/x".into()], "/root").unwrap();
        assert_eq!(env, ["HOME=/x"]);
    }

    #[test]
    fn a_hundred_thousand_variables_take_linear_time() {
        // Quadratic handling (a scan of the list per variable) took about 20 s for this list; linear takes
        // milliseconds. The bound only catches the quadratic case.
        let mut configured: Vec<String> = (0..100_000).map(|i| format!("V{i}=a")).collect();
        configured.extend((0..100_000).step_by(2).map(|i| format!("V{i}=b")));
        let started = std::time::Instant::now();
        let env = environment(&configured, "/root").unwrap();
        let took = started.elapsed();
        assert_eq!(env.len(), 100_001, "100,000 names and HOME");
        assert_eq!((env[0].as_str(), env[1].as_str()), ("V0=b", "V1=a"));
        assert!(
            took < std::time::Duration::from_secs(2),
            "expected 150,000 variables to be handled in linear time (well under 2 s), took {took:?}"
        );
    }

    #[test]
    fn a_repeated_name_keeps_its_place_and_takes_the_last_value() {
        let env = environment(
            &[
                "PATH=/bin".into(),
                "A=1".into(),
                "PATH=/sbin".into(),
                "B=x=y".into(),
            ],
            "/",
        )
        .unwrap();
        assert_eq!(env, ["PATH=/sbin", "A=1", "B=x=y", "HOME=/"]);
        assert_eq!(
            environment(&["NOEQUALS".into()], "/")
                .unwrap_err()
                .to_string(),
            "invalid environment 'NOEQUALS'"
        );
        assert!(environment(&["=v".into()], "/").is_err());
    }

    #[test]
    fn lookup_follows_go_semantics() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_owned()];
        assert!(look_path("sh", &env).unwrap().ends_with("sh"));
        assert_eq!(
            look_path("no-such-program", &env).unwrap_err().to_string(),
            "exec: \"no-such-program\": executable file not found in $PATH"
        );
        assert_eq!(
            look_path("/nope", &env).unwrap_err().to_string(),
            "exec: \"/nope\": stat /nope: no such file or directory"
        );
        assert_eq!(
            look_path("/", &env).unwrap_err().to_string(),
            "exec: \"/\": is a directory"
        );
        assert!(look_path("sh", &[]).is_err(), "no PATH, no lookup");
    }
}
