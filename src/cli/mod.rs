//! Command line, parsed as runc's is (urfave/cli v1 on Go's `flag` package): long flags with one or two dashes,
//! one-letter aliases (`-b`), `--flag=value` and `--flag value` (the next token is the value even when it starts with
//! a dash), bool flags as `--flag` or `--flag=true|false`, flags after positionals moved ahead of them, except in
//! `kill`, `exec` and `ps`, which take everything after their first positional literally, and `--` ending the flags.
//! Errors are Go's words (docs/runc-compat.md). Each command's flags are declared once, in `args`, as a typed struct
//! that also gives the parser's table (`flags`) and the help (`help`).

mod args;
mod flags;
mod help;

pub use args::{
    CheckpointArgs, CreateArgs, CreateOpts, DeleteArgs, EventsArgs, ExecArgs, GlobalFlags,
    KillArgs, ListArgs, NoFlags, PsArgs, RestoreArgs, RunArgs, SpecArgs, UpdateArgs,
};
use flags::{flatten, read_flags, Entry, Flags, Given, Stop};
use help::{app_help, command_help};

/// One subcommand: its name, its help, its flags, and how its arguments are made.
pub struct Spec {
    name: &'static str,
    about: &'static str,
    usage: &'static str,
    flags: &'static [Entry],
    /// urfave/cli's `SkipArgReorder`: flags end at the first positional argument.
    flags_end_at_first_positional: bool,
    build: fn(&mut Given) -> Command,
}

/// Declares `Command`, one variant per subcommand holding its typed arguments, and `COMMANDS`, their table in the
/// order `hull --help` lists them; the flags and the arguments of a command come from the one type it names.
macro_rules! commands {
    ($(
        $variant:ident($args:ty) {
            name: $name:literal,
            about: $about:literal,
            usage: $usage:literal,
            $(flags_end_at_first_positional: $literal:literal,)?
        }
    )*) => {
        /// The command and its arguments.
        #[derive(Debug)]
        pub enum Command {
            $($variant($args),)*
        }

        const COMMANDS: &[Spec] = &[$(
            Spec {
                name: $name,
                about: $about,
                usage: $usage,
                flags: <$args as Flags>::TABLE,
                flags_end_at_first_positional: false $(|| $literal)?,
                build: |given| Command::$variant(<$args as Flags>::read(given)),
            },
        )*];
    };
}

commands! {
    Checkpoint(Box<CheckpointArgs>) {
        name: "checkpoint",
        about: "checkpoint a running container",
        usage: "<container-id>",
    }
    Create(CreateArgs) {
        name: "create",
        about: "create a container",
        usage: "<container-id>",
    }
    Delete(DeleteArgs) {
        name: "delete",
        about: "delete any resources held by the container often used with detached container",
        usage: "<container-id>",
    }
    Events(EventsArgs) {
        name: "events",
        about: "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
        usage: "<container-id>",
    }
    Exec(Box<ExecArgs>) {
        name: "exec",
        about: "execute new process inside the container",
        usage: "<container-id> <command> [command options]  || -p process.json <container-id>",
        flags_end_at_first_positional: true,
    }
    Kill(KillArgs) {
        name: "kill",
        about: "kill sends the specified signal (default: SIGTERM) to the container's init process",
        usage: "<container-id> [signal]",
        flags_end_at_first_positional: true,
    }
    List(ListArgs) {
        name: "list",
        about: "lists containers started by hull with the given root",
        usage: "",
    }
    Pause(NoFlags) {
        name: "pause",
        about: "pause suspends all processes inside the container",
        usage: "<container-id>",
    }
    Ps(PsArgs) {
        name: "ps",
        about: "ps displays the processes running inside a container",
        usage: "<container-id> [ps options]",
        flags_end_at_first_positional: true,
    }
    Restore(Box<RestoreArgs>) {
        name: "restore",
        about: "restore a container from a previous checkpoint",
        usage: "<container-id>",
    }
    Resume(NoFlags) {
        name: "resume",
        about: "resumes all processes that have been previously paused",
        usage: "<container-id>",
    }
    Run(RunArgs) {
        name: "run",
        about: "create and run a container",
        usage: "<container-id>",
    }
    Spec(SpecArgs) {
        name: "spec",
        about: "create a new specification file",
        usage: "",
    }
    Start(NoFlags) {
        name: "start",
        about: "executes the user defined process in a created container",
        usage: "<container-id>",
    }
    State(NoFlags) {
        name: "state",
        about: "output the state of a container",
        usage: "<container-id>",
    }
    Update(Box<UpdateArgs>) {
        name: "update",
        about: "update container resource constraints",
        usage: "<container-id>",
    }
    Features(NoFlags) {
        name: "features",
        about: "show the enabled features",
        usage: "",
    }
}

