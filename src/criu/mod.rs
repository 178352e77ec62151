//! Checkpoint with CRIU, as runc 1.5 does (`checkpoint.go`, `libcontainer/criu_linux.go`): hull asks a CRIU service
//! worker (`swrk`) over its RPC protocol. Nothing here runs unless a checkpoint is asked for: the other commands pay
//! nothing for it.

mod proto;
mod restore;
mod swrk;

pub use restore::{restore, RestoreOptions};

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::Cgroup;
use crate::container::Container;
use proto::{CgroupMode, Features, Opts, ReqType, Request, Response};
use swrk::Swrk;

/// runc relies on CRIU's VERSION request, which came with CRIU 3.0.
const MIN_VERSION: i32 = 30000;
/// The first CRIU that knows the vDSO layout of Linux 6.13 and later.
const MIN_VERSION_NEW_VDSO: i32 = 40100;
/// The file in the image directory that lists the init's stdio (runc's `descriptors.json`): restore hands the
/// restoring process's pipes to the ones that were pipes.
const DESCRIPTORS: &str = "descriptors.json";
const DUMP_LOG: &str = "dump.log";

/// `hull checkpoint`'s options, as runc's `criuOptions` reads them.
#[derive(Debug, Default)]
pub struct CheckpointOptions {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// Relative to the image path, checked to be a directory.
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub lazy_pages: bool,
    pub status_fd: i32,
    pub page_server: Option<(String, i32)>,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: String,
    /// Clone flags of the namespaces CRIU restores empty: the network namespace always (runc leaves network setup to
    /// others), and those `--empty-ns` names.
    pub empty_ns: u32,
    pub auto_dedup: bool,
}

/// runc's `--page-server ADDRESS:PORT`.
pub fn parse_page_server(text: &str) -> Result<(String, i32)> {
    let usage = "Use --page-server ADDRESS:PORT to specify page server";
    let (address, port) = text.rsplit_once(':').context(usage)?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.is_empty() || port.is_empty() {
        bail!(usage);
    }
    let port = port.parse().ok().context("Invalid port number")?;
    Ok((address.to_owned(), port))
}

