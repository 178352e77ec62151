//! Command line, parsed like runc's (urfave/cli on Go's flag package): long flags with one or two dashes,
//! `--flag=value` and `--flag value`, `--bool=true|false`, flags and positionals interleaved, and `kill`/`exec`/`ps`
//! taking everything after their first positional literally. clap does the parsing; `normalize` first rewrites Go-style
//! argv into clap's dialect using clap's own table of arguments, so the two can never disagree.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "hull",
    about = "hull is an OCI container runtime, command-line compatible with runc",
    disable_version_flag = true,
    subcommand_required = false
)]
pub struct Cli {
    /// root directory for storage of container state (this should be located in tmpfs)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// set the log file to write hull logs to (default is stderr)
    #[arg(long, value_name = "FILE")]
    pub log: Option<String>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text")]
    pub log_format: String,
    /// enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// enable systemd cgroup support (not supported yet)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, value_name = "VALUE")]
    pub rootless: Option<String>,
    /// print the version
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// create a container
    Create(CreateArgs),
    /// executes the user defined process in a created container
    Start(IdArgs),
    /// output the state of a container
    State(IdArgs),
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(KillArgs),
    /// delete any resources held by the container often used with detached container
    Delete(DeleteArgs),
    /// create and run a container
    Run(RunArgs),
    /// lists containers started by hull with the given root
    List(ListArgs),
    /// create a new specification file
    Spec(SpecArgs),
    /// show the enabled features
    Features(NoArgs),
    /// pause suspends all processes inside the container
    Pause(IdArgs),
    /// resumes all processes that have been previously paused
    Resume(IdArgs),
    /// ps displays the processes running inside a container
    Ps(PsArgs),
    /// update container resource constraints
    Update(Box<UpdateArgs>),
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(EventsArgs),
    /// execute new process inside the container
    Exec(Box<ExecArgs>),
}

#[derive(Args, Debug)]
pub struct NoArgs {
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    #[arg(value_name = "container-id")]
    pub args: Vec<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct CreateOpts {
    /// path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the init process
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,
    /// specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
    #[arg(value_name = "container-id")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    #[arg(value_name = "container-id")]
    pub args: Vec<String>,
}

/// runc's `exec` flags. Flags end at the container id; what follows is the command.
#[derive(Args, Debug, Default)]
pub struct ExecArgs {
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the exec process
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,
    /// current working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// set environment variables
    #[arg(short = 'e', long, value_name = "VAR=VALUE", action = clap::ArgAction::Append)]
    pub env: Vec<String>,
    /// allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID", action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub additional_gids: Vec<String>,
    /// path to the process.json
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// set the apparmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// add a capability to the bounding set for the process
    #[arg(short = 'c', long = "cap", value_name = "CAP", action = clap::ArgAction::Append)]
    pub cap: Vec<String>,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long, value_name = "[CONTROLLER:]PATH", action = clap::ArgAction::Append)]
    pub cgroup: Vec<String>,
    /// allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    #[arg(value_name = "container-id command [command options]")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// send the specified signal to all processes inside the container
    #[arg(short = 'a', long)]
    pub all: bool,
    #[arg(value_name = "container-id [signal]")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// forcibly deletes the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "container-id")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// display only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// set the stats collection interval
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        allow_hyphen_values = true
    )]
    pub interval: String,
    /// display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    #[arg(value_name = "container-id")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// select one of: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    #[arg(value_name = "container-id [ps options]")]
    pub args: Vec<String>,
}

/// runc's `update` flags; numbers are taken as text and parsed with runc's rules (see `commands::update`).
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// path to the file containing the resources to update or '-' to read from the standard input
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<String>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period", value_name = "N")]
    pub cpu_period: Option<String>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", value_name = "N")]
    pub cpu_quota: Option<String>,
    /// CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period
    #[arg(long = "cpu-burst", value_name = "N")]
    pub cpu_burst: Option<String>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share", value_name = "N")]
    pub cpu_share: Option<String>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-rt-period", value_name = "N")]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", value_name = "N")]
    pub cpu_rt_runtime: Option<String>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// (obsoleted; do not use)
    #[arg(long = "kernel-memory", value_name = "SIZE")]
    pub kernel_memory: Option<String>,
    /// (obsoleted; do not use)
    #[arg(long = "kernel-memory-tcp", value_name = "SIZE")]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (in bytes)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE
    #[arg(long = "cpu-idle", value_name = "N")]
    pub cpu_idle: Option<String>,
    /// Memory reservation or soft_limit (in bytes)
    #[arg(long = "memory-reservation", value_name = "SIZE")]
    pub memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "SIZE")]
    pub memory_swap: Option<String>,
    /// Maximum number of pids allowed in the container
    #[arg(long = "pids-limit", value_name = "N")]
    pub pids_limit: Option<String>,
    /// The string of Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema", value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// The string of Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema", value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    #[arg(value_name = "container-id")]
    pub args: Vec<String>,
}

/// Subcommands whose flags end at their first positional argument (urfave/cli `StopOnNthArg = 1`).
const STOP_AFTER_FIRST_POSITIONAL: &[&str] = &["kill", "exec", "ps"];

