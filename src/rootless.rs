//! Whether hull runs rootless: `--rootless true|false|auto` as in runc, where `auto` (the default) means hull's
//! effective uid is not 0, or hull runs in a user namespace that does not map every uid to itself. A rootless hull may not be able to make the container's cgroup: runc's rule applies
//! (without a cgroup the container must ask for no limits and no `cgroupsPath`), and device rules, which need
//! privileges no unprivileged user has, are left out.

use std::sync::OnceLock;

use anyhow::{bail, Result};

static ROOTLESS: OnceLock<bool> = OnceLock::new();

/// Settle the mode from the `--rootless` value, once, before any command runs.
pub fn init(flag: Option<&str>) -> Result<()> {
    let rootless = match flag.unwrap_or("auto") {
        "true" => true,
        "false" => false,
        "auto" => !nix::unistd::geteuid().is_root() || in_user_namespace(),
        other => bail!("invalid value {other:?} for --rootless: use true, false or auto"),
    };
    let _ = ROOTLESS.set(rootless);
    Ok(())
}

/// Whether this process runs in a user namespace that does not map every uid to itself (runc's
/// `userns.RunningInUserNS`): euid 0 there, as rootless podman and RootlessKit run the runtime, is still an
/// unprivileged user on the host.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| {
        let fields: Vec<&str> = map.split_whitespace().collect();
        fields != ["0", "0", "4294967295"]
    })
}

pub fn enabled() -> bool {
    ROOTLESS.get().copied().unwrap_or(false)
}
