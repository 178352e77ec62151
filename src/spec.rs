//! Loading a bundle's `config.json` and checking it before anything is created: every rejection here happens before
//! hull touches the state directory, cgroups or the kernel, so a bad bundle leaves nothing behind.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxNamespaceType, Mount, Process, Spec};

/// The bundle's parsed config and the absolute paths derived from it.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

impl Bundle {
    /// `annotations`, sorted, as the state and the hooks' state carry them.
    pub fn annotations(&self) -> std::collections::BTreeMap<String, String> {
        self.spec
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// `process.terminal`.
    pub fn terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }
}

/// Read and check `<dir>/config.json`; `dir` must already be absolute.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let config = dir.join("config.json");
    let bytes = fs::read(&config).with_context(|| format!("open {}", config.display()))?;
    let spec: Spec =
        serde_json::from_slice(&bytes).with_context(|| format!("parse {}", config.display()))?;
    validate(&spec)?;
    warn_ignored(&spec);
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs = dir.join(&root);
    let meta = fs::metadata(&rootfs).with_context(|| format!("rootfs {}", rootfs.display()))?;
    if !meta.is_dir() {
        bail!("rootfs {} is not a directory", rootfs.display());
    }
    let rootfs = fs::canonicalize(&rootfs)
        .with_context(|| format!("resolve rootfs {}", rootfs.display()))?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        spec,
        rootfs,
    })
}

/// What runc accepts and ignores with a warning, hull too.
fn warn_ignored(spec: &Spec) {
    let flags = spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
        .and_then(|p| p.flags().as_ref())
        .filter(|flags| !flags.is_empty());
    if let Some(flags) = flags {
        crate::logger::log(
            crate::logger::Level::Warning,
            &format!(
                "ignoring unsupported personality flags: {flags:?} because personality flag has not supported at this time"
            ),
        );
    }
}

/// Checks that need no filesystem access (unit-tested).
pub fn validate(spec: &Spec) -> Result<()> {
    let version = spec.version();
    if version.split('.').next() != Some("1") {
        bail!("unsupported ociVersion {version:?}: hull supports runtime-spec 1.x");
    }
    match spec.root() {
        Some(root) if !root.path().as_os_str().is_empty() => {}
        _ => bail!("root must be specified"),
    }
    let Some(process) = spec.process() else {
        bail!("process property must not be empty")
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("args must not be empty");
    }
    if !process.cwd().is_absolute() {
        bail!("cwd {:?} must be an absolute path", process.cwd());
    }
    validate_process_fields(process)?;
    let Some(linux) = spec.linux() else {
        bail!("linux is not set: hull runs Linux containers only")
    };

    let mut seen = HashSet::new();
    for ns in crate::namespaces::configured(spec) {
        if !seen.insert(ns.typ()) {
            bail!(
                "malformed spec file: duplicated ns {:?}",
                crate::namespaces::type_name(ns.typ())
            );
        }
    }
    let has = |t| seen.contains(&t);
    if !has(LinuxNamespaceType::Mount) {
        validate_without_mount_namespace(linux, has(LinuxNamespaceType::User))?;
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!("unable to set hostname without a private UTS namespace");
    }
    if spec.domainname().as_ref().is_some_and(|d| !d.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!("unable to set domainname without a private UTS namespace");
    }
    let new_user_ns = crate::namespaces::configured(spec)
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_user_ns
        && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
    {
        bail!("a new user namespace needs linux.uidMappings and linux.gidMappings");
    }
    crate::namespaces::check_id_mappings(
        "linux.uidMappings",
        linux.uid_mappings().as_deref().unwrap_or(&[]),
    )?;
    crate::namespaces::check_id_mappings(
        "linux.gidMappings",
        linux.gid_mappings().as_deref().unwrap_or(&[]),
    )?;
    if has_maps && !new_user_ns {
        bail!("User namespace mappings specified, but USER namespace isn't enabled in the config");
    }
    if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty())
        && !has(LinuxNamespaceType::Time)
    {
        bail!("time namespace offsets specified, but time namespace isn't enabled in the config");
    }
    validate_devices(linux.devices().as_deref().unwrap_or(&[]))?;
    if let Some(rdt) = linux.intel_rdt() {
        crate::resctrl::plan::validate(rdt, crate::resctrl::host::Host::detect().as_ref())?;
    }
    if let Some(devices) = linux.net_devices() {
        crate::netdev::validate(
            devices,
            has(LinuxNamespaceType::Network),
            crate::rootless::enabled(),
        )?;
    }
    validate_bind_options(spec.mounts().as_deref().unwrap_or(&[]))?;
    if let Some(policy) = linux.memory_policy() {
        crate::mempolicy::MemoryPolicy::of(policy)?;
    }
    if let Some(sysctl) = linux.sysctl() {
        // A network namespace joined by path may be this process's own, the host's (runc's `isHostNetNS`).
        let own_network_namespace = || -> Result<bool> {
            match crate::namespaces::configured(spec)
                .iter()
                .find(|ns| ns.typ() == LinuxNamespaceType::Network)
            {
                None => Ok(false),
                Some(ns) => match ns.path() {
                    None => Ok(true),
                    Some(path) => Ok(!same_namespace(path, Path::new("/proc/self/ns/net"))
                        .context("invalid netns path")?),
                },
            }
        };
        for key in sysctl.keys() {
            validate_sysctl(key, &has, &own_network_namespace)?;
        }
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !prop.is_empty() && crate::mountopts::propagation_flag(prop).is_none() {
            bail!("invalid linux.rootfsPropagation {prop:?}");
        }
    }
    if let Some(hooks) = spec.hooks() {
        crate::hooks::validate(hooks)?;
    }
    crate::idmap::validate(spec)?;
    Ok(())
}

