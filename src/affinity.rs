//! CPU affinity of the container's processes, as runc 1.4+ sets it:
//! - a process starts on every CPU its cpuset allows, not on the affinity of whoever ran hull (`taskset -c 0 hull
//!   run ...` must not pin the container): once in its cgroups, it asks for every possible CPU and the kernel masks
//!   that with the cpuset (runc's `tryResetCPUAffinity`);
//! - `process.execCPUAffinity` for `exec`: `initial` is the affinity the new process is created with (before it is in
//!   the container's cgroup), `final` the one it gets once there; without `final`, an `initial` stays.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::ExecCPUAffinity;

use crate::logger;
use crate::sys;

/// The highest CPU number a list may name, plus one (runc's `configs.MaxCPU`).
const MAX_CPU: usize = 64 * 1024;

/// A set of CPUs in the kernel's `cpumask` layout: bit `n % 8` of byte `n / 8` is CPU `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMask(Vec<u8>);

impl CpuMask {
    /// A list such as `0-3,7` (spaces around members and empty members are allowed, as runc allows them): runc's
    /// `ToCPUSet`, which also reads memory policy node lists.
    pub fn parse(list: &str) -> Result<Option<CpuMask>> {
        if list.is_empty() {
            return Ok(None);
        }
        let number = |text: &str| -> Result<usize> {
            let n: u32 = text
                .parse()
                .map_err(|_| anyhow!("strconv.ParseUint: parsing {text:?}: invalid syntax"))?;
            if n as usize > MAX_CPU {
                bail!("values larger than {MAX_CPU} are not supported");
            }
            Ok(n as usize)
        };
        let mut ranges = Vec::new();
        for member in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let range = match member.split_once('-') {
                Some((start, end)) => {
                    let (start, end) = (number(start)?, number(end)?);
                    if start > end {
                        bail!("invalid range: {member}");
                    }
                    (start, end)
                }
                None => {
                    let cpu = number(member)?;
                    (cpu, cpu)
                }
            };
            ranges.push(range);
        }
        let Some(highest) = ranges.iter().map(|r| r.1).max() else {
            bail!("no members found in set {list:?}");
        };
        let mut mask = vec![0u8; highest / 8 + 1];
        for (start, end) in ranges {
            for cpu in start..=end {
                mask[cpu / 8] |= 1 << (cpu % 8);
            }
        }
        Ok(Some(CpuMask(mask)))
    }

    /// The mask's bytes (bit `n % 8` of byte `n / 8` is member `n`).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// How many members the set has.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// sched_setaffinity(2) of this process.
    fn apply(&self) -> nix::Result<()> {
        sys::sched_setaffinity(&self.0)
    }
}

/// Every CPU a kernel can have (its NR_CPUS is at most 8192): sched_setaffinity(2) keeps those of the task's cpuset.
/// Static, so that the reset on every create and exec allocates nothing; 1 KiB rather than runc's 8 KiB mask, since
/// the kernel reads no more than its own mask size.
static ALL_CPUS: [u8; 8192 / 8] = [0xff; 8192 / 8];

/// `process.execCPUAffinity`, checked as runc's `ConvertCPUAffinity` checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecAffinity {
    initial: Option<CpuMask>,
    last: Option<CpuMask>,
}

impl ExecAffinity {
    pub fn of(affinity: Option<&ExecCPUAffinity>) -> Result<ExecAffinity> {
        let Some(affinity) = affinity else {
            return Ok(ExecAffinity::default());
        };
        Ok(ExecAffinity {
            initial: CpuMask::parse(affinity.initial().as_deref().unwrap_or(""))
                .context("bad CPUAffinity.Initial")?,
            last: CpuMask::parse(affinity.cpu_affinity_final().as_deref().unwrap_or(""))
                .context("bad CPUAffinity.Final")?,
        })
    }

    /// In the parent, before the new process is cloned: it inherits this affinity.
    pub fn apply_initial(&self) -> Result<()> {
        match &self.initial {
            Some(mask) => mask.apply().context("error setting initial CPU affinity"),
            None => Ok(()),
        }
    }

    /// In the new process, once in the container's cgroups: `final`, or every CPU when nothing was asked for.
    pub fn apply_final(&self) -> Result<()> {
        match (&self.initial, &self.last) {
            (_, Some(mask)) => mask.apply().context("error setting final CPU affinity"),
            (None, None) => {
                reset();
                Ok(())
            }
            (Some(_), None) => Ok(()),
        }
    }
}

/// Let this process run on every CPU of its cpuset (runc's `tryResetCPUAffinity`); a failure is a warning.
pub fn reset() {
    if let Err(err) = sys::sched_setaffinity(&ALL_CPUS) {
        logger::log(
            logger::Level::Warning,
            &format!(
                "resetting the CPU affinity failed -- the container process may inherit hull's CPU affinity: {err}"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity(json: serde_json::Value) -> Result<ExecAffinity> {
        ExecAffinity::of(Some(&serde_json::from_value(json).unwrap()))
    }

    #[test]
    fn lists_become_masks() {
        assert_eq!(
            CpuMask::parse("0-3,9").unwrap(),
            Some(CpuMask(vec![0x0f, 0x02]))
        );
        assert_eq!(CpuMask::parse(" 1 ,,2").unwrap(), Some(CpuMask(vec![0x06])));
        assert_eq!(CpuMask::parse("").unwrap(), None);
    }

    #[test]
    fn bad_lists_are_worded_as_runc_words_them() {
        let err = |json| format!("{:#}", affinity(json).unwrap_err());
        assert_eq!(
            err(serde_json::json!({"initial": "3-1"})),
            "bad CPUAffinity.Initial: invalid range: 3-1"
        );
        assert_eq!(
            err(serde_json::json!({"final": "70000"})),
            "bad CPUAffinity.Final: values larger than 65536 are not supported"
        );
        assert_eq!(
            affinity(serde_json::json!({"initial": "0", "final": "1"})).unwrap(),
            ExecAffinity {
                initial: Some(CpuMask(vec![1])),
                last: Some(CpuMask(vec![2]))
            }
        );
    }
}
