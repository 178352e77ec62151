//! AppArmor and SELinux: `process.apparmorProfile`, `process.selinuxLabel` (and `exec --apparmor`,
//! `--process-label`) and `linux.mountLabel`.
//!
//! On a host with the LSM enabled, the process's exec-time label is written to its own procfs `attr` file just
//! before it switches user (runc's order), through a private procfs instance made with `fsopen` that no mount in
//! the container can cover or redirect (CVE-2019-16884, CVE-2025-52881); the file must be on procfs. The mount
//! label becomes a `context=` option of the container's filesystem mounts, as runc's `label.FormatMountLabel`.
//! On a host without the LSM, a process label is an error (it would silently leave the process unconfined): for
//! SELinux with runc's message, for AppArmor as crun does; the mount label is ignored with a debug log (crun, and
//! runc's go-selinux, which returns the mount data unchanged).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{Process, Spec};

use crate::{logger, sys};

/// Which LSMs the host has enabled (detected by hull before it clones, from the host's sysfs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Host {
    pub apparmor: bool,
    pub selinux: bool,
}

impl Host {
    pub fn detect() -> Host {
        Host::detect_in(Path::new("/"))
    }

    /// runc's checks: AppArmor when securityfs has it and the module says `Y`; SELinux when selinuxfs is mounted.
    fn detect_in(root: &Path) -> Host {
        let apparmor = root.join("sys/kernel/security/apparmor").exists()
            && fs::read_to_string(root.join("sys/module/apparmor/parameters/enabled"))
                .is_ok_and(|v| v.starts_with('Y'));
        let selinux = root.join("sys/fs/selinux/enforce").exists();
        Host { apparmor, selinux }
    }
}

/// The labels a new process gets on this host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    apparmor: Option<String>,
    selinux: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The process's labels checked against the host: either one without its LSM is an error.
pub fn labels(process: &Process, host: Host) -> Result<Labels> {
    let apparmor = non_empty(process.apparmor_profile());
    if let Some(profile) = apparmor {
        if !host.apparmor {
            bail!("apparmor profile {profile:?} is set, but AppArmor is not enabled on this host");
        }
    }
    let selinux = non_empty(process.selinux_label());
    if selinux.is_some() && !host.selinux {
        bail!("selinux label is specified in config, but selinux is disabled or not supported");
    }
    Ok(Labels {
        apparmor: apparmor.map(str::to_owned),
        selinux: selinux.map(str::to_owned),
    })
}

/// `linux.mountLabel` when the host can use it.
pub fn mount_label(spec: &Spec, host: Host) -> Option<String> {
    let label = spec
        .linux()
        .as_ref()
        .and_then(|l| non_empty(l.mount_label()))?;
    if !host.selinux {
        logger::debug(format!(
            "mount label {label:?} ignored: SELinux is not enabled on this host"
        ));
        return None;
    }
    Some(label.to_owned())
}

/// Mount data with the SELinux mount label added (runc's `label.FormatMountLabel`).
pub fn with_mount_label(data: &str, label: Option<&str>) -> String {
    match label {
        None => data.to_owned(),
        Some(label) if data.is_empty() => format!("context=\"{label}\""),
        Some(label) => format!("{data},context=\"{label}\""),
    }
}

impl Labels {
    pub fn is_empty(&self) -> bool {
        self.apparmor.is_none() && self.selinux.is_none()
    }

    /// In the new process, still privileged: label what it will execve.
    pub fn apply(&self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let proc = private_procfs()?;
        let pid = std::process::id();
        if let Some(profile) = &self.apparmor {
            let value = format!("exec {profile}");
            // Kernels with LSM stacking have AppArmor's own directory; older ones only the shared file.
            match write_attr(proc.as_fd(), &format!("{pid}/attr/apparmor/exec"), &value) {
                Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::ENOENT) => {
                    write_attr(proc.as_fd(), &format!("{pid}/attr/exec"), &value)
                }
                other => other,
            }
            .with_context(|| format!("apply apparmor profile {profile:?}"))?;
        }
        if let Some(label) = &self.selinux {
            write_attr(proc.as_fd(), &format!("{pid}/attr/exec"), label)
                .with_context(|| format!("set selinux exec label {label:?}"))?;
        }
        Ok(())
    }
}

/// A procfs instance of this process's own, mounted nowhere: only the returned fd reaches it.
fn private_procfs() -> Result<OwnedFd> {
    let ctx = sys::fsopen(c"proc").context("fsopen proc")?;
    sys::fsconfig_create(ctx.as_fd()).context("create a private procfs")?;
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    sys::fsmount(ctx.as_fd(), attrs).context("mount a private procfs")
}

