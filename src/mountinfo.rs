//! `/proc/self/mountinfo`, parsed: the mounts of this process's mount namespace as the kernel lists them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

/// One line of mountinfo (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's root inside its filesystem (field 4): "/" unless it is a bind mount of a subtree.
    pub root: PathBuf,
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub super_options: Vec<String>,
}

/// The mounts of this process's mount namespace, in the kernel's order (parents before their children).
pub fn read() -> Result<Vec<Mount>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| anyhow!("malformed mountinfo line {line:?}"))?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 3 {
            bail!("malformed mountinfo line {line:?}");
        }
        mounts.push(Mount {
            root: unescape(left[3]),
            mountpoint: unescape(left[4]),
            fstype: right[0].to_owned(),
            super_options: right[2].split(',').map(str::to_owned).collect(),
        });
    }
    Ok(mounts)
}

/// Decodes the octal escapes (`\040` for a space) that mountinfo uses in paths.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn fields_and_escapes_are_decoded() {
        let mounts = parse(
            "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
             41 31 0:38 /sub /sys/fs/cgroup/my\\040dir rw shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
        )
        .unwrap();
        assert_eq!(mounts[0].fstype, "proc");
        assert_eq!(mounts[1].root, Path::new("/sub"));
        assert_eq!(mounts[1].mountpoint, Path::new("/sys/fs/cgroup/my dir"));
        assert_eq!(mounts[1].super_options, ["rw", "nsdelegate"]);
        assert_eq!(unescape("a\\134b\\011c\\04"), Path::new("a\\b\tc\\04"));
        assert_eq!(
            unescape("\\377\\777"),
            PathBuf::from(OsString::from_vec(vec![0xff, 0xff]))
        );
    }

    #[test]
    fn a_line_without_its_separator_is_an_error() {
        assert!(parse("22 1 0:21 / /proc rw\n").is_err());
    }
}
