//! Command line, parsed as runc's is (urfave/cli v1 on Go's `flag` package): long flags with one or two dashes,
//! one-letter aliases (`-b`), `--flag=value` and `--flag value` (the next token is the value even when it starts with
//! a dash), bool flags as `--flag` or `--flag=true|false`, flags after positionals moved ahead of them, except in
//! `kill`, `exec` and `ps`, which take everything after their first positional literally, and `--` ending the flags.
//! Errors are Go's words (docs/runc-compat.md). The flags live in one table per command, which also writes the help.

use std::fmt::Write as _;
use std::path::PathBuf;

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `--flag`, or `--flag=` with one of Go's `strconv.ParseBool` spellings.
    Bool,
    /// `--flag value` or `--flag=value`; the last one given wins.
    Value,
    /// Like `Value`, but every occurrence is kept, in order.
    List,
}

#[derive(Debug)]
struct Flag {
    long: &'static str,
    short: Option<&'static str>,
    kind: Kind,
    help: &'static str,
}

const fn switch(long: &'static str, short: Option<&'static str>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::Bool,
        help,
    }
}

const fn value(long: &'static str, short: Option<&'static str>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::Value,
        help,
    }
}

const fn list(long: &'static str, short: Option<&'static str>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind: Kind::List,
        help,
    }
}

/// One subcommand: its name, its help, and its flags (in groups, so that `run` can share `create`'s).
struct Spec {
    name: &'static str,
    about: &'static str,
    usage: &'static str,
    flags: &'static [&'static [Flag]],
    /// urfave/cli's `SkipArgReorder`: flags end at the first positional argument.
    flags_end_at_first_positional: bool,
}

impl Spec {
    fn flags(&self) -> impl Iterator<Item = &'static Flag> {
        self.flags.iter().flat_map(|group| group.iter())
    }
}

const GLOBAL_FLAGS: &[Flag] = &[
    switch("debug", None, "enable debug logging"),
    value(
        "log",
        None,
        "set the log file to write hull logs to (default is '/dev/stderr')",
    ),
    value(
        "log-format",
        None,
        "set the log format ('text' (default), or 'json') (default: \"text\")",
    ),
    value(
        "root",
        None,
        "root directory for storage of container state (this should be located in tmpfs) (default: \"/run/hull\")",
    ),
    switch(
        "systemd-cgroup",
        None,
        "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:hull:434234\"",
    ),
    value(
        "rootless",
        None,
        "ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")",
    ),
    switch("help", Some("h"), "show help"),
    switch("version", Some("v"), "print the version"),
];

/// Flags `create`, `run` and `exec` share.
const CONSOLE_SOCKET: Flag = value(
    "console-socket",
    None,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
);
const PID_FILE: Flag = value(
    "pid-file",
    None,
    "specify the file to write the process id to",
);
const PRESERVE_FDS: Flag = value(
    "preserve-fds",
    None,
    "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)",
);

const CREATE_FLAGS: &[Flag] = &[
    value(
        "bundle",
        Some("b"),
        "path to the root of the bundle directory, defaults to the current directory",
    ),
    CONSOLE_SOCKET,
    value(
        "pidfd-socket",
        None,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the init process",
    ),
    PID_FILE,
    switch(
        "no-pivot",
        None,
        "do not use pivot root to jail process inside rootfs",
    ),
    switch(
        "no-new-keyring",
        None,
        "do not create a new session keyring for the container",
    ),
    PRESERVE_FDS,
];

const RUN_FLAGS: &[Flag] = &[
    switch("detach", Some("d"), "detach from the container's process"),
    switch("keep", None, "do not delete the container after it exits"),
    switch(
        "no-subreaper",
        None,
        "disable the use of the subreaper used to reap reparented processes",
    ),
];

