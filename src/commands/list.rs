use std::io::Write;

use anyhow::{bail, Context, Result};

use crate::cli::{check_args, Arity, ListArgs};
use crate::container::Container;
use crate::state::Root;

/// Go's tabwriter with runc's settings (minwidth 12, padding 3, spaces; the last column unpadded).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < row.len() {
                out.push_str(&" ".repeat(widths[c] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

pub fn run(root: &Root, args: &ListArgs) -> Result<i32> {
    check_args("list", &args.args, Arity::Exact(0))?;
    let mut containers = Vec::new();
    for id in root.ids()? {
        match Container::load(root, &id) {
            Ok(c) => containers.push(c),
            Err(e) => eprintln!("load container {id}: {e:#}"),
        }
    }
    let mut out = std::io::stdout();
    if args.quiet {
        for c in &containers {
            writeln!(out, "{}", c.id()).context("write list")?;
        }
        return Ok(0);
    }
    match args.format.as_str() {
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for c in &containers {
                let s = c.oci_state(c.status(), c.owner());
                rows.push(vec![
                    s.id.to_owned(),
                    s.pid.to_string(),
                    s.status.to_owned(),
                    s.bundle.display().to_string(),
                    s.created.to_owned(),
                    s.owner,
                ]);
            }
            out.write_all(table(&rows).as_bytes())
                .context("write list")?;
        }
        "json" => {
            let states: Vec<_> = containers
                .iter()
                .map(|c| c.oci_state(c.status(), c.owner()))
                .collect();
            let text = if states.is_empty() {
                "null".to_owned()
            } else {
                serde_json::to_string(&states)?
            };
            writeln!(out, "{text}").context("write list")?;
        }
        _ => bail!("invalid format option"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_like_go_tabwriter() {
        let rows = vec![
            vec!["ID".to_owned(), "PID".to_owned(), "OWNER".to_owned()],
            vec![
                "a-long-container-id".to_owned(),
                "42".to_owned(),
                "root".to_owned(),
            ],
        ];
        assert_eq!(
            table(&rows),
            "ID                    PID         OWNER\na-long-container-id   42          root\n"
        );
    }
}
