use std::io::Write;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cli::{check_args, Arity, PsArgs};
use crate::container::Container;
use crate::state::Root;

/// `ps [--format table|json] <id> [ps options]`, as runc: `json` prints the pids of the container's cgroup as a JSON
/// array (`null` when there are none, as Go encodes an empty slice) and a newline; `table` runs the host's
/// `ps` (with `-ef` when no options are given) and prints its header and the lines whose PID column is one of them.
pub fn run(root: &Root, args: &PsArgs) -> Result<i32> {
    check_args("ps", &args.args, Arity::Min(1))?;
    let container = Container::load(root, &args.args[0])?;
    let pids = container
        .state
        .cgroup
        .pids()
        .context("unable to get all container pids")?;
    let mut out = std::io::stdout().lock();
    match args.format.as_str() {
        "json" => {
            let text = if pids.is_empty() {
                "null".to_owned()
            } else {
                serde_json::to_string(&pids).context("encode pids")?
            };
            writeln!(out, "{text}").context("write pids")?;
            return Ok(0);
        }
        "table" => {}
        _ => bail!("invalid format option"),
    }
    let ps_args: Vec<&str> = match &args.args[1..] {
        [] => vec!["-ef"],
        given => given.iter().map(String::as_str).collect(),
    };
    let output = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("run ps")?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!(
            "ps {}: {}: {}",
            ps_args.join(" "),
            output.status,
            text.trim_end()
        );
    }
    for line in filter_ps_output(&text, &pids)? {
        writeln!(out, "{line}").context("write ps output")?;
    }
    Ok(0)
}

/// The header of `ps` output and the lines whose PID column holds one of `pids`.
fn filter_ps_output<'a>(text: &'a str, pids: &[i32]) -> Result<Vec<&'a str>> {
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|t| t == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut kept = vec![header];
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(column).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .with_context(|| format!("unable to parse pid: {field:?}"))?;
        if pids.contains(&pid) {
            kept.push(line);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 09:00 ?        00:00:01 /sbin/init
root        4242       1  0 09:01 ?        00:00:00 sleep 30
root        4243    4242  0 09:01 ?        00:00:00 sh
";

    #[test]
    fn keeps_the_header_and_the_container_lines() {
        assert_eq!(
            filter_ps_output(PS_EF, &[4242, 4243]).unwrap(),
            [
                "UID          PID    PPID  C STIME TTY          TIME CMD",
                "root        4242       1  0 09:01 ?        00:00:00 sleep 30",
                "root        4243    4242  0 09:01 ?        00:00:00 sh",
            ]
        );
    }

    #[test]
    fn a_header_without_pid_or_a_bad_pid_is_an_error() {
        assert_eq!(
            filter_ps_output("USER CMD\nroot x\n", &[1])
                .unwrap_err()
                .to_string(),
            "couldn't find PID field in ps output"
        );
        assert!(filter_ps_output("PID CMD\nx y\n", &[1])
            .unwrap_err()
            .to_string()
            .starts_with("unable to parse pid"));
    }
}
