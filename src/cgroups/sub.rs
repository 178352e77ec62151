//! `exec --cgroup [<controller>[,<controller>...]:]<path>`: run the new process in an existing sub-cgroup of the
//! container's cgroup, parsed and checked as runc's `getSubCgroupPaths` does.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use super::Hierarchy;

/// Sub-cgroup paths by controller; the key "" applies to every hierarchy (and is the only one cgroup2 uses).
#[derive(Debug, Default, PartialEq)]
pub struct SubPaths(HashMap<String, PathBuf>);

impl SubPaths {
    pub fn parse(args: &[String]) -> Result<SubPaths> {
        let mut paths = HashMap::new();
        for arg in args {
            let parts: Vec<&str> = arg.splitn(3, ':').collect();
            match parts.as_slice() {
                [path] => {
                    if args.len() != 1 {
                        bail!("invalid --cgroup argument: {arg} (missing <controller>: prefix)");
                    }
                    paths.insert(String::new(), checked(arg, path)?);
                }
                [controllers, path] => {
                    for controller in controllers.split(',') {
                        if controller.is_empty() {
                            bail!("invalid --cgroup argument: {arg} (empty <controller> prefix)");
                        }
                        if paths.contains_key(controller) {
                            bail!("invalid --cgroup argument(s): controller {controller} specified multiple times");
                        }
                        paths.insert(controller.to_owned(), checked(arg, path)?);
                    }
                }
                _ => bail!("invalid --cgroup argument: {arg}"),
            }
        }
        Ok(SubPaths(paths))
    }

    /// The directory a new process enters in `h`: the container's, or the sub-cgroup given for it.
    pub fn dir_in(&self, h: &Hierarchy) -> PathBuf {
        let sub = if h.v2 {
            self.0.get("")
        } else {
            h.controllers
                .iter()
                .find_map(|c| self.0.get(c))
                .or_else(|| self.0.get(""))
        };
        match sub {
            Some(sub) if !sub.as_os_str().is_empty() => h.path.join(sub),
            _ => h.path.clone(),
        }
    }
}

/// A sub-cgroup path stays at or below the container's cgroup: relative components only, no `..`; `/` names the
/// container's cgroup itself, as in runc.
fn checked(arg: &str, path: &str) -> Result<PathBuf> {
    let relative = path.trim_start_matches('/');
    let escapes = Path::new(relative)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if path.is_empty() || escapes {
        bail!("invalid --cgroup argument: {arg} (the path must name a sub-cgroup of the container's cgroup)");
    }
    Ok(PathBuf::from(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn hierarchy(controllers: &[&str], v2: bool) -> Hierarchy {
        Hierarchy {
            mountpoint: PathBuf::from("/sys/fs/cgroup/x"),
            controllers: controllers.iter().map(|s| s.to_string()).collect(),
            v2,
            path: PathBuf::from("/sys/fs/cgroup/x/c1"),
        }
    }

    #[test]
    fn one_path_applies_everywhere() {
        let sub = SubPaths::parse(&args(&["/inner"])).unwrap();
        assert_eq!(
            sub.dir_in(&hierarchy(&[], true)),
            Path::new("/sys/fs/cgroup/x/c1/inner")
        );
        assert_eq!(
            sub.dir_in(&hierarchy(&["memory"], false)),
            Path::new("/sys/fs/cgroup/x/c1/inner")
        );
    }

    /// runc 1.5 takes `--cgroup /` as the container's own cgroup.
    #[test]
    fn slash_is_the_containers_own_cgroup() {
        let sub = SubPaths::parse(&args(&["/"])).unwrap();
        for h in [hierarchy(&[], true), hierarchy(&["memory"], false)] {
            assert_eq!(sub.dir_in(&h), Path::new("/sys/fs/cgroup/x/c1"));
        }
    }

    #[test]
    fn controller_prefixes_pick_v1_hierarchies() {
        let sub = SubPaths::parse(&args(&["cpu,memory:a", "pids:b"])).unwrap();
        assert_eq!(
            sub.dir_in(&hierarchy(&["cpu", "cpuacct"], false)),
            Path::new("/sys/fs/cgroup/x/c1/a")
        );
        assert_eq!(
            sub.dir_in(&hierarchy(&["pids"], false)),
            Path::new("/sys/fs/cgroup/x/c1/b")
        );
        assert_eq!(
            sub.dir_in(&hierarchy(&["devices"], false)),
            Path::new("/sys/fs/cgroup/x/c1")
        );
        assert_eq!(
            sub.dir_in(&hierarchy(&[], true)),
            Path::new("/sys/fs/cgroup/x/c1"),
            "cgroup2 only takes an unprefixed path"
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_runc_messages() {
        let err = |list: &[&str]| SubPaths::parse(&args(list)).unwrap_err().to_string();
        assert_eq!(
            err(&["a", "b"]),
            "invalid --cgroup argument: a (missing <controller>: prefix)"
        );
        assert_eq!(
            err(&[":x"]),
            "invalid --cgroup argument: :x (empty <controller> prefix)"
        );
        assert_eq!(
            err(&["cpu:a", "cpu:b"]),
            "invalid --cgroup argument(s): controller cpu specified multiple times"
        );
        assert_eq!(err(&["a:b:c"]), "invalid --cgroup argument: a:b:c");
        assert!(err(&["../../escape"]).contains("must name a sub-cgroup"));
        assert!(err(&["memory:"]).contains("must name a sub-cgroup"));
        assert_eq!(SubPaths::parse(&[]).unwrap(), SubPaths::default());
    }
}
