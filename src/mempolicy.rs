//! `linux.memoryPolicy`: the NUMA memory policy (set_mempolicy(2)) of the init and of every exec'd process, checked
//! and set as runc 1.5 does (`specconv`, `validate.memoryPolicy`, `setupMemoryPolicy`).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::affinity::CpuMask;
use crate::sys;

/// A policy ready for set_mempolicy(2): mode with its flags, and the node mask.
#[derive(Debug, PartialEq, Eq)]
pub struct MemoryPolicy {
    mode: libc::c_int,
    nodes: Option<CpuMask>,
}

impl MemoryPolicy {
    /// The field, checked with runc's messages.
    pub fn of(policy: &LinuxMemoryPolicy) -> Result<MemoryPolicy> {
        let list = policy.nodes().as_deref().unwrap_or("");
        let nodes = CpuMask::parse(list)
            .with_context(|| format!("invalid memory policy nodes {list:?}"))?;
        let count = nodes.as_ref().map_or(0, CpuMask::count);
        let mode = match policy.mode() {
            MemoryPolicyModeType::MpolDefault => libc::MPOL_DEFAULT,
            MemoryPolicyModeType::MpolPreferred => libc::MPOL_PREFERRED,
            MemoryPolicyModeType::MpolBind => libc::MPOL_BIND,
            MemoryPolicyModeType::MpolInterleave => libc::MPOL_INTERLEAVE,
            MemoryPolicyModeType::MpolLocal => libc::MPOL_LOCAL,
            MemoryPolicyModeType::MpolPreferredMany => 5,
            MemoryPolicyModeType::MpolWeightedInterleave => 6,
        };
        match policy.mode() {
            MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal if count != 0 => {
                bail!("memory policy mode requires 0 nodes but got {count}")
            }
            MemoryPolicyModeType::MpolBind
            | MemoryPolicyModeType::MpolInterleave
            | MemoryPolicyModeType::MpolPreferredMany
            | MemoryPolicyModeType::MpolWeightedInterleave
                if count == 0 =>
            {
                bail!("memory policy mode requires at least one node but got 0")
            }
            _ => {}
        }
        let flags = policy
            .flags()
            .iter()
            .flatten()
            .map(|flag| match flag {
                MemoryPolicyFlagType::MpolFNumaBalancing => libc::MPOL_F_NUMA_BALANCING,
                MemoryPolicyFlagType::MpolFRelativeNodes => libc::MPOL_F_RELATIVE_NODES,
                MemoryPolicyFlagType::MpolFStaticNodes => libc::MPOL_F_STATIC_NODES,
            })
            .fold(0, |all, flag| all | flag);
        Ok(MemoryPolicy {
            mode: mode | flags,
            nodes,
        })
    }

    /// set_mempolicy(2) for this process.
    pub fn apply(&self) -> Result<()> {
        sys::set_mempolicy(self.mode, self.nodes.as_ref().map(|nodes| nodes.bytes()))
            .context("set_mempolicy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> Result<MemoryPolicy> {
        MemoryPolicy::of(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn modes_take_the_nodes_runc_lets_them_take() {
        let err = |json| format!("{:#}", policy(json).unwrap_err());
        assert_eq!(
            err(serde_json::json!({"mode": "MPOL_BIND"})),
            "memory policy mode requires at least one node but got 0"
        );
        assert_eq!(
            err(serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"})),
            "memory policy mode requires 0 nodes but got 1"
        );
        assert_eq!(
            err(serde_json::json!({"mode": "MPOL_BIND", "nodes": "2-1"})),
            "invalid memory policy nodes \"2-1\": invalid range: 2-1"
        );
        let p = policy(
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0,2",
                                          "flags": ["MPOL_F_STATIC_NODES"]}),
        )
        .unwrap();
        assert_eq!(p.mode, libc::MPOL_INTERLEAVE | libc::MPOL_F_STATIC_NODES);
        assert_eq!(p.nodes.unwrap().bytes(), [0b101]);
        policy(serde_json::json!({"mode": "MPOL_PREFERRED"})).unwrap();
    }
}