/// The global options and the command they precede.
#[derive(Debug)]
pub struct Cli {
    pub global: GlobalFlags,
    pub command: Command,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Cli>),
    /// `--help`, `help [command]` or no command at all: this text goes to stdout.
    Help(String),
    Version,
}

/// A command line runc would refuse, with what to print (see docs/runc-compat.md, "Argument checks and unknown
/// flags").
#[derive(Debug)]
pub struct UsageError {
    /// Go's words: `flag provided but not defined: -bogus`.
    pub message: String,
    /// `Incorrect Usage: <message>` (a command's flag) or `Incorrect Usage. <message>` (a global one) and the help;
    /// for stdout. Empty for an unknown command.
    pub usage: String,
    /// The global log options, when they were read before the error: the error is logged with them.
    pub log: Option<String>,
    pub log_format: String,
    /// runc's exit code: 1, or 3 for an unknown command.
    pub code: i32,
}

/// Parses `argv` (program name first) as runc would.
pub fn parse(argv: &[String]) -> Result<Invocation, UsageError> {
    let mut given = Given::default();
    let read = read_flags(
        &mut argv.iter().skip(1),
        &flatten(GlobalFlags::TABLE),
        true,
        &mut given,
    );
    let global = match read {
        Ok(Stop::End) => GlobalFlags::read(&mut given),
        Ok(Stop::Help) => return Ok(Invocation::Help(app_help())),
        Err(message) => {
            let usage = format!("Incorrect Usage. {message}\n\n{}", app_help());
            return Err(usage_error(message, usage, 1, None));
        }
    };
    if global.help {
        return Ok(Invocation::Help(app_help()));
    }
    if global.version {
        return Ok(Invocation::Version);
    }
    let positionals = std::mem::take(&mut given.positionals);
    let Some((name, rest)) = positionals.split_first() else {
        return Ok(Invocation::Help(app_help()));
    };
    if name == "help" || name == "h" {
        return match rest.first() {
            None => Ok(Invocation::Help(app_help())),
            Some(topic) => find(topic)
                .map(|spec| Invocation::Help(command_help(spec)))
                .ok_or_else(|| unknown_command(topic, &global)),
        };
    }
    let Some(spec) = find(name) else {
        return Err(unknown_command(name, &global));
    };
    let mut given = Given::default();
    let command = match read_flags(
        &mut rest.iter(),
        &flatten(spec.flags),
        spec.flags_end_at_first_positional,
        &mut given,
    ) {
        Ok(Stop::Help) => return Ok(Invocation::Help(command_help(spec))),
        Ok(Stop::End) => {
            let command = (spec.build)(&mut given);
            given.error.map_or(Ok(command), Err)
        }
        Err(message) => Err(message),
    };
    let command = command.map_err(|message| {
        let usage = format!("Incorrect Usage: {message}\n\n{}", command_help(spec));
        usage_error(message, usage, 1, Some(&global))
    })?;
    Ok(Invocation::Run(Box::new(Cli { global, command })))
}

fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// A usage error, logged with the global log options when they were read (`global`).
fn usage_error(
    message: String,
    usage: String,
    code: i32,
    global: Option<&GlobalFlags>,
) -> UsageError {
    UsageError {
        message,
        usage,
        log: global.and_then(|g| g.log.clone()),
        log_format: global.map_or_else(|| "text".to_owned(), |g| g.log_format.clone()),
        code,
    }
}

