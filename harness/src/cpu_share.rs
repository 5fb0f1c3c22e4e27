//! Lambda's CPU share for a memory size, applied to a process on this machine.
//!
//! Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB,
//! so about 7.2 % of a core at 128 MB. A cgroup CPU quota reproduces it: the
//! process may run `quota` microseconds of every 100,000, and is held off the CPU
//! for the rest of the period once it has used them, as Lambda's (CFS-based)
//! share does. Needs a writable cgroup CPU controller (root here: cgroup v1's
//! `/sys/fs/cgroup/cpu`, or v2's `cpu.max`).

use std::path::PathBuf;

/// Memory at which Lambda gives one full vCPU.
const MB_PER_VCPU: f64 = 1769.0;
const PERIOD_US: u64 = 100_000;

pub struct CpuShare {
    dir: PathBuf,
    pub memory_mb: u32,
}

impl CpuShare {
    /// A cgroup whose processes get the CPU share of a `memory_mb` function;
    /// `None` when this machine has no writable CPU controller.
    pub fn for_memory(memory_mb: u32) -> Option<Self> {
        let quota_us = (PERIOD_US as f64 * f64::from(memory_mb) / MB_PER_VCPU).round() as u64;
        let name = crate::unique("lambda-share");
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir(&dir).ok()?;
            std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string()).ok()?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota_us.to_string()).ok()?;
            return Some(Self { dir, memory_mb });
        }
        let v2 = PathBuf::from("/sys/fs/cgroup");
        let dir = v2.join(&name);
        std::fs::create_dir(&dir).ok()?;
        std::fs::write(dir.join("cpu.max"), format!("{quota_us} {PERIOD_US}")).ok()?;
        Some(Self { dir, memory_mb })
    }

    /// The file a process writes its pid to, to join the group.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The words that start a command inside the group: a shell that joins it
    /// and then becomes the command (same pid), so nothing of the command runs
    /// outside the share.
    pub fn launcher(&self) -> Vec<String> {
        vec![
            "sh".to_string(),
            "-c".to_string(),
            r#"echo $$ > "$0" && exec "$@""#.to_string(),
            self.procs_file().display().to_string(),
        ]
    }

    /// "128 MB share", for tables.
    pub fn label(&self) -> String {
        format!("{} MB share", self.memory_mb)
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // The group can only be removed once its processes have exited.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
