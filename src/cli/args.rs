//! The flags of hull and of each command, as runc declares them: one declaration gives the parser's table, the
//! help's rows (in this order) and the typed struct the command receives.

use std::path::PathBuf;

use super::flags::{declare_flags, flag, Flag};

declare_flags! {
    /// The global options, read before the command.
    #[derive(Debug)]
    pub struct GlobalFlags {
        pub debug: bool = flag("debug", "enable debug logging"),
        pub log: Option<String> = flag(
            "log",
            "set the log file to write hull logs to (default is '/dev/stderr')",
        ),
        pub log_format: String = flag(
            "log-format",
            "set the log format ('text' (default), or 'json') (default: \"text\")",
        )
        .default("text"),
        pub root: Option<PathBuf> = flag(
            "root",
            "root directory for storage of container state (this should be located in tmpfs) (default: \"/run/hull\")",
        ),
        pub systemd_cgroup: bool = flag(
            "systemd-cgroup",
            "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:hull:434234\"",
        ),
        pub rootless: Option<String> = flag(
            "rootless",
            "ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")",
        ),
        pub help: bool = flag("help", "show help").alias("h"),
        pub version: bool = flag("version", "print the version").alias("v"),
    }
}

/// Flags `create`, `run`, `exec` and `restore` share.
const CONSOLE_SOCKET: Flag = flag(
    "console-socket",
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
);
const PID_FILE: Flag = flag("pid-file", "specify the file to write the process id to");
const PRESERVE_FDS: Flag = flag(
    "preserve-fds",
    "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)",
);
const DETACH: Flag = flag("detach", "detach from the container's process").alias("d");
const NO_SUBREAPER: Flag = flag(
    "no-subreaper",
    "disable the use of the subreaper used to reap reparented processes",
);