/// A container without a mount namespace of its own mounts into hull's (see `hostmounts`): nothing can be hidden from
/// it there (runc's wording), and a user namespace could not mount at all.
fn validate_without_mount_namespace(linux: &oci_spec::runtime::Linux, user_ns: bool) -> Result<()> {
    let listed = |paths: &Option<Vec<String>>| paths.as_ref().is_some_and(|p| !p.is_empty());
    if listed(linux.masked_paths()) || listed(linux.readonly_paths()) {
        bail!(
            "unable to restrict sys entries without a private MNT namespace: \
             linux.maskedPaths and linux.readonlyPaths need {{\"type\": \"mount\"}} in linux.namespaces"
        );
    }
    if user_ns {
        bail!(
            "a user namespace needs a mount namespace of its own: without one, the container's mounts would go into \
             the host's mount namespace, where it may not mount; add {{\"type\": \"mount\"}} to linux.namespaces"
        );
    }
    Ok(())
}

/// Each `linux.devices` entry names a node by an absolute path and numbers the kernel can hold (`dev_t` has 32 bits
/// for each).
fn validate_devices(devices: &[LinuxDevice]) -> Result<()> {
    for (i, dev) in devices.iter().enumerate() {
        let path = dev.path();
        if !path.is_absolute() {
            bail!(
                "linux.devices[{i}] ({}): the path must be absolute",
                path.display()
            );
        }
        for (name, number) in [("major", dev.major()), ("minor", dev.minor())] {
            if u32::try_from(number).is_err() {
                bail!(
                    "linux.devices[{i}] ({}): {name} {number} is out of range: use 0 to {}",
                    path.display(),
                    u32::MAX
                );
            }
        }
    }
    Ok(())
}

/// runc 1.2+ refuses a bind mount with filesystem data options (`size=10k`): the kernel ignores them on a bind.
fn validate_bind_options(mounts: &[Mount]) -> Result<()> {
    for m in mounts {
        let opts = crate::mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        let bind = m.typ().as_deref() == Some("bind") || opts.is_bind();
        if bind && !opts.data.is_empty() {
            bail!(
                "invalid mount {} ({}): bind mounts cannot have any filesystem-specific options applied",
                m.destination().display(),
                opts.data_string()
            );
        }
    }
    Ok(())
}

/// Whether two namespace files name the same namespace (device and inode).
fn same_namespace(a: &Path, b: &Path) -> Result<bool> {
    let stat = |p: &Path| nix::sys::stat::stat(p).with_context(|| format!("stat {}", p.display()));
    let (a, b) = (stat(a)?, stat(b)?);
    Ok((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
}

/// A sysctl name in dot form: `kernel/shmmax` becomes `kernel.shmmax` (and a dot inside a slash-separated name, as in
/// `net/ipv4/conf/eth0.100/forwarding`, a slash), as runc's `convertSysctlVariableToDotsSeparator` does.
fn sysctl_dot_form(key: &str) -> Cow<'_, str> {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => Cow::Owned(
            key.chars()
                .map(|c| match c {
                    '.' => '/',
                    '/' => '.',
                    c => c,
                })
                .collect(),
        ),
        _ => Cow::Borrowed(key),
    }
}

/// runc's rule (and messages): only namespaced sysctls, and only when the container has the namespace that scopes them;
/// names in slash form are judged in dot form. `user.*` (the user namespace's ucounts limits) needs a user namespace
/// of the container's own (runc 1.5).
fn validate_sysctl(
    key: &str,
    has: &dyn Fn(LinuxNamespaceType) -> bool,
    own_network_namespace: &dyn Fn() -> Result<bool>,
) -> Result<()> {
    let key = sysctl_dot_form(key);
    let key = key.as_ref();
    const IPC_KEYS: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        if has(LinuxNamespaceType::Ipc) {
            return Ok(());
        }
        bail!("sysctl {key:?} is not allowed in the hosts ipc namespace");
    }
    if key.starts_with("net.") {
        if own_network_namespace()? {
            return Ok(());
        }
        bail!("sysctl {key:?} not allowed in host network namespace");
    }
    if has(LinuxNamespaceType::Uts) {
        if key == "kernel.domainname" {
            return Ok(());
        }
        if key == "kernel.hostname" {
            bail!("sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field");
        }
    }
    if key.starts_with("user.") {
        if has(LinuxNamespaceType::User) {
            return Ok(());
        }
        bail!("setting ucounts without a user namespace not allowed: {key}");
    }
    bail!("sysctl {key:?} is not in a separate kernel namespace")
}