const EXEC_FLAGS: &[Flag] = &[
    CONSOLE_SOCKET,
    value(
        "pidfd-socket",
        None,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process",
    ),
    value("cwd", None, "current working directory in the container"),
    list("env", Some("e"), "set environment variables"),
    switch("tty", Some("t"), "allocate a pseudo-TTY"),
    value("user", Some("u"), "UID (format: <uid>[:<gid>])"),
    list("additional-gids", Some("g"), "additional gids"),
    value("process", Some("p"), "path to the process.json"),
    switch("detach", Some("d"), "detach from the container's process"),
    PID_FILE,
    value(
        "process-label",
        None,
        "set the asm process label for the process commonly used with selinux",
    ),
    value("apparmor", None, "set the apparmor profile for the process"),
    switch(
        "no-new-privs",
        None,
        "set the no new privileges value for the process",
    ),
    list(
        "cap",
        Some("c"),
        "add a capability to the bounding set for the process",
    ),
    PRESERVE_FDS,
    list(
        "cgroup",
        None,
        "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.",
    ),
    switch("ignore-paused", None, "allow exec in a paused container"),
];

/// The flags `checkpoint` and `restore` share, as runc defines them for both.
const CRIU_FLAGS: &[Flag] = &[
    value("work-path", None, "path for saving work files and logs"),
    switch("tcp-established", None, "allow open tcp connections"),
    switch("ext-unix-sk", None, "allow external unix sockets"),
    switch("shell-job", None, "allow shell jobs"),
    switch("file-locks", None, "handle file locks, for safety"),
    value(
        "manage-cgroups-mode",
        None,
        "cgroups mode: soft|full|strict|ignore (default: soft)",
    ),
    list(
        "empty-ns",
        None,
        "create a namespace, but don't restore its properties",
    ),
    switch(
        "auto-dedup",
        None,
        "enable auto deduplication of memory images",
    ),
    switch(
        "lazy-pages",
        None,
        "use userfaultfd to lazily restore memory pages",
    ),
];

const CHECKPOINT_FLAGS: &[Flag] = &[
    value("image-path", None, "path for saving criu image files"),
    value(
        "parent-path",
        None,
        "path for previous criu image files in pre-dump",
    ),
    switch(
        "leave-running",
        None,
        "leave the process running after checkpointing",
    ),
    switch("tcp-skip-in-flight", None, "skip in-flight tcp connections"),
    switch(
        "link-remap",
        None,
        "allow one to link unlinked files back when possible",
    ),
    value(
        "status-fd",
        None,
        "criu writes \\0 to this FD once lazy-pages is ready",
    ),
    value("page-server", None, "ADDRESS:PORT of the page server"),
    switch(
        "pre-dump",
        None,
        "dump container's memory information only, leave the container running after this",
    ),
];

const RESTORE_FLAGS: &[Flag] = &[
    CONSOLE_SOCKET,
    value("image-path", None, "path to criu image files for restoring"),
    value(
        "bundle",
        Some("b"),
        "path to the root of the bundle directory",
    ),
    switch("detach", Some("d"), "detach from the container's process"),
    PID_FILE,
    switch(
        "no-subreaper",
        None,
        "disable the use of the subreaper used to reap reparented processes",
    ),
    switch(
        "no-pivot",
        None,
        "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk",
    ),
    value(
        "lsm-profile",
        None,
        "Specify an LSM profile to be used during restore in the form of TYPE:NAME.",
    ),
    value(
        "lsm-mount-context",
        None,
        "Specify an LSM mount context to be used during restore.",
    ),
];

const KILL_FLAGS: &[Flag] = &[switch(
    "all",
    Some("a"),
    "send the specified signal to all processes inside the container",
)];

const DELETE_FLAGS: &[Flag] = &[switch(
    "force",
    Some("f"),
    "forcibly deletes the container if it is still running (uses SIGKILL)",
)];

/// `list` and `ps` share runc's `--format` flag.
const TABLE_OR_JSON: Flag = value(
    "format",
    Some("f"),
    "select one of: table or json (default: \"table\")",
);

const LIST_FLAGS: &[Flag] = &[
    TABLE_OR_JSON,
    switch("quiet", Some("q"), "display only container IDs"),
];

const PS_FLAGS: &[Flag] = &[TABLE_OR_JSON];

const EVENTS_FLAGS: &[Flag] = &[
    value(
        "interval",
        None,
        "set the stats collection interval (default: 5s)",
    ),
    switch("stats", None, "display the container's stats then exit"),
];

const SPEC_FLAGS: &[Flag] = &[
    value(
        "bundle",
        Some("b"),
        "path to the root of the bundle directory",
    ),
    switch(
        "rootless",
        None,
        "generate a configuration for a rootless container",
    ),
];