declare_flags! {
    /// `create`'s flags, which `run` has too.
    #[derive(Debug, Clone, Default)]
    pub struct CreateOpts {
        pub bundle: Option<PathBuf> = flag(
            "bundle",
            "path to the root of the bundle directory, defaults to the current directory",
        )
        .alias("b"),
        pub console_socket: Option<PathBuf> = CONSOLE_SOCKET,
        pub pidfd_socket: Option<PathBuf> = flag(
            "pidfd-socket",
            "path to an AF_UNIX socket which will receive a file descriptor referencing the init process",
        ),
        pub pid_file: Option<PathBuf> = PID_FILE,
        pub no_pivot: bool = flag("no-pivot", "do not use pivot root to jail process inside rootfs"),
        pub no_new_keyring: bool = flag(
            "no-new-keyring",
            "do not create a new session keyring for the container",
        ),
        pub preserve_fds: u32 = PRESERVE_FDS,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct CreateArgs {
        #[flatten]
        pub opts: CreateOpts,
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct RunArgs {
        #[flatten]
        pub opts: CreateOpts,
        pub detach: bool = DETACH,
        pub keep: bool = flag("keep", "do not delete the container after it exits"),
        pub no_subreaper: bool = NO_SUBREAPER,
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    /// runc's `exec` flags. Flags end at the container id; what follows is the command.
    #[derive(Debug)]
    pub struct ExecArgs {
        pub console_socket: Option<PathBuf> = CONSOLE_SOCKET,
        pub pidfd_socket: Option<PathBuf> = flag(
            "pidfd-socket",
            "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process",
        ),
        pub cwd: Option<String> = flag("cwd", "current working directory in the container"),
        pub env: Vec<String> = flag("env", "set environment variables").alias("e"),
        pub tty: bool = flag("tty", "allocate a pseudo-TTY").alias("t"),
        pub user: Option<String> = flag("user", "UID (format: <uid>[:<gid>])").alias("u"),
        pub additional_gids: Vec<String> = flag("additional-gids", "additional gids").alias("g"),
        pub process: Option<PathBuf> = flag("process", "path to the process.json").alias("p"),
        pub detach: bool = DETACH,
        pub pid_file: Option<PathBuf> = PID_FILE,
        pub process_label: Option<String> = flag(
            "process-label",
            "set the asm process label for the process commonly used with selinux",
        ),
        pub apparmor: Option<String> = flag("apparmor", "set the apparmor profile for the process"),
        pub no_new_privs: bool = flag("no-new-privs", "set the no new privileges value for the process"),
        pub cap: Vec<String> = flag(
            "cap",
            "add a capability to the bounding set for the process",
        )
        .alias("c"),
        pub preserve_fds: u32 = PRESERVE_FDS,
        pub cgroup: Vec<String> = flag(
            "cgroup",
            "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.",
        ),
        pub ignore_paused: bool = flag("ignore-paused", "allow exec in a paused container"),
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    /// The CRIU options `checkpoint` and `restore` share, as runc defines them for both; read by `crate::criu`.
    #[derive(Debug)]
    pub struct CriuFlags {
        pub work_path: Option<PathBuf> =
            flag("work-path", "path for saving work files and logs").empty_is_unset(),
        pub tcp_established: bool = flag("tcp-established", "allow open tcp connections"),
        pub ext_unix_sk: bool = flag("ext-unix-sk", "allow external unix sockets"),
        pub shell_job: bool = flag("shell-job", "allow shell jobs"),
        pub file_locks: bool = flag("file-locks", "handle file locks, for safety"),
        pub manage_cgroups_mode: String = flag(
            "manage-cgroups-mode",
            "cgroups mode: soft|full|strict|ignore (default: soft)",
        ),
        /// Namespaces CRIU makes but does not restore; only `network` is accepted (checked in `crate::criu`).
        pub empty_ns: Vec<String> = flag(
            "empty-ns",
            "create a namespace, but don't restore its properties",
        ),
        pub auto_dedup: bool = flag("auto-dedup", "enable auto deduplication of memory images"),
        pub lazy_pages: bool = flag("lazy-pages", "use userfaultfd to lazily restore memory pages"),
    }
}

declare_flags! {
    /// `checkpoint`'s flags; `crate::criu::checkpoint` reads them.
    #[derive(Debug)]
    pub struct CheckpointArgs {
        pub image_path: Option<PathBuf> =
            flag("image-path", "path for saving criu image files").empty_is_unset(),
        /// Relative to the image path, checked to be a directory.
        pub parent_path: Option<String> = flag(
            "parent-path",
            "path for previous criu image files in pre-dump",
        )
        .empty_is_unset(),
        pub leave_running: bool = flag(
            "leave-running",
            "leave the process running after checkpointing",
        ),
        pub tcp_skip_in_flight: bool = flag("tcp-skip-in-flight", "skip in-flight tcp connections"),
        pub link_remap: bool = flag(
            "link-remap",
            "allow one to link unlinked files back when possible",
        ),
        pub status_fd: i32 = flag(
            "status-fd",
            "criu writes \\0 to this FD once lazy-pages is ready",
        )
        .default("-1"),
        /// `ADDRESS:PORT`, checked by `crate::criu::checkpoint`.
        pub page_server: Option<String> =
            flag("page-server", "ADDRESS:PORT of the page server").empty_is_unset(),
        pub pre_dump: bool = flag(
            "pre-dump",
            "dump container's memory information only, leave the container running after this",
        ),
        #[flatten]
        pub criu: CriuFlags,
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    /// `restore`'s flags; `crate::criu::restore` reads them.
    #[derive(Debug)]
    pub struct RestoreArgs {
        pub console_socket: Option<PathBuf> = CONSOLE_SOCKET,
        pub image_path: Option<PathBuf> =
            flag("image-path", "path to criu image files for restoring").empty_is_unset(),
        pub bundle: Option<PathBuf> =
            flag("bundle", "path to the root of the bundle directory").alias("b"),
        pub detach: bool = DETACH,
        pub pid_file: Option<PathBuf> = PID_FILE,
        pub no_subreaper: bool = NO_SUBREAPER,
        pub no_pivot: bool = flag(
            "no-pivot",
            "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk",
        ),
        pub lsm_profile: Option<String> = flag(
            "lsm-profile",
            "Specify an LSM profile to be used during restore in the form of TYPE:NAME.",
        )
        .empty_is_unset(),
        pub lsm_mount_context: Option<String> = flag(
            "lsm-mount-context",
            "Specify an LSM mount context to be used during restore.",
        )
        .empty_is_unset(),
        #[flatten]
        pub criu: CriuFlags,
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    /// A command with no flags: only its positionals.
    #[derive(Debug)]
    pub struct NoFlags {
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct KillArgs {
        pub all: bool = flag(
            "all",
            "send the specified signal to all processes inside the container",
        )
        .alias("a"),
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct DeleteArgs {
        pub force: bool = flag(
            "force",
            "forcibly deletes the container if it is still running (uses SIGKILL)",
        )
        .alias("f"),
        #[positionals]
        pub args: Vec<String>,
    }
}

/// `list` and `ps` share runc's `--format` flag.
const TABLE_OR_JSON: Flag = flag(
    "format",
    "select one of: table or json (default: \"table\")",
)
.alias("f")
.default("table");

declare_flags! {
    #[derive(Debug)]
    pub struct ListArgs {
        pub format: String = TABLE_OR_JSON,
        pub quiet: bool = flag("quiet", "display only container IDs").alias("q"),
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct PsArgs {
        pub format: String = TABLE_OR_JSON,
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct EventsArgs {
        /// A Go duration, checked by `commands::events`.
        pub interval: String = flag(
            "interval",
            "set the stats collection interval (default: 5s)",
        )
        .default("5s"),
        pub stats: bool = flag("stats", "display the container's stats then exit"),
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    #[derive(Debug)]
    pub struct SpecArgs {
        pub bundle: Option<PathBuf> =
            flag("bundle", "path to the root of the bundle directory").alias("b"),
        pub rootless: bool = flag(
            "rootless",
            "generate a configuration for a rootless container",
        ),
        #[positionals]
        pub args: Vec<String>,
    }
}

declare_flags! {
    /// runc's `update` flags; numbers are taken as text and parsed with runc's rules (see `commands::update`).
    #[derive(Debug)]
    pub struct UpdateArgs {
        pub resources: Option<String> = flag(
            "resources",
            "path to the file containing the resources to update or '-' to read from the standard input",
        )
        .alias("r"),
        pub blkio_weight: Option<String> = flag(
            "blkio-weight",
            "Specifies per cgroup weight, range is from 10 to 1000",
        ),
        pub cpu_period: Option<String> = flag(
            "cpu-period",
            "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
        ),
        pub cpu_quota: Option<String> = flag(
            "cpu-quota",
            "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
        ),
        pub cpu_burst: Option<String> = flag(
            "cpu-burst",
            "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period",
        ),
        pub cpu_share: Option<String> = flag(
            "cpu-share",
            "CPU shares (relative weight vs. other containers)",
        ),
        pub cpu_rt_period: Option<String> = flag(
            "cpu-rt-period",
            "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default",
        ),
        pub cpu_rt_runtime: Option<String> = flag(
            "cpu-rt-runtime",
            "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period",
        ),
        pub cpuset_cpus: Option<String> = flag("cpuset-cpus", "CPU(s) to use"),
        pub cpuset_mems: Option<String> = flag("cpuset-mems", "Memory node(s) to use"),
        pub kernel_memory: Option<String> = flag("kernel-memory", "(obsoleted; do not use)"),
        pub kernel_memory_tcp: Option<String> = flag("kernel-memory-tcp", "(obsoleted; do not use)"),
        pub memory: Option<String> = flag("memory", "Memory limit (in bytes)"),
        pub cpu_idle: Option<String> = flag(
            "cpu-idle",
            "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE",
        ),
        pub memory_reservation: Option<String> = flag(
            "memory-reservation",
            "Memory reservation or soft_limit (in bytes)",
        ),
        pub memory_swap: Option<String> = flag(
            "memory-swap",
            "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
        ),
        pub pids_limit: Option<String> = flag(
            "pids-limit",
            "Maximum number of pids allowed in the container",
        ),
        pub l3_cache_schema: Option<String> = flag(
            "l3-cache-schema",
            "The string of Intel RDT/CAT L3 cache schema",
        ),
        pub mem_bw_schema: Option<String> = flag(
            "mem-bw-schema",
            "The string of Intel RDT/MBA memory bandwidth schema",
        ),
        #[positionals]
        pub args: Vec<String>,
    }
}