/// runc's `--empty-ns`: only `network` may be named; the network namespace is always restored empty.
pub fn parse_empty_ns(names: &[String]) -> Result<u32> {
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

/// runc's `checkCriuFeatures`, with its message naming the missing feature as go-criu names it.
fn check_feature(feature: Features, name: &str) -> Result<()> {
    let response = call(
        &Request {
            features: Some(feature),
            ..Request::new(ReqType::FeatureCheck, None)
        },
        &mut |_, _, _| Ok(()),
    )
    .context("CRIU feature check failed")?;
    let offered = response.features.unwrap_or_default();
    if (feature.mem_track && !offered.mem_track) || (feature.lazy_pages && !offered.lazy_pages) {
        bail!("criu is missing features: [{name}]");
    }
    Ok(())
}

/// `checkpoint`: dump the running container into `opts.image_path` (runc's `Container.Checkpoint`). With neither
/// `leave_running` nor `pre_dump`, CRIU kills the container's processes once dumped; the caller then destroys it.
pub fn checkpoint(container: &Container, spec: &Spec, opts: &CheckpointOptions) -> Result<()> {
    let version = check_version(MIN_VERSION)?;
    let mode = cgroup_mode(&opts.manage_cgroups_mode)?;
    let images = File::open(&opts.image_path)
        .with_context(|| format!("open {}", opts.image_path.display()))?;
    let state = &container.state;
    let mut rpc = Opts {
        images_dir_fd: images.as_raw_fd(),
        log_level: Some(4),
        log_file: Some(DUMP_LOG.to_owned()),
        root: Some(state.rootfs.display().to_string()),
        manage_cgroups: true,
        manage_cgroups_mode: Some(mode),
        notify_scripts: true,
        pid: Some(state.init_pid),
        shell_job: opts.shell_job,
        leave_running: opts.leave_running,
        tcp_established: opts.tcp_established,
        tcp_skip_in_flight: opts.tcp_skip_in_flight,
        link_remap: opts.link_remap,
        ext_unix_sk: opts.ext_unix_sk,
        file_locks: opts.file_locks,
        empty_ns: Some(opts.empty_ns),
        orphan_pts_master: true,
        auto_dedup: opts.auto_dedup,
        lazy_pages: opts.lazy_pages,
        page_server: opts.page_server.clone(),
        config_file: config_file(spec),
        freeze_cgroup: state.cgroup.freezer_path().map(|p| p.display().to_string()),
        ..Opts::default()
    };
    let mut log_dir = opts.image_path.clone();
    let work = match &opts.work_path {
        Some(path) => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .with_context(|| format!("mkdir {}", path.display()))?;
            log_dir = path.clone();
            Some(File::open(path).with_context(|| format!("open {}", path.display()))?)
        }
        None => None,
    };
    rpc.work_dir_fd = work.as_ref().map(|w| w.as_raw_fd());
    for ns_type in [LinuxNamespaceType::Network, LinuxNamespaceType::Pid] {
        rpc.external.extend(external_namespace(spec, ns_type)?);
    }
    if let Some(parent) = &opts.parent_path {
        rpc.parent_img = Some(parent.clone());
        rpc.track_mem = true;
    }
    let kind = if opts.pre_dump {
        check_feature(
            Features {
                mem_track: true,
                ..Features::default()
            },
            "MemTrack",
        )?;
        ReqType::PreDump
    } else {
        ReqType::Dump
    };
    if opts.lazy_pages {
        check_feature(
            Features {
                lazy_pages: true,
                ..Features::default()
            },
            "LazyPages",
        )?;
        if opts.status_fd != -1 {
            check_status_fd(opts.status_fd)?;
            // CRIU 3.15 and later report readiness as the `status-ready` notification, answered below.
            if version < 31500 {
                rpc.status_fd = Some(opts.status_fd);
            }
        }
    }
    if !opts.pre_dump {
        add_dump_mounts(&mut rpc, spec, &state.cgroup, state.init_pid)?;
        let descriptors = init_descriptors(state.init_pid)?;
        let path = opts.image_path.join(DESCRIPTORS);
        fs::write(&path, serde_json::to_vec(&descriptors)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    let request = Request::new(kind, Some(rpc));
    let checkpoint_marker = container.dir.join("checkpoint");
    let status_fd =
        (opts.lazy_pages && opts.status_fd != -1 && version >= 31500).then_some(opts.status_fd);
    call(&request, &mut |script, _pid, _fds| {
        match script {
            "post-dump" => {
                File::create(&checkpoint_marker)
                    .with_context(|| format!("create {}", checkpoint_marker.display()))?;
            }
            "status-ready" => {
                if let Some(fd) = status_fd {
                    signal_ready(fd)?;
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map(drop)
    .map_err(|err| anyhow::anyhow!("{err:#}; {}", quote_log(&log_dir.join(DUMP_LOG))))
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

/// A network or pid namespace joined by path is left to whoever made it: CRIU dumps it as external (runc's
/// `handleCheckpointingExternalNamespaces`).
fn external_namespace(spec: &Spec, ns_type: LinuxNamespaceType) -> Result<Option<String>> {
    let Some(path) = crate::spec::namespaces(spec)
        .iter()
        .find(|ns| ns.typ() == ns_type)
        .and_then(|ns| ns.path().clone())
    else {
        return Ok(None);
    };
    let inode = fs::metadata(&path)
        .with_context(|| format!("stat {}", path.display()))?
        .ino();
    let (name, key) = match ns_type {
        LinuxNamespaceType::Network => ("net", "extRootNetNS"),
        _ => ("pid", "extRootPidNS"),
    };
    Ok(Some(format!("{name}[{inode}]:{key}")))
}

/// Bind mounts, masked files and device nodes are external to CRIU: their sources are the host's (runc's
/// `addCriuDumpMount`, `addMaskPaths`).
fn add_dump_mounts(rpc: &mut Opts, spec: &Spec, cgroup: &Cgroup, init: i32) -> Result<()> {
    let mut external = |dest: &str, val: &str| rpc.ext_mnt.push((dest.to_owned(), val.to_owned()));
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let options = m.options().as_deref().unwrap_or(&[]);
        let bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if bind {
            let dest = m.destination().display().to_string();
            external(&dest, &dest);
        }
    }
    for (dest, _) in cgroup_binds(spec, cgroup) {
        external(&dest, &dest);
    }
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        let inside = format!("/proc/{init}/root/{}", path.trim_start_matches('/'));
        match fs::metadata(&inside) {
            Ok(meta) if !meta.is_dir() => external(path, "/dev/null"),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("stat {inside}")),
        }
    }
    for path in device_paths(spec) {
        external(&path, &path);
    }
    Ok(())
}

/// On a v1 or hybrid host without a cgroup namespace, a cgroup mount is a tmpfs holding a bind of the container's
/// directory in each hierarchy (see `rootfs`): those binds are external to CRIU, as runc's `getCgroupMounts` makes
/// them. Each is (destination in the container, host directory).
fn cgroup_binds(spec: &Spec, cgroup: &Cgroup) -> Vec<(String, String)> {
    let cgroup_ns = crate::spec::namespaces(spec)
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Cgroup);
    if cgroup_ns || cgroup.is_unified() {
        return Vec::new();
    }
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
        .flat_map(|m| {
            cgroup.hierarchies().iter().map(move |h| {
                let name = h
                    .mountpoint
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "unified".to_owned());
                (
                    m.destination().join(name).display().to_string(),
                    h.path.display().to_string(),
                )
            })
        })
        .collect()
}

/// Every device node the container gets, the default ones first (runc's `config.Devices` holds both): in a user
/// namespace they are bind mounts of the host's nodes, which CRIU must take as external.
fn device_paths(spec: &Spec) -> Vec<String> {
    let mut paths: Vec<String> = crate::rootfs::DEFAULT_DEVICES
        .iter()
        .map(|(path, _, _)| (*path).to_owned())
        .collect();
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for device in configured {
        let path = device.path().display().to_string();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// What the init's stdio are, as `/proc/<pid>/fd/N` names them (runc records them at create, hull when it dumps).
fn init_descriptors(init: i32) -> Result<Vec<String>> {
    (0..3)
        .map(|fd| {
            let link = format!("/proc/{init}/fd/{fd}");
            Ok(fs::read_link(&link)
                .map(|target| target.display().to_string())
                .unwrap_or_else(|_| "/dev/null".to_owned()))
        })
        .collect()
}

/// `status-ready`: the lazy-pages server is ready; runc writes a NUL to the status fd and closes it.
fn signal_ready(fd: i32) -> Result<()> {
    // SAFETY: the caller passed this descriptor to hull for this one write; it is closed right after, as runc does.
    let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    std::io::Write::write_all(&mut &file, b"\0").context("write to --status-fd")
}

/// runc's `--status-fd` checks: an open descriptor opened write-only (runc rejects a read-write one too).
fn check_status_fd(fd: i32) -> Result<()> {
    // SAFETY: F_GETFL only reads the flags of a descriptor number; an invalid one fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        bail!(
            "invalid --status-fd argument {fd}: {}",
            std::io::Error::last_os_error()
        );
    }
    if flags & libc::O_WRONLY == 0 {
        bail!("invalid --status-fd argument {fd}: not writable");
    }
    Ok(())
}

/// runc's `logCriuErrors`: CRIU's log file, and its lines around each error, for the failure's message.
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
    let tail: Vec<String> = quoted.iter().rev().take(8).rev().cloned().collect();
    format!("CRIU log {}:\n{}", log.display(), tail.join("\n"))
}

#[cfg(test)]
mod tests {
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
}
