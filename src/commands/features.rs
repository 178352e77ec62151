use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{check_args, Arity, NoFlags};

pub fn run(args: &NoFlags) -> Result<i32> {
    check_args("features", &args.args, Arity::Exact(0))?;
    std::io::stdout()
        .write_all(crate::features::features_json().as_bytes())
        .context("write features")?;
    Ok(0)
}
