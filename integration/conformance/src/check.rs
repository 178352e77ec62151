//! Comparing observed facts with expectations, and reporting each mismatch as it is found.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Display;

/// The facts one case's container reported, and the mismatches found in them so far.
pub struct Checks {
    case: &'static str,
    facts: Value,
    failures: usize,
}

impl Checks {
    /// `facts` is `checker facts` output, or `Value::Null` for a case whose process prints none.
    pub fn new(case: &'static str, facts: Value) -> Checks {
        Checks {
            case,
            facts,
            failures: 0,
        }
    }

    pub fn passed(&self) -> bool {
        self.failures == 0
    }

    /// Records a mismatch.
    pub fn fail(&mut self, fact: &str, expected: impl Display, seen: impl Display) {
        println!(
            "FAIL {}: {fact}: expected {expected}, saw {seen}",
            self.case
        );
        self.failures += 1;
    }

    /// The fact at a JSON pointer such as `/capabilities/effective`; `null` when absent.
    pub fn fact(&self, pointer: &str) -> &Value {
        self.facts.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// The fact at `pointer` equals `expected`. Facts are named by their pointer in messages.
    pub fn equal(&mut self, pointer: &str, expected: impl Into<Value>) {
        let expected = expected.into();
        let seen = self.fact(pointer).clone();
        if seen != expected {
            self.fail(&pointer[1..].replace('/', "."), expected, seen);
        }
    }

    /// The list at `pointer` holds the same items as `expected`, in any order.
    pub fn same_set(&mut self, pointer: &str, expected: &Value) {
        let seen = self.fact(pointer).clone();
        let as_set = |list: &Value| {
            list.as_array()
                .map(|items| items.iter().map(Value::to_string).collect())
        };
        let expected_set: Option<BTreeSet<String>> = as_set(expected);
        if expected_set.is_none() || as_set(&seen) != expected_set {
            self.fail(&pointer[1..].replace('/', "."), expected, seen);
        }
    }

    /// The topmost mount at `destination`: the last one in mountinfo order.
    pub fn mount(&self, destination: &str) -> Option<&Value> {
        let mounts = self.facts["mounts"].as_array()?;
        mounts
            .iter()
            .rev()
            .find(|mount| mount["destination"] == destination)
    }

    /// A mount of type `fstype` is at `destination`, with each of `options` (see `mount_options`).
    pub fn mounted(&mut self, destination: &str, fstype: &str, options: &[&str]) {
        if let Some(seen) = self.mount(destination).map(|mount| mount["fstype"].clone()) {
            if seen != fstype {
                self.fail(&format!("mount at {destination}: type"), fstype, seen);
            }
        }
        self.mount_options(destination, options);
    }

    /// A mount is at `destination`, and each of `options` is among its mount options or its
    /// superblock options (so both `ro` and `mode=700` can be asked for).
    pub fn mount_options(&mut self, destination: &str, options: &[&str]) {
        let Some(mount) = self.mount(destination).cloned() else {
            return self.fail(
                &format!("mount at {destination}"),
                "a mount",
                "no mount there",
            );
        };
        let present = |option: &str| {
            ["options", "super_options"].iter().any(|list| {
                mount[list]
                    .as_array()
                    .is_some_and(|list| list.iter().any(|item| item == option))
            })
        };
        for option in options.iter().filter(|option| !present(option)) {
            let seen =
                json!({ "options": mount["options"], "super_options": mount["super_options"] });
            self.fail(
                &format!("mount at {destination}: options"),
                format!("{option:?} among them"),
                seen,
            );
        }
    }

    /// What `checker facts PATH` found at a probed path.
    pub fn probe(&self, path: &str) -> &Value {
        &self.facts["probes"][path]
    }

    /// The probe of `path` has `expected` at `field` (such as `"type"` or `"/read/content"`).
    pub fn probed(&mut self, path: &str, field: &str, expected: impl Into<Value>) {
        let expected = expected.into();
        let probe = self.probe(path);
        // A path that could not be probed at all shows its error rather than a null per field.
        let seen = match probe.get("error") {
            Some(_) => probe.clone(),
            None => probe.pointer(field).cloned().unwrap_or(Value::Null),
        };
        if seen != expected {
            let fact = format!("probe {path}: {}", field[1..].replace('/', "."));
            self.fail(&fact, expected, seen);
        }
    }
}