/// runc 1.1.5: `No help topic for 'nosuchcmd'`, exit 3.
fn unknown_command(name: &str, global: &GlobalFlags) -> UsageError {
    usage_error(
        format!("No help topic for '{name}'"),
        String::new(),
        3,
        Some(global),
    )
}

/// runc's `checkArgs`: the positional count a command needs, and its message when the count is wrong.
pub enum Arity {
    Exact(usize),
    Min(usize),
    Max(usize),
}

pub fn check_args(command: &str, args: &[String], arity: Arity) -> anyhow::Result<()> {
    let (ok, phrase, n) = match arity {
        Arity::Exact(n) => (args.len() == n, "exactly", n),
        Arity::Min(n) => (args.len() >= n, "a minimum of", n),
        Arity::Max(n) => (args.len() <= n, "a maximum of", n),
    };
    if ok {
        return Ok(());
    }
    anyhow::bail!("hull: {command:?} requires {phrase} {n} argument(s)")
}

#[cfg(test)]
pub mod tests {
    use std::path::PathBuf;

    use super::flags::Kind;
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    fn parse_line(line: &str) -> Cli {
        match parse(&argv(line)) {
            Ok(Invocation::Run(cli)) => *cli,
            other => panic!("{line}: expected a command, got {other:?}"),
        }
    }

    /// The command a test line names, for tests in other modules.
    pub fn command(line: &str) -> Command {
        parse_line(line).command
    }

