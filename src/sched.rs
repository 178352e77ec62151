//! `process.scheduler` (sched_setattr(2)) and `process.ioPriority` (ioprio_set(2)) of the init and of every exec'd
//! process, checked and set as runc 1.5 does (`validate.scheduler`, `validate.ioPriority`, `setupScheduler`,
//! `setupIOPriority`).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler,
};

use crate::sys::{self, SchedAttr};

/// ioprio(2): the class sits above 13 bits of data.
const IOPRIO_CLASS_SHIFT: u32 = 13;

/// runc's validation of the two fields, with its messages.
pub fn validate(process: &Process) -> Result<()> {
    if let Some(s) = process.scheduler() {
        let policy = *s.policy();
        let nice = s.nice().unwrap_or(0);
        if matches!(
            policy,
            LinuxSchedulerPolicy::SchedOther | LinuxSchedulerPolicy::SchedBatch
        ) && !(-20..=19).contains(&nice)
        {
            bail!(
                "invalid scheduler.nice: {nice} when scheduler.policy is {}",
                policy_name(policy)
            );
        }
        if s.priority().unwrap_or(0) != 0
            && !matches!(
                policy,
                LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
            )
        {
            bail!("scheduler.priority can only be specified for SchedFIFO or SchedRR policy");
        }
        let deadline_fields = [s.runtime(), s.deadline(), s.period()];
        if policy != LinuxSchedulerPolicy::SchedDeadline
            && deadline_fields.iter().any(|v| v.unwrap_or(0) != 0)
        {
            bail!(
                "scheduler runtime/deadline/period can only be specified for SchedDeadline policy"
            );
        }
    }
    if let Some(io) = process.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            bail!("invalid ioPriority.Priority: {}", io.priority());
        }
    }
    Ok(())
}

/// The spec's name of a policy (`SCHED_OTHER`).
fn policy_name(policy: LinuxSchedulerPolicy) -> &'static str {
    match policy {
        LinuxSchedulerPolicy::SchedOther => "SCHED_OTHER",
        LinuxSchedulerPolicy::SchedFifo => "SCHED_FIFO",
        LinuxSchedulerPolicy::SchedRr => "SCHED_RR",
        LinuxSchedulerPolicy::SchedBatch => "SCHED_BATCH",
        LinuxSchedulerPolicy::SchedIso => "SCHED_ISO",
        LinuxSchedulerPolicy::SchedIdle => "SCHED_IDLE",
        LinuxSchedulerPolicy::SchedDeadline => "SCHED_DEADLINE",
    }
}

/// runc's `ToSchedAttr`.
fn sched_attr(s: &Scheduler) -> SchedAttr {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let flags = s
        .flags()
        .iter()
        .flatten()
        .map(|flag| match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        })
        .fold(0, |all, bit| all | bit);
    SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    }
}

/// ioprio(2)'s value of the field.
fn ioprio_value(io: &LinuxIOPriority) -> libc::c_int {
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    (class << IOPRIO_CLASS_SHIFT) | io.priority() as libc::c_int
}

/// In the new process, before its seccomp filters (which may deny these calls): its scheduling attributes, then
/// its I/O priority.
pub fn apply(process: &Process) -> Result<()> {
    if let Some(s) = process.scheduler() {
        sys::sched_setattr(&sched_attr(s)).context("error setting scheduler")?;
    }
    if let Some(io) = process.io_priority() {
        sys::ioprio_set(ioprio_value(io)).context("failed to set io priority")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(extra: serde_json::Value) -> Process {
        let mut v = serde_json::json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        for (key, value) in extra.as_object().unwrap() {
            v[key] = value.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn runc_refuses_what_the_policy_cannot_take() {
        let err = |extra| validate(&process(extra)).unwrap_err().to_string();
        assert_eq!(
            err(serde_json::json!({"scheduler": {"policy": "SCHED_OTHER", "nice": 20}})),
            "invalid scheduler.nice: 20 when scheduler.policy is SCHED_OTHER"
        );
        assert_eq!(
            err(serde_json::json!({"scheduler": {"policy": "SCHED_BATCH", "priority": 5}})),
            "scheduler.priority can only be specified for SchedFIFO or SchedRR policy"
        );
        assert_eq!(
            err(serde_json::json!({"scheduler": {"policy": "SCHED_RR", "runtime": 1}})),
            "scheduler runtime/deadline/period can only be specified for SchedDeadline policy"
        );
        assert_eq!(
            err(serde_json::json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}})),
            "invalid ioPriority.Priority: 8"
        );
        validate(&process(serde_json::json!({
            "scheduler": {"policy": "SCHED_FIFO", "priority": 10},
            "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
        })))
        .unwrap();
    }

    #[test]
    fn values_are_the_kernels() {
        let p = process(serde_json::json!({
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}
        }));
        let attr = sched_attr(p.scheduler().as_ref().unwrap());
        assert_eq!((attr.size, attr.policy, attr.nice), (48, 3, 5));
        assert_eq!(
            ioprio_value(p.io_priority().as_ref().unwrap()),
            (2 << 13) | 6
        );
    }
}
