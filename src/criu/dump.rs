//! `checkpoint`: the container dumped into an image directory (runc's `Container.Checkpoint`).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::proto::{Features, Opts, ReqType, Request};
use super::{
    call, cgroup_binds, cgroup_mode, check_version, config_file, device_paths, parse_empty_ns,
    quote_log, DESCRIPTORS, MIN_VERSION,
};
use crate::cgroups::Cgroup;
use crate::cli::CheckpointArgs;
use crate::container::Container;

const DUMP_LOG: &str = "dump.log";

/// runc's `--page-server ADDRESS:PORT`.
pub(super) fn parse_page_server(text: &str) -> Result<(String, i32)> {
    let usage = "Use --page-server ADDRESS:PORT to specify page server";
    let (address, port) = text.rsplit_once(':').context(usage)?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.is_empty() || port.is_empty() {
        bail!(usage);
    }
    let port = port.parse().ok().context("Invalid port number")?;
    Ok((address.to_owned(), port))
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

/// `checkpoint`: dump the running container into `image_path` (runc's `Container.Checkpoint`), as `args` ask. With
/// neither `leave_running` nor `pre_dump`, CRIU kills the container's processes once dumped; the caller then destroys
/// it.
pub fn checkpoint(container: &Container, image_path: &Path, args: &CheckpointArgs) -> Result<()> {
    let page_server = args
        .page_server
        .as_deref()
        .map(parse_page_server)
        .transpose()?;
    let empty_ns = parse_empty_ns(&args.criu.empty_ns)?;
    let spec = &crate::spec::load_bundle(&container.state.bundle)?.spec;
    if crate::rootless::enabled() {
        bail!(
            "checkpoint needs root: CRIU reads a container's namespaces, mounts and memory only with CAP_SYS_ADMIN \
             in the host's user namespace"
        );
    }
    let version = check_version(MIN_VERSION)?;
    let mode = cgroup_mode(&args.criu.manage_cgroups_mode)?;
    let images =
        File::open(image_path).with_context(|| format!("open {}", image_path.display()))?;
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
        shell_job: args.criu.shell_job,
        leave_running: args.leave_running,
        tcp_established: args.criu.tcp_established,
        tcp_skip_in_flight: args.tcp_skip_in_flight,
        link_remap: args.link_remap,
        ext_unix_sk: args.criu.ext_unix_sk,
        file_locks: args.criu.file_locks,
        empty_ns: Some(empty_ns),
        orphan_pts_master: true,
        auto_dedup: args.criu.auto_dedup,
        lazy_pages: args.criu.lazy_pages,
        page_server,
        config_file: config_file(spec),
        freeze_cgroup: state.cgroup.freezer_path().map(|p| p.display().to_string()),
        ..Opts::default()
    };
    let mut log_dir = image_path.to_path_buf();
    let work = match &args.criu.work_path {
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
    if let Some(parent) = &args.parent_path {
        rpc.parent_img = Some(parent.clone());
        rpc.track_mem = true;
    }
    let kind = if args.pre_dump {
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
    if args.criu.lazy_pages {
        check_feature(
            Features {
                lazy_pages: true,
                ..Features::default()
            },
            "LazyPages",
        )?;
        if args.status_fd != -1 {
            check_status_fd(args.status_fd)?;
            // CRIU 3.15 and later report readiness as the `status-ready` notification, answered below.
            if version < 31500 {
                rpc.status_fd = Some(args.status_fd);
            }
        }
    }
    if !args.pre_dump {
        add_dump_mounts(&mut rpc, spec, &state.cgroup, state.init_pid)?;
        let descriptors = init_descriptors(state.init_pid)?;
        let path = image_path.join(DESCRIPTORS);
        fs::write(&path, serde_json::to_vec(&descriptors)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    let request = Request::new(kind, Some(rpc));
    let checkpoint_marker = container.dir.join("checkpoint");
    let status_fd = (args.criu.lazy_pages && args.status_fd != -1 && version >= 31500)
        .then_some(args.status_fd);
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

/// A network or pid namespace joined by path is left to whoever made it: CRIU dumps it as external (runc's
/// `handleCheckpointingExternalNamespaces`).
fn external_namespace(spec: &Spec, ns_type: LinuxNamespaceType) -> Result<Option<String>> {
    let Some(path) = crate::namespaces::configured(spec)
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