    fn refused(line: &str) -> UsageError {
        match parse(&argv(line)) {
            Err(e) => e,
            Ok(other) => panic!("{line}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn single_dash_long_flags_and_inline_values_are_read() {
        let cli = parse_line("hull -root /r -log-format=json create -bundle /b -pid-file=/p c1");
        assert_eq!(cli.global.root, Some(PathBuf::from("/r")));
        assert_eq!(cli.global.log_format, "json");
        let Command::Create(c) = cli.command else {
            panic!("not create")
        };
        assert_eq!(c.opts.bundle, Some(PathBuf::from("/b")));
        assert_eq!(c.opts.pid_file, Some(PathBuf::from("/p")));
        assert_eq!(c.args, ["c1"]);
    }

    #[test]
    fn go_runc_create_line_parses() {
        let cli = parse_line(
            "hull --root /run/containerd/runc/default --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid --no-pivot c1",
        );
        assert_eq!(
            cli.global.root,
            Some(PathBuf::from("/run/containerd/runc/default"))
        );
        assert_eq!(cli.global.log.as_deref(), Some("/b/log.json"));
        assert_eq!(cli.global.log_format, "json");
        assert!(!cli.global.debug && !cli.global.systemd_cgroup && cli.global.rootless.is_none());
        let Command::Create(c) = cli.command else {
            panic!("not create")
        };
        assert_eq!(c.opts.bundle, Some(PathBuf::from("/b")));
        assert_eq!(c.opts.pid_file, Some(PathBuf::from("/b/init.pid")));
        assert!(c.opts.no_pivot && !c.opts.no_new_keyring);
        assert_eq!(c.opts.preserve_fds, 0);
        assert_eq!(c.args, ["c1"]);
    }

    #[test]
    fn flags_may_follow_positionals() {
        let Command::Delete(d) = command("hull delete c1 --force") else {
            panic!()
        };
        assert!(d.force);
        assert_eq!(d.args, ["c1"]);
    }

    #[test]
    fn bool_flags_take_go_bool_spellings() {
        let Command::Run(r) = command("hull run -detach=true -no-subreaper=false -keep c1") else {
            panic!()
        };
        assert!(r.detach && r.keep && !r.no_subreaper);
        let Command::Run(r) = command("hull run -d -detach=F --keep=1 c1") else {
            panic!()
        };
        assert!(!r.detach && r.keep, "the last spelling wins");
    }

    #[test]
    fn kill_stops_parsing_flags_after_the_id() {
        let Command::Kill(k) = command("hull kill --all c1 9") else {
            panic!()
        };
        assert!(k.all);
        assert_eq!(k.args, ["c1", "9"]);
        let Command::Kill(k) = command("hull kill c1 --all") else {
            panic!()
        };
        assert!(!k.all);
        assert_eq!(k.args, ["c1", "--all"]);
    }

    #[test]
    fn double_dash_ends_the_flags() {
        let Command::Delete(d) = command("hull delete -- --force") else {
            panic!()
        };
        assert!(!d.force);
        assert_eq!(d.args, ["--force"]);
    }

    #[test]
    fn short_aliases_keep_working() {
        let Command::List(l) = command("hull list -q -f json") else {
            panic!()
        };
        assert!(l.quiet);
        assert_eq!(l.format, "json");
        let Command::List(l) = command("hull list") else {
            panic!()
        };
        assert_eq!((l.format.as_str(), l.quiet), ("table", false));
        assert!(matches!(parse(&argv("hull -v")), Ok(Invocation::Version)));
        assert!(matches!(
            parse(&argv("hull --version")),
            Ok(Invocation::Version)
        ));
    }

    #[test]
    fn preserve_fds_takes_a_number() {
        let Command::Create(c) = command("hull create -preserve-fds 2 c1") else {
            panic!()
        };
        assert_eq!(c.opts.preserve_fds, 2);
        let e = refused("hull create --preserve-fds x c1");
        assert_eq!(
            e.message,
            "invalid value \"x\" for flag -preserve-fds: parse error"
        );
    }

    #[test]
    fn events_takes_go_style_interval_and_stats() {
        let Command::Events(e) = command("hull events -interval 1s -stats c1") else {
            panic!()
        };
        assert_eq!((e.interval.as_str(), e.stats), ("1s", true));
        assert_eq!(e.args, ["c1"]);
        let Command::Events(e) = command("hull events c1 --interval -1s") else {
            panic!()
        };
        assert_eq!((e.interval.as_str(), e.stats), ("-1s", false));
        let Command::Events(e) = command("hull events --stats=false c1") else {
            panic!()
        };
        assert_eq!((e.interval.as_str(), e.stats), ("5s", false));
    }

    #[test]
    fn exec_flags_end_at_the_container_id() {
        let Command::Exec(e) = command(
            "hull exec -t -e A=1 --env B=2 -u 1000:100 -g 10 -g 20 --cap CAP_KILL -cwd /tmp -preserve-fds=1 --cgroup cpu:sub c1 sh -c --tty",
        ) else {
            panic!()
        };
        assert!(e.tty && !e.detach);
        assert_eq!(e.env, ["A=1", "B=2"]);
        assert_eq!(e.user.as_deref(), Some("1000:100"));
        assert_eq!(e.additional_gids, ["10", "20"]);
        assert_eq!(e.cap, ["CAP_KILL"]);
        assert_eq!(e.cwd.as_deref(), Some("/tmp"));
        assert_eq!(e.preserve_fds, 1);
        assert_eq!(e.cgroup, ["cpu:sub"]);
        assert_eq!(e.args, ["c1", "sh", "-c", "--tty"]);
        let Command::Exec(e) = command("hull exec --process /p.json --detach --pid-file /x.pid c1")
        else {
            panic!()
        };
        assert_eq!(e.process, Some(PathBuf::from("/p.json")));
        assert_eq!(e.pid_file, Some(PathBuf::from("/x.pid")));
        assert!(e.detach);
        assert_eq!(e.args, ["c1"]);
    }

    #[test]
    fn criu_flags_are_shared_and_empty_paths_are_unset() {
        let Command::Checkpoint(c) =
            command("hull checkpoint --image-path= --work-path /w --empty-ns network c1")
        else {
            panic!()
        };
        assert_eq!((c.image_path, c.status_fd), (None, -1));
        assert_eq!(c.criu.work_path, Some(PathBuf::from("/w")));
        assert_eq!(c.criu.empty_ns, ["network"]);
        let Command::Restore(r) = command("hull restore --lsm-profile= --work-path= c1") else {
            panic!()
        };
        assert_eq!((r.lsm_profile, r.criu.work_path), (None, None));
        let Command::Checkpoint(c) = command("hull checkpoint -status-fd 3 --shell-job c1") else {
            panic!()
        };
        assert_eq!(c.status_fd, 3);
        assert!(c.criu.shell_job);
    }

    #[test]
    fn errors_use_go_flag_words() {
        let e = refused("hull create --bogus c1");
        assert_eq!(e.message, "flag provided but not defined: -bogus");
        assert!(
            e.usage
                .starts_with("Incorrect Usage: flag provided but not defined: -bogus\n\nNAME:\n   hull create - "),
            "{}",
            e.usage
        );
        assert_eq!(e.code, 1);
        let e = refused("hull --log-format json --log /l create --bundle");
        assert_eq!(e.message, "flag needs an argument: -bundle");
        assert_eq!(
            (e.log.as_deref(), e.log_format.as_str()),
            (Some("/l"), "json")
        );
        let e = refused("hull delete --force=maybe c1");
        assert_eq!(
            e.message,
            "invalid boolean value \"maybe\" for -force: parse error"
        );
        let e = refused("hull exec -td c1 sh");
        assert_eq!(
            e.message, "flag provided but not defined: -td",
            "runc has no combined short flags"
        );
        let e = refused("hull --bogus state c1");
        assert!(
            e.usage.starts_with(
                "Incorrect Usage. flag provided but not defined: -bogus\n\nNAME:\n   hull - "
            ),
            "{}",
            e.usage
        );
        assert_eq!(e.log_format, "text");
    }

    #[test]
    fn an_unknown_command_exits_3_as_runc_does() {
        let e = refused("hull --log-format json nosuch c1");
        assert_eq!(e.message, "No help topic for 'nosuch'");
        assert_eq!((e.code, e.log_format.as_str()), (3, "json"));
        assert!(e.usage.is_empty());
    }

    #[test]
    fn help_lists_every_command_and_flag() {
        for line in ["hull", "hull --help", "hull -h", "hull help"] {
            let Ok(Invocation::Help(text)) = parse(&argv(line)) else {
                panic!("{line}: no help")
            };
            for spec in COMMANDS {
                assert!(
                    text.contains(&format!("\n   {} ", spec.name)),
                    "{line}: {} missing from\n{text}",
                    spec.name
                );
            }
            assert!(text.contains("--log-format value"), "{text}");
        }
        for spec in COMMANDS {
            for line in [
                format!("hull {} --help", spec.name),
                format!("hull help {}", spec.name),
            ] {
                let Ok(Invocation::Help(text)) = parse(&argv(&line)) else {
                    panic!("{line}: no help")
                };
                assert!(text.starts_with(&format!("NAME:\n   hull {} - ", spec.name)));
                for (flag, _) in flatten(spec.flags) {
                    assert!(
                        text.contains(&format!("--{}", flag.long)),
                        "{line}: --{} missing from\n{text}",
                        flag.long
                    );
                }
            }
        }
        let Ok(Invocation::Help(text)) = parse(&argv("hull create --help")) else {
            panic!()
        };
        assert!(
            text.contains("   --bundle value, -b value  path to the root of the bundle directory"),
            "{text}"
        );
    }

    /// Every flag in the tables lands in its command's arguments: given with a value that differs from its default,
    /// the parsed arguments differ from those parsed without it.
    #[test]
    fn every_flag_reaches_its_command() {
        for spec in COMMANDS {
            let bare = format!("{:?}", command(&format!("hull {} c1", spec.name)));
            for (flag, kind) in flatten(spec.flags) {
                let given = match kind {
                    Kind::Bool => format!("--{}", flag.long),
                    Kind::Value | Kind::List => format!("--{}=7", flag.long),
                };
                let line = format!("hull {} {given} c1", spec.name);
                let parsed = format!("{:?}", command(&line));
                assert_ne!(parsed, bare, "{line}: the flag changed nothing");
            }
        }
    }

    #[test]
    fn check_args_messages_match_runc() {
        let none: Vec<String> = vec![];
        let err = check_args("kill", &none, Arity::Min(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hull: \"kill\" requires a minimum of 1 argument(s)"
        );
        assert!(check_args("start", &["a".to_owned()], Arity::Exact(1)).is_ok());
        assert!(check_args("kill", &["a".into(), "b".into(), "c".into()], Arity::Max(2)).is_err());
    }
}
