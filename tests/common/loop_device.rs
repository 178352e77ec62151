//! A loop block device backed by a sparse file, for tests that need a block device of their own (blkio/io.max
//! throttling). Attached with the loop ioctls directly: the host's util-linux `losetup` and the v2 VM's busybox one
//! take different flags. Detached and its file removed on drop.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

pub struct LoopDevice {
    pub path: PathBuf,
    pub major: u64,
    pub minor: u64,
    device: File,
    backing: PathBuf,
}

impl LoopDevice {
    /// Attach a new loop device over a sparse file of `size` bytes created at `backing`.
    pub fn attach(backing: PathBuf, size: u64) -> std::io::Result<LoopDevice> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&backing)?;
        file.set_len(size)?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        // Another process can take the free device between GET_FREE and SET_FD (EBUSY): ask again.
        for _ in 0..20 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let device = OpenOptions::new().read(true).write(true).open(&path)?;
            // SAFETY: LOOP_SET_FD takes the backing file's fd, which stays open for the call.
            let r = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_SET_FD, file.as_raw_fd()) };
            if r == 0 {
                let rdev = device.metadata()?.rdev();
                return Ok(LoopDevice {
                    path,
                    major: libc::major(rdev) as u64,
                    minor: libc::minor(rdev) as u64,
                    device,
                    backing,
                });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EBUSY) {
                return Err(err);
            }
        }
        Err(std::io::Error::other("no free loop device after 20 tries"))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // SAFETY: LOOP_CLR_FD takes no argument; the device fd is open.
        unsafe { libc::ioctl(self.device.as_raw_fd(), LOOP_CLR_FD) };
        let _ = std::fs::remove_file(&self.backing);
    }
}