/// Write `value` to `rel` below the procfs `root` without following any symlink, and only if the file is on
/// procfs. The errno of a failed open is kept as the error's source (callers fall back on ENOENT).
fn write_attr(root: BorrowedFd<'_>, rel: &str, value: &str) -> Result<()> {
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let path = CString::new(rel).with_context(|| format!("procfs path {rel:?}"))?;
    let fd = sys::openat2(root, &path, libc::O_WRONLY, resolve)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("open {rel} on procfs"))?;
    let fs = nix::sys::statfs::fstatfs(&fd).with_context(|| format!("statfs {rel}"))?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        bail!("{rel} is not on procfs");
    }
    fs::File::from(fd)
        .write_all(value.as_bytes())
        .with_context(|| format!("write {value:?} to {rel}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn process(apparmor: &str, selinux: &str) -> Process {
        serde_json::from_value(json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["true"],
            "apparmorProfile": apparmor, "selinuxLabel": selinux
        }))
        .unwrap()
    }

    #[test]
    fn hosts_are_detected_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Host::detect_in(root.path()), Host::default());
        fs::create_dir_all(root.path().join("sys/kernel/security/apparmor")).unwrap();
        fs::create_dir_all(root.path().join("sys/module/apparmor/parameters")).unwrap();
        fs::write(
            root.path().join("sys/module/apparmor/parameters/enabled"),
            "N\n",
        )
        .unwrap();
        assert!(
            !Host::detect_in(root.path()).apparmor,
            "module loaded but disabled"
        );
        fs::write(
            root.path().join("sys/module/apparmor/parameters/enabled"),
            "Y\n",
        )
        .unwrap();
        assert!(Host::detect_in(root.path()).apparmor);
        fs::create_dir_all(root.path().join("sys/fs/selinux")).unwrap();
        fs::write(root.path().join("sys/fs/selinux/enforce"), "1").unwrap();
        assert!(Host::detect_in(root.path()).selinux);
        // This machine has neither.
        assert_eq!(Host::detect(), Host::default());
    }

    #[test]
    fn labels_without_their_lsm_are_errors() {
        let none = Host::default();
        let err = labels(&process("docker-default", ""), none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "apparmor profile \"docker-default\" is set, but AppArmor is not enabled on this host"
        );
        let err = labels(&process("", "system_u:system_r:container_t:s0"), none).unwrap_err();
        assert_eq!(
            err.to_string(),
            "selinux label is specified in config, but selinux is disabled or not supported"
        );
        let both = Host {
            apparmor: true,
            selinux: true,
        };
        let l = labels(
            &process("docker-default", "system_u:system_r:container_t:s0"),
            both,
        )
        .unwrap();
        assert_eq!(l.apparmor.as_deref(), Some("docker-default"));
        assert_eq!(
            l.selinux.as_deref(),
            Some("system_u:system_r:container_t:s0")
        );
        assert!(labels(&process("", ""), none).unwrap().is_empty());
    }

    #[test]
    fn mount_label_becomes_a_context_option_only_with_selinux() {
        let spec: Spec = serde_json::from_value(json!({
            "ociVersion": "1.2.0", "linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}
        }))
        .unwrap();
        assert_eq!(mount_label(&spec, Host::default()), None);
        let label = mount_label(
            &spec,
            Host {
                apparmor: false,
                selinux: true,
            },
        );
        assert_eq!(
            label.as_deref(),
            Some("system_u:object_r:container_file_t:s0")
        );
        assert_eq!(
            with_mount_label("mode=755,size=65536k", label.as_deref()),
            "mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0\""
        );
        assert_eq!(with_mount_label("", Some("l")), "context=\"l\"");
        assert_eq!(with_mount_label("mode=755", None), "mode=755");
    }

    #[test]
    fn attr_writes_go_only_to_procfs() {
        let fake = tempfile::tempdir().unwrap();
        fs::create_dir_all(fake.path().join("1/attr")).unwrap();
        fs::write(fake.path().join("1/attr/exec"), "").unwrap();
        let root = fs::File::open(fake.path()).unwrap();
        let err = write_attr(root.as_fd(), "1/attr/exec", "exec evil").unwrap_err();
        assert_eq!(err.to_string(), "1/attr/exec is not on procfs");
        assert_eq!(
            fs::read_to_string(fake.path().join("1/attr/exec")).unwrap(),
            ""
        );
        // A symlink is never followed, even one pointing inside.
        std::os::unix::fs::symlink("1", fake.path().join("self")).unwrap();
        assert!(write_attr(root.as_fd(), "self/attr/exec", "x").is_err());
        // The private procfs is real procfs, and the process's attr files are where the writes go.
        let proc = private_procfs().expect("fsopen proc as root");
        let fs = nix::sys::statfs::fstatfs(&proc).unwrap();
        assert_eq!(fs.filesystem_type(), nix::sys::statfs::PROC_SUPER_MAGIC);
        let rel = format!("{}/attr/exec", std::process::id());
        // Without an LSM that takes exec labels the kernel refuses the write itself, after the open succeeded.
        if let Err(e) = write_attr(proc.as_fd(), &rel, "exec unconfined") {
            let text = format!("{e:#}");
            assert!(
                text.contains(&format!("write \"exec unconfined\" to {rel}")),
                "{text}"
            );
        }
    }
}
