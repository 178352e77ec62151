//! `exec`: the process to run, from `--process FILE` (an OCI Process, as containerd and conmon send it) or from
//! the bundle's `config.json` process with the command-line overrides applied as runc's `getProcess` applies
//! them; then `enter::exec` runs it. Failures exit 255, as runc's do (`main` prefixes them with "exec failed").

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, Spec};

use crate::cgroups::SubPaths;
use crate::cli::{check_args, Arity, ExecArgs};
use crate::container::Container;
use crate::enter;
use crate::spec;
use crate::state::{Root, Status};

pub fn run(root: &Root, args: &ExecArgs) -> Result<i32> {
    check_args("exec", &args.args, Arity::Min(1))?;
    let container = Container::load(root, &args.args[0])?;
    match container.status() {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if !args.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    if args.process.is_none() && args.args.len() == 1 {
        bail!("process args cannot be empty");
    }
    let process = match &args.process {
        Some(path) => read_process(path)?,
        None => {
            let config = container.state.bundle.join("config.json");
            let bytes = fs::read(&config).with_context(|| format!("open {}", config.display()))?;
            let spec: Spec = serde_json::from_slice(&bytes)
                .with_context(|| format!("parse {}", config.display()))?;
            let base = spec
                .process()
                .clone()
                .with_context(|| format!("{}: process is not set", config.display()))?;
            with_overrides(base, args)?
        }
    };
    validate(&process)?;
    let sub_cgroups = SubPaths::parse(&args.cgroup)?;
    enter::exec(&enter::Request {
        container: &container,
        process: &process,
        sub_cgroups: &sub_cgroups,
        preserve_fds: args.preserve_fds,
        detach: args.detach,
        pid_file: args.pid_file.as_deref(),
        console_socket: args.console_socket.as_deref(),
        pidfd_socket: args.pidfd_socket.as_deref(),
    })
}

/// A `--process` file. Its `user` may be left out, as in runc: the process then runs as uid 0, gid 0.
fn read_process(path: &Path) -> Result<Process> {
    let bytes = fs::read(path).with_context(|| format!("open {}", path.display()))?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))?;
    if let Some(fields) = value.as_object_mut() {
        fields
            .entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    serde_json::from_value(value).with_context(|| format!("parse {}", path.display()))
}

/// runc's `validateProcessSpec`, then the checks of the process's own fields runc makes.
fn validate(process: &Process) -> Result<()> {
    let cwd = process.cwd();
    if cwd.as_os_str().is_empty() {
        bail!("Cwd property must not be empty");
    }
    if !cwd.is_absolute() {
        bail!("Cwd must be an absolute path");
    }
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("args must not be empty");
    }
    spec::validate_process_fields(process)
}

/// The config's process with `exec`'s flags applied (runc's `getProcess`).
fn with_overrides(mut p: Process, args: &ExecArgs) -> Result<Process> {
    p.set_args(Some(args.args[1..].to_vec()));
    if let Some(cwd) = args.cwd.as_deref().filter(|c| !c.is_empty()) {
        p.set_cwd(cwd.into());
    }
    if let Some(profile) = args.apparmor.as_deref().filter(|a| !a.is_empty()) {
        p.set_apparmor_profile(Some(profile.to_owned()));
    }
    if let Some(label) = args.process_label.as_deref().filter(|l| !l.is_empty()) {
        p.set_selinux_label(Some(label.to_owned()));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_capabilities);
        for name in &args.cap {
            let cap: Capability = serde_json::from_value(name.as_str().into())
                .map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))?;
            let add = |set: &Option<Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            // Never inheritable (CVE-2022-29162); ambient needs inheritable, so only when the process already
            // configures an inheritable set (runc's rule since 1.1.2).
            if caps.inheritable().is_some() {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(args.tty));
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(user) = args.user.as_deref().filter(|u| !u.is_empty()) {
        let (uid, gid) = match user.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user, None),
        };
        if let Some(gid) = gid {
            p.user_mut().set_gid(go_atoi(gid, "gid")? as u32);
        }
        p.user_mut().set_uid(go_atoi(uid, "uid")? as u32);
    }
    for gid in &args.additional_gids {
        let n: i64 = gid.parse().map_err(|_| {
            anyhow::anyhow!("invalid value {gid:?} for flag -additional-gids: parse error")
        })?;
        if n < 0 {
            bail!("additional-gids must be a positive number {n}");
        }
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.push(n as u32);
        p.user_mut().set_additional_gids(Some(gids));
    }
    Ok(p)
}

fn empty_capabilities() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(None);
    caps.set_effective(None);
    caps.set_inheritable(None);
    caps.set_permitted(None);
    caps.set_ambient(None);
    caps
}

/// Go's `strconv.Atoi` with runc's message for `--user`.
fn go_atoi(text: &str, what: &str) -> Result<i64> {
    text.parse().map_err(|_| {
        anyhow::anyhow!(
            "parsing {text} as int for {what} failed: strconv.Atoi: parsing {text:?}: invalid syntax"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Process {
        serde_json::from_value(serde_json::json!({
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/bin", "A=1"],
            "cwd": "/",
            "terminal": true,
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}
        }))
        .unwrap()
    }

    fn exec_args(line: &str) -> ExecArgs {
        match crate::cli::tests::command(&format!("hull exec {line}")) {
            crate::cli::Command::Exec(e) => *e,
            other => panic!("not exec: {other:?}"),
        }
    }

    #[test]
    fn flags_override_the_config_process() {
        let args = exec_args("-e A=2 --cwd /tmp -u 1000:100 -g 7 --cap CAP_CHOWN c1 id -u");
        let p = with_overrides(base(), &args).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["id", "-u"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=1", "A=2"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[7][..]));
        assert_eq!(p.terminal(), Some(false), "exec has no tty unless -t");
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown));
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
        assert_eq!(caps.inheritable(), &None, "never added to inheritable");
        assert_eq!(
            caps.ambient(),
            &None,
            "no inheritable set configured: no ambient"
        );
        let mut with_inheritable = base();
        let mut caps = with_inheritable.capabilities().clone().unwrap();
        caps.set_inheritable(Some(Capabilities::new()));
        with_inheritable.set_capabilities(Some(caps));
        let p = with_overrides(with_inheritable, &exec_args("--cap CAP_CHOWN c1 true")).unwrap();
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        assert!(caps
            .ambient()
            .as_ref()
            .unwrap()
            .contains(&Capability::Chown));
    }

    #[test]
    fn bad_flag_values_get_runc_messages() {
        let err = |line: &str| {
            with_overrides(base(), &exec_args(line))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("-u x c1 true"),
            "parsing x as int for uid failed: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err("-g -1 c1 true"),
            "additional-gids must be a positive number -1"
        );
        assert_eq!(
            err("--cap CAP_NOPE c1 true"),
            "unknown capability \"CAP_NOPE\""
        );
    }

    #[test]
    fn process_validation() {
        let mut p = base();
        p.set_cwd("tmp".into());
        assert_eq!(
            validate(&p).unwrap_err().to_string(),
            "Cwd must be an absolute path"
        );
        let mut p = base();
        p.set_args(Some(vec![]));
        assert_eq!(
            validate(&p).unwrap_err().to_string(),
            "args must not be empty"
        );
        assert!(validate(&base()).is_ok());
    }
}
