//! Facts about the machine and its processes: kernel, CPU, cgroup mode, PSS, leftover cgroups,
//! ELF symbol tables, the date.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the report says about the machine.
pub struct Machine {
    pub kernel: String,
    pub cpu: String,
    pub cpus: usize,
    pub memory_kib: u64,
    pub cgroup: &'static str,
}

pub fn machine() -> Machine {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| kib_field(&meminfo, "MemTotal:"))
        .unwrap_or(0);
    Machine {
        kernel,
        cpu,
        cpus,
        memory_kib,
        cgroup: cgroup_mode(),
    }
}

/// `v2` when /sys/fs/cgroup is cgroup2, `hybrid` when only /sys/fs/cgroup/unified is, else `v1`.
pub fn cgroup_mode() -> &'static str {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let is_cgroup2 = |path: &str| {
        let Ok(c) = CString::new(path) else {
            return false;
        };
        // SAFETY: libc::statfs is a plain-old-data C struct, for which all-zero bytes are valid.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: statfs only writes into st, a zeroed plain-old-data struct we own; c is
        // NUL-terminated and outlives the call.
        unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC }
    };
    if is_cgroup2("/sys/fs/cgroup") {
        "v2"
    } else if is_cgroup2("/sys/fs/cgroup/unified") {
        "hybrid"
    } else {
        "v1"
    }
}

/// The number in a `Key:   123 kB` line of /proc/meminfo or smaps_rollup.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The proportional set size of `pid`, KiB.
pub fn pss_kib(pid: i32) -> Result<u64> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    kib_field(&text, "Pss:").with_context(|| format!("no Pss: line in {path}"))
}

/// The pid written by `--pid-file`.
pub fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read pid file {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("pid file {} holds {:?}", path.display(), text.trim()))
}

/// All pids in /proc.
pub fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Directories under /sys/fs/cgroup (down to `depth` levels) whose name contains `needle`.
pub fn cgroups_named(needle: &str, depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), needle, depth, &mut found);
    found.sort();
    found
}

fn walk(dir: &Path, needle: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(needle) {
            found.push(path);
        } else {
            walk(&path, needle, depth - 1, found);
        }
    }
}

/// Removes a leftover (empty) cgroup directory and the cgroups below it, deepest first.
pub fn remove_cgroup(path: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(path)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path())?;
        }
    }
    std::fs::remove_dir(path)
}

/// The names in `dir` (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether the ELF file at `path` lacks a `.symtab` (SHT_SYMTAB section); None when it is not a
/// 64-bit little-endian ELF file.
pub fn stripped(path: &Path) -> Result<Option<bool>> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut header = [0u8; 64];
    if file.read_exact(&mut header).is_err()
        || &header[..4] != b"\x7fELF"
        || header[4] != 2
        || header[5] != 1
    {
        return Ok(None);
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let shoff = u64::from_le_bytes(header[0x28..0x30].try_into()?);
    let shentsize = u16_at(&header, 0x3a) as u64;
    let shnum = u16_at(&header, 0x3c) as u64;
    if shoff == 0 || shnum == 0 {
        return Ok(Some(true));
    }
    if shentsize < 8 {
        bail!(
            "{}: section header entries of {shentsize} bytes",
            path.display()
        );
    }
    let mut table = vec![0u8; (shentsize * shnum) as usize];
    file.seek(SeekFrom::Start(shoff))
        .and_then(|_| file.read_exact(&mut table))
        .with_context(|| format!("read section headers of {}", path.display()))?;
    const SHT_SYMTAB: u32 = 2;
    let has_symtab = table
        .chunks(shentsize as usize)
        .any(|sh| u32::from_le_bytes([sh[4], sh[5], sh[6], sh[7]]) == SHT_SYMTAB);
    Ok(Some(!has_symtab))
}

/// A fresh private directory under $TMPDIR (or /tmp).
pub fn make_temp_dir(prefix: &str) -> Result<PathBuf> {
    let base = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let mut template = Path::new(&base)
        .join(format!("{prefix}.XXXXXX"))
        .as_os_str()
        .as_bytes()
        .to_vec();
    template.push(0);
    // SAFETY: template is a writable, NUL-terminated buffer we own that ends in `XXXXXX`;
    // mkdtemp only rewrites those six bytes in place and never writes past the NUL.
    let r = unsafe { libc::mkdtemp(template.as_mut_ptr() as *mut libc::c_char) };
    if r.is_null() {
        return Err(std::io::Error::last_os_error()).context("mkdtemp");
    }
    template.pop();
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(template),
    ))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (a thousand concurrent spawns need a few fds each).
pub fn raise_nofile() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into limit, an initialized rlimit we own, and setrlimit only
    // reads it; neither keeps the pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Now as RFC 3339 UTC, e.g. `2026-11-23T19:04:30Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_460_670), "2026-11-23T19:04:30Z");
    }

    #[test]
    fn kib_field_reads_the_number() {
        let text = "Rss:    1234 kB\nPss:     567 kB\nPss_Anon:  12 kB\n";
        assert_eq!(kib_field(text, "Pss:"), Some(567));
        assert_eq!(kib_field(text, "Swap:"), None);
    }

    #[test]
    fn own_binary_is_an_elf_file() {
        let exe = std::env::current_exe().unwrap();
        assert!(stripped(&exe).unwrap().is_some());
    }
}
