//! hull: an OCI container runtime with runc's command line.
#![cfg_attr(not(test), no_main)]

mod affinity;
mod cgroups;
mod channel;
mod child;
mod cli;
mod commands;
mod console;
mod container;
mod copyup;
mod create;
mod credentials;
mod criu;
mod dbus;
mod default_spec;
mod enter;
mod exeseal;
mod fdpass;
mod features;
mod foreground;
#[cfg(test)]
mod fuzz;
mod goduration;
mod hooks;
mod hostmounts;
mod idmap;
mod init;
mod inroot;
mod logger;
mod lsm;
mod mempolicy;
mod mountinfo;
mod mountopts;
mod namespaces;
mod netdev;
mod notify;
mod oci;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod preseal;
mod program;
mod protocol;
mod resctrl;
mod rootfs;
mod rootless;
mod sched;
mod seccomp;
mod signal;
mod spawn;
mod spec;
mod start;
mod state;
mod subid;
mod sys;
mod timefmt;
mod units;

use std::path::PathBuf;

// oci-spec's `regex` must be vendor/regex-lite-shim (Cargo.toml's [patch.crates-io]): the real crate adds ~570 KiB
// to the binary. Only the shim has this marker, so the build fails if the patch is removed or stops applying.
const _: () = regex::HULL_REGEX_LITE_SHIM; // error here: the real regex crate replaced vendor/regex-lite-shim

use anyhow::{bail, Context, Result};
use cli::{Cli, Command, Invocation};

fn version_text() -> String {
    format!(
        "hull version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("HULL_COMMIT").unwrap_or("unknown"),
        crate::oci::OCI_VERSION
    )
}

/// `--root`, or `/run/hull` (`$XDG_RUNTIME_DIR/hull` when not root), made absolute; `/` is refused as runc does.
fn root_dir(cli: &Cli) -> Result<PathBuf> {
    let root = match &cli.global.root {
        Some(r) => r.clone(),
        None => match std::env::var_os("XDG_RUNTIME_DIR").filter(|_| honors_xdg_runtime_dir()) {
            Some(dir) => PathBuf::from(dir).join("hull"),
            None if nix::unistd::geteuid().is_root() => PathBuf::from("/run/hull"),
            None => PathBuf::from(format!("/tmp/hull-{}", nix::unistd::geteuid())),
        },
    };
    let root = if root.is_absolute() {
        root
    } else {
        std::env::current_dir().context("getcwd")?.join(root)
    };
    if root == std::path::Path::new("/") {
        bail!("Option --root argument should not be set to /");
    }
    Ok(root)
}

/// runc's `shouldHonorXDGRuntimeDir`: an unprivileged user's state lives in `$XDG_RUNTIME_DIR`, and so does that of
/// uid 0 in a user namespace (rootless podman runs the runtime so), unless `$USER` says root; real root's does not.
fn honors_xdg_runtime_dir() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    rootless::in_user_namespace() && std::env::var("USER").map_or(true, |user| user != "root")
}

fn dispatch(cli: Cli) -> Result<i32> {
    let global = &cli.global;
    let format = match global.log_format.as_str() {
        "text" => logger::Format::Text,
        "json" => logger::Format::Json,
        other => bail!("invalid log-format: {other}"),
    };
    logger::init(global.log.as_deref(), format, global.debug)?;
    cgroups::systemd::init(global.systemd_cgroup);
    rootless::init(global.rootless.as_deref())?;
    let root = state::Root::new(root_dir(&cli)?);
    let command = cli.command;
    match &command {
        Command::Create(_) | Command::Run(_) | Command::Exec(_) => exeseal::ensure_sealed()?,
        _ => {}
    }
    logger::phase("started");
    match command {
        Command::Create(args) => commands::create::run(&root, &args),
        Command::Start(args) => commands::start::run(&root, &args),
        Command::State(args) => commands::state::run(&root, &args),
        Command::Kill(args) => commands::kill::run(&root, &args),
        Command::Checkpoint(args) => commands::checkpoint::run(&root, &args),
        Command::Restore(args) => commands::restore::run(&root, *args),
        Command::Delete(args) => commands::delete::run(&root, &args),
        Command::Run(args) => commands::run::run(&root, &args),
        Command::List(args) => commands::list::run(&root, &args),
        Command::Spec(args) => commands::spec::run(&args),
        Command::Features(args) => commands::features::run(&args),
        Command::Pause(args) => commands::pause::run(&root, &args),
        Command::Resume(args) => commands::resume::run(&root, &args),
        Command::Ps(args) => commands::ps::run(&root, &args),
        Command::Update(args) => commands::update::run(&root, &args),
        Command::Events(args) => commands::events::run(&root, &args),
        Command::Exec(args) => commands::exec::run(&root, &args).context("exec failed"),
    }
}

/// hull's entry from the C library's start-up. Rust's own runtime start-up is skipped (`no_main`): it reads
/// /proc/self/maps with scanf to find the main thread's stack guard and sets up a signal stack for its stack
/// overflow message, which every short-lived hull command would pay for in time and mapped pages. What of it matters
/// is done here (see `prepare_process`). glibc still hands the arguments to std::env::args, and leaving through
/// std::process::exit flushes stdout.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    prepare_process();
    std::process::exit(run())
}

/// SIGPIPE ignored, so a write to a closed pipe (a hook's stdin, a socket) fails with EPIPE instead of killing
/// hull; fds 0-2 open, on /dev/null if the caller closed them, so that nothing hull opens takes their place and
/// reaches a container as its stdio. Both as Rust's runtime start-up does.
fn prepare_process() {
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut stdio = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfd structs we own; a zero timeout never blocks.
    if unsafe { libc::poll(stdio.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for fd in stdio {
        if fd.revents & libc::POLLNVAL == 0 {
            continue;
        }
        // SAFETY: a NUL-terminated path; the lowest free fd, the closed one, is what open returns.
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if opened != fd.fd {
            std::process::abort();
        }
    }
}

/// The whole command: its exit code.
fn run() -> i32 {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match cli::parse(&argv) {
        Ok(Invocation::Run(cli)) => *cli,
        Ok(Invocation::Help(text)) => {
            print!("{text}");
            return 0;
        }
        Ok(Invocation::Version) => {
            print!("{}", version_text());
            return 0;
        }
        Err(usage) => {
            print!("{}", usage.usage);
            let format = match usage.log_format.as_str() {
                "json" => logger::Format::Json,
                _ => logger::Format::Text,
            };
            let _ = logger::init(usage.log.as_deref(), format, false);
            logger::report_failure(&anyhow::anyhow!(usage.message));
            return usage.code;
        }
    };
    // runc exits 255 when exec fails, 1 for every other command.
    let failure_code = if matches!(cli.command, Command::Exec(_)) {
        255
    } else {
        1
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            logger::report_failure(&err);
            failure_code
        }
    }
}
