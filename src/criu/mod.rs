//! Checkpoint and restore with CRIU, as runc 1.5 does (`checkpoint.go`, `restore.go`, `libcontainer/criu_linux.go`):
//! hull asks a CRIU service worker (`swrk`) over its RPC protocol; `dump` and `restore` build the requests, this
//! module holds what both share (version and kernel checks, cgroup mode, configuration file, external mounts of
//! cgroups and devices, the log quoted on failure). Nothing here runs unless a checkpoint or restore is asked for.

mod dump;
mod proto;
mod restore;
mod swrk;

pub use dump::checkpoint;
pub use restore::restore;

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::Cgroup;
use proto::{CgroupMode, ReqType, Request, Response};
use swrk::Swrk;

/// runc relies on CRIU's VERSION request, which came with CRIU 3.0.
const MIN_VERSION: i32 = 30000;
/// The first CRIU that knows the vDSO layout of Linux 6.13 and later.
const MIN_VERSION_NEW_VDSO: i32 = 40100;
/// The file in the image directory that lists the init's stdio (runc's `descriptors.json`): restore hands the
/// restoring process's pipes to the ones that were pipes.
const DESCRIPTORS: &str = "descriptors.json";

/// runc's `--empty-ns`: only `network` may be named; the network namespace is always restored empty.
fn parse_empty_ns(names: &[String]) -> Result<u32> {
    let mut mask = libc::CLONE_NEWNET as u32;
    for name in names {
        if name != "network" {
            bail!(
                "namespace {} is not supported",
                crate::signal::go_quote(name)
            );
        }
        mask |= libc::CLONE_NEWNET as u32;
    }
    Ok(mask)
}

/// runc's `prepareImagePaths`: the image directory is made, a parent path must be relative and a directory in it.
pub fn prepare_image_paths(image_path: &Path, parent_path: Option<&str>) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(image_path)
        .with_context(|| format!("mkdir {}", image_path.display()))?;
    let Some(parent) = parent_path else {
        return Ok(());
    };
    if Path::new(parent).is_absolute() {
        bail!("--parent-path must be relative");
    }
    let real = image_path.join(parent);
    match fs::metadata(&real) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("invalid --parent-path: {}: not a directory", real.display()),
        Err(e) => Err(e).with_context(|| format!("invalid --parent-path: stat {}", real.display())),
    }
}

fn cgroup_mode(mode: &str) -> Result<CgroupMode> {
    Ok(match mode {
        "" => CgroupMode::Default,
        "soft" => CgroupMode::Soft,
        "full" => CgroupMode::Full,
        "strict" => CgroupMode::Strict,
        "ignore" => CgroupMode::Ignore,
        _ => bail!("invalid manage-cgroups-mode value"),
    })
}

/// One request to a fresh CRIU service worker; notifications go to `on_notify`. A failed request is an error
/// naming CRIU's answer.
fn call(request: &Request, on_notify: &mut swrk::Notify<'_>) -> Result<Response> {
    let criu = swrk::find()?;
    let worker = Swrk::start(&criu, false, &[])?;
    finish_call(worker, request, on_notify)
}

/// Ask a started worker, check its answer and wait for it to end.
fn finish_call(
    worker: Swrk,
    request: &Request,
    on_notify: &mut swrk::Notify<'_>,
) -> Result<Response> {
    let response = worker.call(request, on_notify)?;
    if !response.success {
        bail!(
            "criu failed: type {:?} errno {}",
            request.kind,
            response.cr_errno.unwrap_or(0)
        );
    }
    // A pre-dump worker waits for the final dump that runc never sends; it is stopped by closing its socket.
    let finished = worker.finish();
    if request.kind != ReqType::PreDump {
        finished?;
    }
    Ok(response)
}

/// Whether checkpoint and restore can work here: a CRIU on PATH that answers with a version hull can use.
pub fn usable() -> bool {
    check_version(MIN_VERSION).is_ok()
}

/// CRIU's version, checked against what hull needs, and against this kernel: CRIU before 4.1 cannot dump on Linux
/// 6.13 and later (`vdso: Unexpected rt vDSO area bounds`).
fn check_version(min: i32) -> Result<i32> {
    let response = call(&Request::new(ReqType::Version, None), &mut |_, _, _| Ok(()))
        .context("CRIU version check failed")?;
    let version = response
        .version
        .context("CRIU version check failed: no version in the answer")?
        .number();
    if version < min {
        bail!("CRIU version {version} must be {min} or higher");
    }
    let kernel = nix::sys::utsname::uname().context("uname")?;
    let release = kernel.release().to_string_lossy().into_owned();
    if version < MIN_VERSION_NEW_VDSO && kernel_at_least(&release, (6, 13)) {
        bail!(
            "CRIU version {version} cannot checkpoint on Linux {release} (its vDSO layout is newer): CRIU {} or \
             higher is needed",
            MIN_VERSION_NEW_VDSO
        );
    }
    Ok(version)
}

/// Whether a kernel release string ("6.18.44-fc") is at least `(major, minor)`.
fn kernel_at_least(release: &str, wanted: (u32, u32)) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= wanted
}

/// runc's `handleCriuConfigurationFile`: the `org.criu.config` annotation names CRIU's configuration file (empty:
/// none); without it, `/etc/criu/runc.conf` (CRIU ignores a file that does not exist).
fn config_file(spec: &Spec) -> Option<String> {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        Some(file) if file.is_empty() => None,
        Some(file) => Some(file.clone()),
        None => Some("/etc/criu/runc.conf".to_owned()),
    }
}