const UPDATE_FLAGS: &[Flag] = &[
    value(
        "resources",
        Some("r"),
        "path to the file containing the resources to update or '-' to read from the standard input",
    ),
    value(
        "blkio-weight",
        None,
        "Specifies per cgroup weight, range is from 10 to 1000",
    ),
    value(
        "cpu-period",
        None,
        "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    value(
        "cpu-quota",
        None,
        "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    value(
        "cpu-burst",
        None,
        "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period",
    ),
    value(
        "cpu-share",
        None,
        "CPU shares (relative weight vs. other containers)",
    ),
    value(
        "cpu-rt-period",
        None,
        "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    value(
        "cpu-rt-runtime",
        None,
        "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    value("cpuset-cpus", None, "CPU(s) to use"),
    value("cpuset-mems", None, "Memory node(s) to use"),
    value("kernel-memory", None, "(obsoleted; do not use)"),
    value("kernel-memory-tcp", None, "(obsoleted; do not use)"),
    value("memory", None, "Memory limit (in bytes)"),
    value(
        "cpu-idle",
        None,
        "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE",
    ),
    value(
        "memory-reservation",
        None,
        "Memory reservation or soft_limit (in bytes)",
    ),
    value(
        "memory-swap",
        None,
        "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
    ),
    value(
        "pids-limit",
        None,
        "Maximum number of pids allowed in the container",
    ),
    value(
        "l3-cache-schema",
        None,
        "The string of Intel RDT/CAT L3 cache schema",
    ),
    value(
        "mem-bw-schema",
        None,
        "The string of Intel RDT/MBA memory bandwidth schema",
    ),
];

const fn command(
    name: &'static str,
    about: &'static str,
    usage: &'static str,
    flags: &'static [&'static [Flag]],
) -> Spec {
    Spec {
        name,
        about,
        usage,
        flags,
        flags_end_at_first_positional: false,
    }
}

const fn literal_after_first_positional(spec: Spec) -> Spec {
    Spec {
        flags_end_at_first_positional: true,
        ..spec
    }
}

/// Every subcommand, in the order `hull --help` lists them.
const COMMANDS: &[Spec] = &[
    command(
        "checkpoint",
        "checkpoint a running container",
        "<container-id>",
        &[CHECKPOINT_FLAGS, CRIU_FLAGS],
    ),
    command(
        "create",
        "create a container",
        "<container-id>",
        &[CREATE_FLAGS],
    ),
    command(
        "delete",
        "delete any resources held by the container often used with detached container",
        "<container-id>",
        &[DELETE_FLAGS],
    ),
    command(
        "events",
        "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
        "<container-id>",
        &[EVENTS_FLAGS],
    ),
    literal_after_first_positional(command(
        "exec",
        "execute new process inside the container",
        "<container-id> <command> [command options]  || -p process.json <container-id>",
        &[EXEC_FLAGS],
    )),
    literal_after_first_positional(command(
        "kill",
        "kill sends the specified signal (default: SIGTERM) to the container's init process",
        "<container-id> [signal]",
        &[KILL_FLAGS],
    )),
    command(
        "list",
        "lists containers started by hull with the given root",
        "",
        &[LIST_FLAGS],
    ),
    command(
        "pause",
        "pause suspends all processes inside the container",
        "<container-id>",
        &[],
    ),
    literal_after_first_positional(command(
        "ps",
        "ps displays the processes running inside a container",
        "<container-id> [ps options]",
        &[PS_FLAGS],
    )),
    command(
        "restore",
        "restore a container from a previous checkpoint",
        "<container-id>",
        &[RESTORE_FLAGS, CRIU_FLAGS],
    ),
    command(
        "resume",
        "resumes all processes that have been previously paused",
        "<container-id>",
        &[],
    ),
    command(
        "run",
        "create and run a container",
        "<container-id>",
        &[CREATE_FLAGS, RUN_FLAGS],
    ),
    command("spec", "create a new specification file", "", &[SPEC_FLAGS]),
    command(
        "start",
        "executes the user defined process in a created container",
        "<container-id>",
        &[],
    ),
    command(
        "state",
        "output the state of a container",
        "<container-id>",
        &[],
    ),
    command(
        "update",
        "update container resource constraints",
        "<container-id>",
        &[UPDATE_FLAGS],
    ),
    command("features", "show the enabled features", "", &[]),
];