/// The checks of a process's own fields (the container's, or one given to `exec`) that runc makes at create.
pub fn validate_process_fields(process: &Process) -> Result<()> {
    crate::affinity::ExecAffinity::of(process.exec_cpu_affinity().as_ref())?;
    crate::sched::validate(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<()> {
        validate(&spec(&v.to_string()))
    }

    fn err(v: serde_json::Value) -> String {
        check(v).unwrap_err().to_string()
    }

    #[test]
    fn base_config_is_valid() {
        check(base()).unwrap();
    }

    /// oci-spec checks execCPUAffinity with a regex while parsing; hull serves it from regex-lite (vendor/).
    #[test]
    fn exec_cpu_affinity_format_is_checked_while_parsing() {
        for good in ["0", "0-3", "0,2-3,7"] {
            let mut v = base();
            v["process"]["execCPUAffinity"] = serde_json::json!({"initial": good});
            serde_json::from_str::<Spec>(&v.to_string()).expect(good);
        }
        for bad in ["", "a", "0-", "1,,2", "٣"] {
            let mut v = base();
            v["process"]["execCPUAffinity"] = serde_json::json!({"initial": bad});
            let err = serde_json::from_str::<Spec>(&v.to_string()).unwrap_err();
            assert!(
                err.to_string().contains("Invalid execCPUAffinity format"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn rejects_unknown_major_version() {
        let mut v = base();
        v["ociVersion"] = "2.0.0".into();
        assert!(err(v).contains("unsupported ociVersion \"2.0.0\""));
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let mut v = base();
        v["hostname"] = "box".into();
        assert_eq!(
            err(v.clone()),
            "unable to set hostname without a private UTS namespace"
        );
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "uts"}));
        check(v).unwrap();
    }

    #[test]
    fn empty_args_and_relative_cwd_are_rejected() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert_eq!(err(v), "args must not be empty");
        let mut v = base();
        v["process"]["cwd"] = "tmp".into();
        assert_eq!(err(v), "cwd \"tmp\" must be an absolute path");
    }

    #[test]
    fn without_a_mount_namespace_nothing_can_be_masked_and_no_user_namespace_can_mount() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        v["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
        assert!(
            err(v).starts_with("unable to restrict sys entries without a private MNT namespace")
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        v["linux"]["readonlyPaths"] = serde_json::json!(["/proc/sys"]);
        assert!(
            err(v).starts_with("unable to restrict sys entries without a private MNT namespace")
        );
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        v["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert!(err(v).starts_with("a user namespace needs a mount namespace of its own"));
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        assert!(
            check(v).is_ok(),
            "no mount namespace, nothing to hide: accepted"
        );
    }

    #[test]
    fn duplicate_namespaces_are_rejected() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "mount"}]);
        assert_eq!(err(v), "malformed spec file: duplicated ns \"mount\"");
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        assert!(err(v.clone()).contains("needs linux.uidMappings"));
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        check(v).unwrap();
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert_eq!(
            err(v.clone()),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network"}));
        check(v.clone()).unwrap();
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(err(v).contains("not in a separate kernel namespace"));
    }

    #[test]
    fn a_network_namespace_joined_by_path_may_be_the_hosts() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network", "path": "/proc/self/ns/net"}));
        assert_eq!(
            err(v.clone()),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        v["linux"]["namespaces"][2]["path"] = "/nonexistent/net".into();
        assert_eq!(err(v), "invalid netns path");
    }

    #[test]
    fn bind_mounts_take_no_filesystem_options() {
        let mut v = base();
        v["mounts"] = serde_json::json!([
            {"destination": "/a", "type": "bind", "source": "/tmp", "options": ["rbind", "ro", "nosymfollow"]},
            {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=10k"]}
        ]);
        check(v.clone()).unwrap();
        v["mounts"][0]["options"] = serde_json::json!(["rbind", "size=10k"]);
        assert_eq!(
            err(v),
            "invalid mount /a (size=10k): bind mounts cannot have any filesystem-specific options applied"
        );
    }

    #[test]
    fn sysctl_names_in_slash_form_are_judged_in_dot_form() {
        assert_eq!(sysctl_dot_form("kernel/shmmax"), "kernel.shmmax");
        assert_eq!(
            sysctl_dot_form("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding"
        );
        assert_eq!(
            sysctl_dot_form("net.ipv4.ip_forward"),
            "net.ipv4.ip_forward"
        );
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"kernel/shmmax": "1"});
        assert_eq!(
            err(v.clone()),
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace"
        );
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "ipc"}));
        check(v).unwrap();
    }

    #[test]
    fn user_sysctls_need_a_user_namespace() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"user.max_ipc_namespaces": "10"});
        assert_eq!(
            err(v.clone()),
            "setting ucounts without a user namespace not allowed: user.max_ipc_namespaces"
        );
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["uidMappings"] = map.clone();
        v["linux"]["gidMappings"] = map;
        check(v).unwrap();
    }
}
