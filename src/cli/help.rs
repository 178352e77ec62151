//! The help texts, laid out as urfave/cli v1 lays out runc's.

use std::fmt::Write as _;

use super::flags::{flatten, Flag, Flags, Kind};
use super::{GlobalFlags, Spec, COMMANDS};

/// `--bundle value, -b value` and its help, aligned as urfave/cli aligns them.
fn options_text(flags: &[(&'static Flag, Kind)]) -> String {
    let rows: Vec<(String, &str)> = flags
        .iter()
        .map(|(f, kind)| {
            let takes = if *kind == Kind::Bool { "" } else { " value" };
            let mut left = format!("--{}{takes}", f.long);
            if let Some(short) = f.short {
                let _ = write!(left, ", -{short}{takes}");
            }
            (left, f.help)
        })
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(left, help)| format!("   {left:width$}  {help}\n"))
        .collect()
}

/// `hull --help`: every command and the global options.
pub fn app_help() -> String {
    let width = COMMANDS
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut commands: String = COMMANDS
        .iter()
        .map(|c| format!("   {:width$}  {}\n", c.name, c.about))
        .collect();
    let _ = writeln!(
        commands,
        "   {:width$}  Shows a list of commands or help for one command",
        "help, h"
    );
    format!(
        "NAME:\n   hull - an OCI container runtime, command-line compatible with runc\n\n\
         USAGE:\n   hull [global options] command [command options] [arguments...]\n\n\
         COMMANDS:\n{commands}\nGLOBAL OPTIONS:\n{}",
        options_text(&flatten(GlobalFlags::TABLE))
    )
}

/// `hull <command> --help`.
pub fn command_help(spec: &Spec) -> String {
    let flags = flatten(spec.flags);
    let (options, placeholder) = if flags.is_empty() {
        (String::new(), "")
    } else {
        (
            format!("\nOPTIONS:\n{}", options_text(&flags)),
            " [command options]",
        )
    };
    format!(
        "NAME:\n   hull {} - {}\n\nUSAGE:\n   hull {}{placeholder} {}\n{options}",
        spec.name, spec.about, spec.name, spec.usage
    )
}
