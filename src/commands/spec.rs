use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use crate::cli::{check_args, Arity, SpecArgs};

/// `spec`: write runc's default config.json into the bundle, never over an existing one.
pub fn run(args: &SpecArgs) -> Result<i32> {
    check_args("spec", &args.args, Arity::Exact(0))?;
    let dir = args.bundle.clone().unwrap_or_else(|| ".".into());
    let path = dir.join("config.json");
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("File config.json exists. Remove it first")
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
    };
    file.write_all(crate::default_spec::default_spec(args.rootless).as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
