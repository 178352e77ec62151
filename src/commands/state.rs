use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{check_args, Arity, NoFlags};
use crate::container::Container;
use crate::state::Root;

/// `state <id>`: the OCI state, 2-space indented, no trailing newline (as runc prints it).
pub fn run(root: &Root, args: &NoFlags) -> Result<i32> {
    check_args("state", &args.args, Arity::Exact(1))?;
    let container = Container::load(root, &args.args[0])?;
    let status = container.status();
    let text = serde_json::to_string_pretty(&container.oci_state(status, String::new()))
        .context("encode state")?;
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("write state")?;
    Ok(0)
}
