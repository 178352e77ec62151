use anyhow::Result;

use crate::cli::{check_args, Arity, CreateArgs};
use crate::create;
use crate::state::Root;

pub fn run(root: &Root, args: &CreateArgs) -> Result<i32> {
    check_args("create", &args.args, Arity::Exact(1))?;
    create::create(root, &args.args[0], &args.opts, true)?;
    Ok(0)
}