/// Without a cgroup namespace, a cgroup mount is made of binds of the container's cgroup directories (see `rootfs`):
/// on a v1 or hybrid host a tmpfs holding one bind per hierarchy, on a pure v2 host one bind. Binds are external to
/// CRIU, as runc's `getCgroupMounts` makes the v1 ones (runc mounts a fresh cgroup2 there instead; a bind of a
/// directory whose host mount is shared, as systemd shares it, would otherwise stop the dump at `has unreachable
/// sharing`). Each is (destination in the container, host directory).
fn cgroup_binds(spec: &Spec, cgroup: &Cgroup) -> Vec<(String, String)> {
    let cgroup_ns = crate::namespaces::configured(spec)
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Cgroup);
    if cgroup_ns {
        return Vec::new();
    }
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let unified = cgroup.is_unified();
    mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
        .flat_map(|m| {
            cgroup.hierarchies().iter().map(move |h| {
                let dest = if unified {
                    m.destination().clone()
                } else {
                    let name = h
                        .mountpoint
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "unified".to_owned());
                    m.destination().join(name)
                };
                (dest.display().to_string(), h.path.display().to_string())
            })
        })
        .collect()
}

/// Every device node the container gets (`rootfs::device_paths`): in a user namespace they are bind mounts of the
/// host's nodes, which CRIU must take as external.
fn device_paths(spec: &Spec) -> Vec<String> {
    crate::rootfs::device_paths(spec)
        .iter()
        .map(|path| path.display().to_string())
        .collect()
}

/// CRIU failures with a known cause outside hull: a line of the log, and what to tell the user.
const KNOWN_CAUSES: &[(&str, &str)] = &[(
    "Can't get 1:16 opt: Operation not supported",
    "this CRIU cannot dump sockets on Linux 6.16 and later, which refuse SO_PASSCRED on inet sockets: a CRIU with \
     the fix for checkpoint-restore/criu#2718 is needed",
)];

/// At most this many lines of CRIU's log are quoted; the first errors are the cause, the later ones its echoes.
const QUOTED_LINES: usize = 40;

/// runc's `logCriuErrors`: CRIU's log file and, as `grep -n -B5 Error` shows them, the lines up to each error; then
/// the cause of a failure hull recognises.
fn quote_log(log: &Path) -> String {
    let Ok(file) = File::open(log) else {
        return format!("see {}", log.display());
    };
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let mut quoted: Vec<String> = Vec::new();
    let mut last = 0;
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("Error") {
            continue;
        }
        let first = i.saturating_sub(5).max(last);
        for (n, line) in lines.iter().enumerate().take(i + 1).skip(first) {
            quoted.push(format!("{}:{line}", n + 1));
        }
        last = i + 1;
    }
    quoted.truncate(QUOTED_LINES);
    let mut text = format!("CRIU log {}:\n{}", log.display(), quoted.join("\n"));
    for (symptom, cause) in KNOWN_CAUSES {
        if lines.iter().any(|line| line.contains(symptom)) {
            text.push_str(&format!("\n{cause}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::dump::parse_page_server;
    use super::*;

    #[test]
    fn flags_are_checked_as_runc_checks_them() {
        assert_eq!(
            parse_page_server("10.0.0.1:27").unwrap(),
            ("10.0.0.1".to_owned(), 27)
        );
        assert_eq!(parse_page_server("[::1]:27").unwrap().0, "::1");
        for bad in ["nope", ":27", "host:"] {
            assert_eq!(
                parse_page_server(bad).unwrap_err().to_string(),
                "Use --page-server ADDRESS:PORT to specify page server"
            );
        }
        assert_eq!(
            parse_page_server("host:x").unwrap_err().to_string(),
            "Invalid port number"
        );
        assert_eq!(parse_empty_ns(&[]).unwrap(), libc::CLONE_NEWNET as u32);
        assert_eq!(
            parse_empty_ns(&["pid".to_owned()]).unwrap_err().to_string(),
            "namespace \"pid\" is not supported"
        );
        assert_eq!(
            cgroup_mode("bogus").unwrap_err().to_string(),
            "invalid manage-cgroups-mode value"
        );
        assert_eq!(cgroup_mode("").unwrap(), CgroupMode::Default);
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        prepare_image_paths(&images, None).unwrap();
        assert_eq!(
            prepare_image_paths(&images, Some("/abs"))
                .unwrap_err()
                .to_string(),
            "--parent-path must be relative"
        );
        assert!(prepare_image_paths(&images, Some("missing"))
            .unwrap_err()
            .to_string()
            .starts_with("invalid --parent-path"));
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least("6.18.44-fc-v1300", (6, 13)));
        assert!(kernel_at_least("7.0.1", (6, 13)));
        assert!(!kernel_at_least("6.1.0-28-amd64", (6, 13)));
        assert!(!kernel_at_least("garbage", (6, 13)));
    }

    #[test]
    fn the_failure_quotes_the_lines_before_each_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dump.log");
        let text: String = (1..=12)
            .map(|i| {
                if i == 9 {
                    "Error (x): boom\n".to_owned()
                } else {
                    format!("line {i}\n")
                }
            })
            .collect();
        fs::write(&log, text).unwrap();
        let quoted = quote_log(&log);
        assert!(quoted.starts_with(&format!("CRIU log {}:", log.display())));
        assert!(
            quoted.contains("4:line 4\n") && quoted.ends_with("9:Error (x): boom"),
            "{quoted}"
        );
    }

    #[test]
    fn a_known_criu_limit_is_named_after_the_quote() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dump.log");
        fs::write(
            &log,
            "(00.077192) Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported\n\
             (00.077214) Error (criu/cr-dump.c:1681): Dump files (pid: 28219) failed with -1\n",
        )
        .unwrap();
        let quoted = quote_log(&log);
        assert!(
            quoted.contains("1:(00.077192) Error")
                && quoted.ends_with("checkpoint-restore/criu#2718 is needed"),
            "{quoted}"
        );
    }
}