/// The global options and the command they precede.
#[derive(Debug)]
pub struct Cli {
    pub root: Option<PathBuf>,
    pub log: Option<String>,
    pub log_format: String,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub rootless: Option<String>,
    pub command: Command,
}

#[derive(Debug)]
pub enum Command {
    Checkpoint(Box<CheckpointArgs>),
    Restore(Box<RestoreArgs>),
    Create(CreateArgs),
    Start(IdArgs),
    State(IdArgs),
    Kill(KillArgs),
    Delete(DeleteArgs),
    Run(RunArgs),
    List(ListArgs),
    Spec(SpecArgs),
    Features(NoArgs),
    Pause(IdArgs),
    Resume(IdArgs),
    Ps(PsArgs),
    Update(Box<UpdateArgs>),
    Events(EventsArgs),
    Exec(Box<ExecArgs>),
}

#[derive(Debug)]
pub struct CheckpointArgs {
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub lazy_pages: bool,
    pub status_fd: i32,
    pub page_server: Option<String>,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: String,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct RestoreArgs {
    pub console_socket: Option<PathBuf>,
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: String,
    pub bundle: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_subreaper: bool,
    pub no_pivot: bool,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct NoArgs {
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct IdArgs {
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub bundle: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

#[derive(Debug)]
pub struct CreateArgs {
    pub opts: CreateOpts,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct RunArgs {
    pub opts: CreateOpts,
    pub detach: bool,
    pub keep: bool,
    pub no_subreaper: bool,
    pub args: Vec<String>,
}

/// runc's `exec` flags. Flags end at the container id; what follows is the command.
#[derive(Debug, Default)]
pub struct ExecArgs {
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<String>,
    pub additional_gids: Vec<String>,
    pub process: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
    pub no_new_privs: bool,
    pub cap: Vec<String>,
    pub preserve_fds: u32,
    pub cgroup: Vec<String>,
    pub ignore_paused: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct KillArgs {
    pub all: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct DeleteArgs {
    pub force: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct ListArgs {
    pub format: String,
    pub quiet: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct EventsArgs {
    pub interval: String,
    pub stats: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct SpecArgs {
    pub bundle: Option<PathBuf>,
    pub rootless: bool,
    pub args: Vec<String>,
}

#[derive(Debug)]
pub struct PsArgs {
    pub format: String,
    pub args: Vec<String>,
}

/// runc's `update` flags; numbers are taken as text and parsed with runc's rules (see `commands::update`).
#[derive(Debug)]
pub struct UpdateArgs {
    pub resources: Option<String>,
    pub blkio_weight: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_burst: Option<String>,
    pub cpu_share: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub memory: Option<String>,
    pub cpu_idle: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<String>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
    pub args: Vec<String>,
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

/// The flags given to one command (or the global flags) and its positional arguments.
#[derive(Default)]
struct Given {
    /// (long name, value); bool flags store "true" or "false".
    values: Vec<(&'static str, String)>,
    positionals: Vec<String>,
}

impl Given {
    fn last(&self, long: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(name, _)| *name == long)
            .map(|(_, v)| v.as_str())
    }

    fn switch(&self, long: &str) -> bool {
        self.last(long) == Some("true")
    }

    fn value(&self, long: &str) -> Option<String> {
        self.last(long).map(str::to_owned)
    }

    fn path(&self, long: &str) -> Option<PathBuf> {
        self.last(long).map(PathBuf::from)
    }

    fn list(&self, long: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(name, _)| *name == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A Go `int` flag, `default` when not given.
    fn int(&self, long: &str, default: i32) -> Result<i32, String> {
        match self.last(long) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("invalid value {v:?} for flag -{long}: parse error")),
        }
    }

    /// A Go `uint` flag: `invalid value "x" for flag -preserve-fds: parse error` otherwise.
    fn count(&self, long: &str) -> Result<u32, String> {
        match self.last(long) {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| format!("invalid value {v:?} for flag -{long}: parse error")),
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// What one flag-parsing pass stopped at.
enum Stop {
    /// Every token was read.
    End,
    /// `-h`/`--help` was given.
    Help,
}

/// Reads `tokens` against `flags` into `given`. With `first_positional_ends_flags`, the first positional and
/// everything after it are positionals (Go's `flag`; for the global flags, that positional is the command). Without,
/// flags may follow positionals (urfave/cli's reordering). `--` always ends the flags.
fn read_flags<'a>(
    tokens: &mut impl Iterator<Item = &'a String>,
    flags: &mut dyn Iterator<Item = &'static Flag>,
    first_positional_ends_flags: bool,
    given: &mut Given,
) -> Result<Stop, String> {
    let flags: Vec<&'static Flag> = flags.collect();
    while let Some(token) = tokens.next() {
        if token == "--" {
            given.positionals.extend(tokens.cloned());
            break;
        }
        let Some(spelled) = token.strip_prefix('-').filter(|f| !f.is_empty()) else {
            given.positionals.push(token.clone());
            if first_positional_ends_flags {
                given.positionals.extend(tokens.cloned());
                break;
            }
            continue;
        };
        let spelled = spelled.strip_prefix('-').unwrap_or(spelled);
        let (name, inline) = match spelled.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (spelled, None),
        };
        let flag = flags
            .iter()
            .find(|f| f.long == name || f.short == Some(name));
        let Some(flag) = flag else {
            if name == "help" || name == "h" {
                return Ok(Stop::Help);
            }
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let value = match flag.kind {
            Kind::Bool => match inline {
                None => "true",
                Some(v) => match parse_bool(v) {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => {
                        return Err(format!(
                            "invalid boolean value {v:?} for -{name}: parse error"
                        ))
                    }
                },
            }
            .to_owned(),
            Kind::Value | Kind::List => match inline {
                Some(v) => v.to_owned(),
                None => tokens
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
            },
        };
        given.values.push((flag.long, value));
    }
    Ok(Stop::End)
}

/// Parses `argv` (program name first) as runc would.
pub fn parse(argv: &[String]) -> Result<Invocation, UsageError> {
    let mut globals = Given::default();
    match read_flags(
        &mut argv.iter().skip(1),
        &mut GLOBAL_FLAGS.iter(),
        true,
        &mut globals,
    ) {
        Ok(Stop::End) => {}
        Ok(Stop::Help) => return Ok(Invocation::Help(app_help())),
        Err(message) => {
            let usage = format!("Incorrect Usage. {message}\n\n{}", app_help());
            return Err(usage_error(message, usage, 1, None));
        }
    }
    if globals.switch("help") {
        return Ok(Invocation::Help(app_help()));
    }
    if globals.switch("version") {
        return Ok(Invocation::Version);
    }
    let positionals = std::mem::take(&mut globals.positionals);
    let Some((name, rest)) = positionals.split_first() else {
        return Ok(Invocation::Help(app_help()));
    };
    if name == "help" || name == "h" {
        return match rest.first() {
            None => Ok(Invocation::Help(app_help())),
            Some(topic) => find(topic)
                .map(|spec| Invocation::Help(command_help(spec)))
                .ok_or_else(|| unknown_command(topic, &globals)),
        };
    }
    let Some(spec) = find(name) else {
        return Err(unknown_command(name, &globals));
    };
    let mut given = Given::default();
    let command = match read_flags(
        &mut rest.iter(),
        &mut spec.flags(),
        spec.flags_end_at_first_positional,
        &mut given,
    ) {
        Ok(Stop::Help) => return Ok(Invocation::Help(command_help(spec))),
        Ok(Stop::End) => build(spec.name, given),
        Err(message) => Err(message),
    };
    let command = command.map_err(|message| {
        let usage = format!("Incorrect Usage: {message}\n\n{}", command_help(spec));
        usage_error(message, usage, 1, Some(&globals))
    })?;
    Ok(Invocation::Run(Box::new(Cli {
        root: globals.path("root"),
        log: globals.value("log"),
        log_format: log_format(Some(&globals)),
        debug: globals.switch("debug"),
        systemd_cgroup: globals.switch("systemd-cgroup"),
        rootless: globals.value("rootless"),
        command,
    })))
}

fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// `--log-format`, `text` unless given (or when the global flags could not be read).
fn log_format(globals: Option<&Given>) -> String {
    globals
        .and_then(|g| g.value("log-format"))
        .unwrap_or_else(|| "text".to_owned())
}

/// A usage error, logged with the global log options when they were read (`globals`).
fn usage_error(message: String, usage: String, code: i32, globals: Option<&Given>) -> UsageError {
    UsageError {
        message,
        usage,
        log: globals.and_then(|g| g.value("log")),
        log_format: log_format(globals),
        code,
    }
}

/// runc 1.1.5: `No help topic for 'nosuchcmd'`, exit 3.
fn unknown_command(name: &str, globals: &Given) -> UsageError {
    usage_error(
        format!("No help topic for '{name}'"),
        String::new(),
        3,
        Some(globals),
    )
}

/// The command's arguments from what was given to it.
fn build(name: &str, g: Given) -> Result<Command, String> {
    let create_opts = |g: &Given| -> Result<CreateOpts, String> {
        Ok(CreateOpts {
            bundle: g.path("bundle"),
            console_socket: g.path("console-socket"),
            pidfd_socket: g.path("pidfd-socket"),
            pid_file: g.path("pid-file"),
            no_pivot: g.switch("no-pivot"),
            no_new_keyring: g.switch("no-new-keyring"),
            preserve_fds: g.count("preserve-fds")?,
        })
    };
    let ids = |g: Given| IdArgs {
        args: g.positionals,
    };
    Ok(match name {
        "checkpoint" => Command::Checkpoint(Box::new(CheckpointArgs {
            image_path: g.path("image-path").filter(|p| !p.as_os_str().is_empty()),
            work_path: g.path("work-path").filter(|p| !p.as_os_str().is_empty()),
            parent_path: g.value("parent-path").filter(|p| !p.is_empty()),
            leave_running: g.switch("leave-running"),
            tcp_established: g.switch("tcp-established"),
            tcp_skip_in_flight: g.switch("tcp-skip-in-flight"),
            link_remap: g.switch("link-remap"),
            ext_unix_sk: g.switch("ext-unix-sk"),
            shell_job: g.switch("shell-job"),
            lazy_pages: g.switch("lazy-pages"),
            status_fd: g.int("status-fd", -1)?,
            page_server: g.value("page-server").filter(|p| !p.is_empty()),
            file_locks: g.switch("file-locks"),
            pre_dump: g.switch("pre-dump"),
            manage_cgroups_mode: g.value("manage-cgroups-mode").unwrap_or_default(),
            empty_ns: g.list("empty-ns"),
            auto_dedup: g.switch("auto-dedup"),
            args: g.positionals,
        })),
        "restore" => Command::Restore(Box::new(RestoreArgs {
            console_socket: g.path("console-socket"),
            image_path: g.path("image-path").filter(|p| !p.as_os_str().is_empty()),
            work_path: g.path("work-path").filter(|p| !p.as_os_str().is_empty()),
            tcp_established: g.switch("tcp-established"),
            ext_unix_sk: g.switch("ext-unix-sk"),
            shell_job: g.switch("shell-job"),
            file_locks: g.switch("file-locks"),
            manage_cgroups_mode: g.value("manage-cgroups-mode").unwrap_or_default(),
            bundle: g.path("bundle"),
            detach: g.switch("detach"),
            pid_file: g.path("pid-file"),
            no_subreaper: g.switch("no-subreaper"),
            no_pivot: g.switch("no-pivot"),
            empty_ns: g.list("empty-ns"),
            auto_dedup: g.switch("auto-dedup"),
            lazy_pages: g.switch("lazy-pages"),
            lsm_profile: g.value("lsm-profile").filter(|p| !p.is_empty()),
            lsm_mount_context: g.value("lsm-mount-context").filter(|p| !p.is_empty()),
            args: g.positionals,
        })),
        "create" => Command::Create(CreateArgs {
            opts: create_opts(&g)?,
            args: g.positionals,
        }),
        "run" => Command::Run(RunArgs {
            opts: create_opts(&g)?,
            detach: g.switch("detach"),
            keep: g.switch("keep"),
            no_subreaper: g.switch("no-subreaper"),
            args: g.positionals,
        }),
        "start" => Command::Start(ids(g)),
        "state" => Command::State(ids(g)),
        "pause" => Command::Pause(ids(g)),
        "resume" => Command::Resume(ids(g)),
        "features" => Command::Features(NoArgs {
            args: g.positionals,
        }),
        "kill" => Command::Kill(KillArgs {
            all: g.switch("all"),
            args: g.positionals,
        }),
        "delete" => Command::Delete(DeleteArgs {
            force: g.switch("force"),
            args: g.positionals,
        }),
        "list" => Command::List(ListArgs {
            format: g.value("format").unwrap_or_else(|| "table".to_owned()),
            quiet: g.switch("quiet"),
            args: g.positionals,
        }),
        "ps" => Command::Ps(PsArgs {
            format: g.value("format").unwrap_or_else(|| "table".to_owned()),
            args: g.positionals,
        }),
        "events" => Command::Events(EventsArgs {
            interval: g.value("interval").unwrap_or_else(|| "5s".to_owned()),
            stats: g.switch("stats"),
            args: g.positionals,
        }),
        "spec" => Command::Spec(SpecArgs {
            bundle: g.path("bundle"),
            rootless: g.switch("rootless"),
            args: g.positionals,
        }),
        "exec" => Command::Exec(Box::new(ExecArgs {
            console_socket: g.path("console-socket"),
            pidfd_socket: g.path("pidfd-socket"),
            cwd: g.value("cwd"),
            env: g.list("env"),
            tty: g.switch("tty"),
            user: g.value("user"),
            additional_gids: g.list("additional-gids"),
            process: g.path("process"),
            detach: g.switch("detach"),
            pid_file: g.path("pid-file"),
            process_label: g.value("process-label"),
            apparmor: g.value("apparmor"),
            no_new_privs: g.switch("no-new-privs"),
            cap: g.list("cap"),
            preserve_fds: g.count("preserve-fds")?,
            cgroup: g.list("cgroup"),
            ignore_paused: g.switch("ignore-paused"),
            args: g.positionals,
        })),
        "update" => Command::Update(Box::new(UpdateArgs {
            resources: g.value("resources"),
            blkio_weight: g.value("blkio-weight"),
            cpu_period: g.value("cpu-period"),
            cpu_quota: g.value("cpu-quota"),
            cpu_burst: g.value("cpu-burst"),
            cpu_share: g.value("cpu-share"),
            cpu_rt_period: g.value("cpu-rt-period"),
            cpu_rt_runtime: g.value("cpu-rt-runtime"),
            cpuset_cpus: g.value("cpuset-cpus"),
            cpuset_mems: g.value("cpuset-mems"),
            kernel_memory: g.value("kernel-memory"),
            kernel_memory_tcp: g.value("kernel-memory-tcp"),
            memory: g.value("memory"),
            cpu_idle: g.value("cpu-idle"),
            memory_reservation: g.value("memory-reservation"),
            memory_swap: g.value("memory-swap"),
            pids_limit: g.value("pids-limit"),
            l3_cache_schema: g.value("l3-cache-schema"),
            mem_bw_schema: g.value("mem-bw-schema"),
            args: g.positionals,
        })),
        other => unreachable!("command {other} is in COMMANDS but has no arguments"),
    })
}

/// `--bundle value, -b value` and its help, aligned as urfave/cli aligns them.
fn options_text(flags: &mut dyn Iterator<Item = &'static Flag>) -> String {
    let rows: Vec<(String, &str)> = flags
        .map(|f| {
            let takes = if f.kind == Kind::Bool { "" } else { " value" };
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

fn app_help() -> String {
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
        options_text(&mut GLOBAL_FLAGS.iter())
    )
}

fn command_help(spec: &Spec) -> String {
    let options = if spec.flags().next().is_some() {
        format!("\nOPTIONS:\n{}", options_text(&mut spec.flags()))
    } else {
        String::new()
    };
    let flags = if options.is_empty() {
        ""
    } else {
        " [command options]"
    };
    format!(
        "NAME:\n   hull {} - {}\n\nUSAGE:\n   hull {}{flags} {}\n{options}",
        spec.name, spec.about, spec.name, spec.usage
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
        assert_eq!(cli.root, Some(PathBuf::from("/r")));
        assert_eq!(cli.log_format, "json");
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
            cli.root,
            Some(PathBuf::from("/run/containerd/runc/default"))
        );
        assert_eq!(cli.log.as_deref(), Some("/b/log.json"));
        assert_eq!(cli.log_format, "json");
        assert!(!cli.debug && !cli.systemd_cgroup && cli.rootless.is_none());
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
                for flag in spec.flags() {
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
            for flag in spec.flags() {
                let given = match flag.kind {
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
