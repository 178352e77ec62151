//! Whether hull runs rootless: `--rootless true|false|auto` as in runc, where `auto` (the default) means hull's
//! effective uid is not 0. A rootless hull may not be able to make the container's cgroup: runc's rule applies
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
        "auto" => !nix::unistd::geteuid().is_root(),
        other => bail!("invalid value {other:?} for --rootless: use true, false or auto"),
    };
    let _ = ROOTLESS.set(rootless);
    Ok(())
}

pub fn enabled() -> bool {
    ROOTLESS.get().copied().unwrap_or(false)
}