/// Rewrite Go-flag-style argv into clap's dialect (see the module comment).
pub fn normalize(argv: &[String]) -> Vec<String> {
    let mut top = Cli::command();
    top.build();
    let mut out: Vec<String> = Vec::with_capacity(argv.len() + 1);
    let mut rest = argv.iter();
    if let Some(program) = rest.next() {
        out.push(program.clone());
    }
    let mut current = &top;
    let mut in_subcommand = false;
    let mut stop_after_positional = false;
    while let Some(token) = rest.next() {
        if token == "--" {
            out.push(token.clone());
            out.extend(rest.cloned());
            break;
        }
        if let Some(flag) = token.strip_prefix('-').filter(|f| !f.is_empty()) {
            let flag = flag.strip_prefix('-').unwrap_or(flag);
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (flag, None),
            };
            let arg = current.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || (name.chars().count() == 1 && a.get_short() == name.chars().next())
            });
            let Some(arg) = arg else {
                out.push(token.clone());
                continue;
            };
            let spelled = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("-{name}"),
            };
            if arg.get_action().takes_values() {
                match value {
                    Some(v) => out.push(format!("{spelled}={v}")),
                    // One token, so that a value starting with '-' ("--memory -1") stays a value.
                    None => match rest.next() {
                        Some(v) => out.push(format!("{spelled}={v}")),
                        None => out.push(spelled),
                    },
                }
            } else {
                match value {
                    None | Some("true") | Some("1") => out.push(spelled),
                    Some("false") | Some("0") => {}
                    Some(_) => out.push(token.clone()),
                }
            }
            continue;
        }
        out.push(token.clone());
        if !in_subcommand {
            if let Some(sub) = top.find_subcommand(token) {
                stop_after_positional = STOP_AFTER_FIRST_POSITIONAL.contains(&token.as_str());
                current = sub;
                in_subcommand = true;
            }
        } else if stop_after_positional {
            out.push("--".to_owned());
            out.extend(rest.cloned());
            break;
        }
    }
    out
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
mod tests {
    use super::*;

    fn norm(line: &str) -> Vec<String> {
        let argv: Vec<String> = line.split(' ').map(str::to_owned).collect();
        normalize(&argv)
    }

    fn parse(line: &str) -> Cli {
        Cli::try_parse_from(norm(line)).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm("hull -root /r -log-format=json create -bundle /b -pid-file=/p c1"),
            [
                "hull",
                "--root=/r",
                "--log-format=json",
                "create",
                "--bundle=/b",
                "--pid-file=/p",
                "c1"
            ]
        );
    }

    #[test]
    fn go_runc_create_line_parses() {
        let cli = parse(
            "hull --root /run/containerd/runc/default --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid --no-pivot c1",
        );
        assert_eq!(
            cli.root,
            Some(PathBuf::from("/run/containerd/runc/default"))
        );
        assert_eq!(cli.log.as_deref(), Some("/b/log.json"));
        assert_eq!(cli.log_format, "json");
        let Some(Command::Create(c)) = cli.command else {
            panic!("not create")
        };
        assert_eq!(c.opts.bundle, Some(PathBuf::from("/b")));
        assert_eq!(c.opts.pid_file, Some(PathBuf::from("/b/init.pid")));
        assert!(c.opts.no_pivot);
        assert_eq!(c.args, ["c1"]);
    }

    #[test]
    fn flags_may_follow_positionals() {
        let Some(Command::Delete(d)) = parse("hull delete c1 --force").command else {
            panic!()
        };
        assert!(d.force);
        assert_eq!(d.args, ["c1"]);
    }

    #[test]
    fn bool_flags_take_true_and_false() {
        let Some(Command::Run(r)) =
            parse("hull run -detach=true -no-subreaper=false -keep c1").command
        else {
            panic!()
        };
        assert!(r.detach && r.keep && !r.no_subreaper);
    }

    #[test]
    fn kill_stops_parsing_flags_after_the_id() {
        let Some(Command::Kill(k)) = parse("hull kill --all c1 9").command else {
            panic!()
        };
        assert!(k.all);
        assert_eq!(k.args, ["c1", "9"]);
        let Some(Command::Kill(k)) = parse("hull kill c1 --all").command else {
            panic!()
        };
        assert!(!k.all);
        assert_eq!(k.args, ["c1", "--all"]);
    }

    #[test]
    fn short_flags_keep_working() {
        let Some(Command::List(l)) = parse("hull list -q -f json").command else {
            panic!()
        };
        assert!(l.quiet);
        assert_eq!(l.format, "json");
        assert!(parse("hull -v").version);
    }

    #[test]
    fn preserve_fds_takes_a_number() {
        let Some(Command::Create(c)) = parse("hull create -preserve-fds 2 c1").command else {
            panic!()
        };
        assert_eq!(c.opts.preserve_fds, 2);
    }

    #[test]
    fn events_takes_go_style_interval_and_stats() {
        let Some(Command::Events(e)) = parse("hull events -interval 1s -stats c1").command else {
            panic!()
        };
        assert_eq!((e.interval.as_str(), e.stats), ("1s", true));
        assert_eq!(e.args, ["c1"]);
        let Some(Command::Events(e)) = parse("hull events c1 --interval -1s").command else {
            panic!()
        };
        assert_eq!((e.interval.as_str(), e.stats), ("-1s", false));
        let Some(Command::Events(e)) = parse("hull events --stats=false c1").command else {
            panic!()
        };
        assert_eq!((e.interval.as_str(), e.stats), ("5s", false));
    }

    #[test]
    fn exec_flags_end_at_the_container_id() {
        let Some(Command::Exec(e)) = parse(
            "hull exec -t -e A=1 --env B=2 -u 1000:100 -g 10 -g 20 --cap CAP_KILL -cwd /tmp -preserve-fds=1 --cgroup cpu:sub c1 sh -c --tty",
        )
        .command
        else {
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
        let Some(Command::Exec(e)) =
            parse("hull exec --process /p.json --detach --pid-file /x.pid c1").command
        else {
            panic!()
        };
        assert_eq!(e.process, Some(PathBuf::from("/p.json")));
        assert!(e.detach);
        assert_eq!(e.args, ["c1"]);
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
