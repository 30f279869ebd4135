//! A lock file in a folder that one process writes (a run, an experiment's report), so that two
//! processes never write the same folder: a second one is refused with the holder's name, and a
//! lock left by a dead process is taken over.
//!
//! The holder is dead when it ran on this host and its process is gone, or when it was an
//! earlier start of the same Slurm job (a requeued array task runs again under the same job
//! id, possibly on another node, with a higher restart count).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// `SLURM_JOB_ID` (array tasks: `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID`), if under Slurm.
    pub slurm_job: Option<String>,
    /// `SLURM_RESTART_COUNT`: how often Slurm requeued that job before this start.
    pub slurm_restart: u32,
}

impl Holder {
    /// This process.
    pub fn me() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let slurm_job = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
            (Some(job), Some(task)) => Some(format!("{job}_{task}")),
            _ => var("SLURM_JOB_ID"),
        };
        Holder {
            pid: std::process::id(),
            host: host_name(),
            slurm_job,
            slurm_restart: var("SLURM_RESTART_COUNT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }

    /// Whether this holder has certainly stopped, as seen from `me`.
    pub fn is_dead(&self, me: &Holder) -> bool {
        let requeued = self.slurm_job.is_some()
            && self.slurm_job == me.slurm_job
            && self.slurm_restart < me.slurm_restart;
        let gone = self.host == me.host && !Path::new(&format!("/proc/{}", self.pid)).exists();
        requeued || gone
    }

    /// "process 123 on node1 (Slurm job 7_2)".
    pub fn describe(&self) -> String {
        let job = self
            .slurm_job
            .as_ref()
            .map(|j| format!(" (Slurm job {j})"))
            .unwrap_or_default();
        format!("process {} on {}{job}", self.pid, self.host)
    }
}

/// The machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

/// A held lock; dropping it removes the file.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

/// The lock file of `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("lock")
}

/// The holder of `dir`'s lock, if any (an unreadable lock file counts as held by nobody known).
pub fn holder(dir: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(lock_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

impl FolderLock {
    /// Takes the lock of `dir` (created if missing), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = lock_path(dir);
        let me = Holder::me();
        let text =
            serde_json::to_string(&me).map_err(|e| Error::file(path.display(), e.to_string()))?;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(text.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| Error::io(&path, e))?;
                    return Ok(FolderLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let raw = std::fs::read_to_string(&path).unwrap_or_default();
                    match serde_json::from_str::<Holder>(&raw) {
                        Ok(h) if h.is_dead(&me) => {
                            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                        }
                        Ok(h) => {
                            return Err(Error::file(
                                dir.display(),
                                format!(
                                    "in use by {}; if that process is gone, delete {}",
                                    h.describe(),
                                    path.display()
                                ),
                            ))
                        }
                        // Written by a process killed between creating and filling the file.
                        Err(_) if raw.is_empty() => {
                            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                        }
                        Err(_) => return Err(Error::file(
                            path.display(),
                            "not a lock file written by neureg; delete it if no neureg works here",
                        )),
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::file(
            path.display(),
            "another process took the lock at the same moment",
        ))
    }
}

impl FolderLock {
    /// Refuses work on `dir` under a lock of another folder.
    pub fn check(&self, dir: &Path) -> Result<()> {
        if self.path == lock_path(dir) {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "{} is written under the lock {} of another folder",
                dir.display(),
                self.path.display()
            )))
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_by_name_and_a_dead_ones_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FolderLock::acquire(dir.path()).unwrap();
        let e = FolderLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("in use by process") && e.contains(&host_name()),
            "{e}"
        );
        drop(lock);
        assert!(!lock_path(dir.path()).exists());

        // A process that has exited: its lock is stale.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder {
            pid,
            ..Holder::me()
        };
        std::fs::write(lock_path(dir.path()), serde_json::to_string(&dead).unwrap()).unwrap();
        let lock = FolderLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()).unwrap().pid, std::process::id());
        drop(lock);

        // A live process on another host holds it.
        let remote = Holder {
            host: "elsewhere".into(),
            ..Holder::me()
        };
        std::fs::write(
            lock_path(dir.path()),
            serde_json::to_string(&remote).unwrap(),
        )
        .unwrap();
        assert!(FolderLock::acquire(dir.path()).is_err());
        // ... unless it was an earlier start of this same Slurm task.
        let me = Holder {
            slurm_job: Some("7_1".into()),
            slurm_restart: 1,
            ..Holder::me()
        };
        let earlier = Holder {
            slurm_restart: 0,
            host: "elsewhere".into(),
            ..me.clone()
        };
        assert!(earlier.is_dead(&me) && !remote.is_dead(&me));
    }
}
