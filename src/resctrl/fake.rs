//! A fake resctrl tree in a temporary directory, for tests on hosts without resctrl: the files the kernel would
//! show, with plain-file semantics (no kernel validation, `rmdir` needs an empty directory).

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::host::Host;

pub struct FakeResctrl {
    dir: TempDir,
}

impl FakeResctrl {
    /// A root group with its `schemata`, `tasks`, `mon_groups/` and `info/last_cmd_status`.
    pub fn new() -> FakeResctrl {
        let fake = FakeResctrl {
            dir: tempfile::tempdir().unwrap(),
        };
        fake.write("schemata", "    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n");
        fake.write("tasks", "1\n");
        fake.write("info/last_cmd_status", "ok\n");
        fs::create_dir(fake.root().join("mon_groups")).unwrap();
        fake
    }

    /// CAT: `info/L3`.
    pub fn with_cat(self) -> FakeResctrl {
        self.write("info/L3/cbm_mask", "7ff\n");
        self.write("info/L3/min_cbm_bits", "1\n");
        self.write("info/L3/num_closids", "16\n");
        self
    }

    /// MBA: `info/MB`.
    pub fn with_mba(self) -> FakeResctrl {
        self.write("info/MB/bandwidth_gran", "10\n");
        self.write("info/MB/delay_linear", "1\n");
        self.write("info/MB/min_bandwidth", "10\n");
        self.write("info/MB/num_closids", "8\n");
        self
    }

    /// Monitoring: `info/L3_MON` listing `features`.
    pub fn with_monitoring(self, features: &str) -> FakeResctrl {
        self.write("info/L3_MON/mon_features", features);
        self.write("info/L3_MON/num_rmids", "128\n");
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self) -> Host {
        Host::at(self.root())
    }

    /// Writes `contents` to `relative` under the root, making its directories.
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.root().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.root().join(relative)).unwrap()
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.root().join(relative).exists()
    }

    /// Empties a group directory of the files the fake tree gave it, as the kernel's `rmdir` does not need.
    pub fn clear_group(&self, relative: &str) {
        for file in ["tasks", "schemata"] {
            let _ = fs::remove_file(self.root().join(relative).join(file));
        }
    }
}
