//! Finding runs and telling their state from their files.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::runs::config::RunConfig;
use crate::runs::metrics::{self, MetricEvent};
use crate::runs::run_dir::RunDir;

/// Where a run stands, read from its metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// Every epoch done.
    Finished,
    /// Stopped early, with the reason.
    Stopped(String),
    /// Started, not finished: running now, or killed (it resumes from its last checkpoint).
    Incomplete,
}

/// A run folder and what is in it.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The folder.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: RunConfig,
    /// Its metrics so far.
    pub events: Vec<MetricEvent>,
}

impl RunInfo {
    /// Reads the run in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        Ok(RunInfo {
            dir: dir.to_path_buf(),
            config: RunConfig::load(dir)?,
            events: metrics::read(&RunDir(dir).metrics())?,
        })
    }

    /// Its state.
    pub fn status(&self) -> RunStatus {
        for e in self.events.iter().rev() {
            match e {
                MetricEvent::Finished { .. } => return RunStatus::Finished,
                MetricEvent::Stopped { reason, .. } => return RunStatus::Stopped(reason.clone()),
                _ => {}
            }
        }
        RunStatus::Incomplete
    }

    /// The folder's name.
    pub fn name(&self) -> String {
        run_name(&self.dir)
    }
}

/// A run's name: its folder's.
pub fn run_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The runs in `root` (subfolders with a `config.json`), sorted by name; unreadable ones are
/// returned as errors beside the readable ones.
pub fn list_runs(root: &Path) -> Result<Vec<Result<RunInfo>>> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| RunDir(p).is_run())
        .collect();
    dirs.sort();
    Ok(dirs.iter().map(|d| RunInfo::read(d)).collect())
}

/// The folder in `root` for `config`: `<condition>-a<strength>-seed<seed>`, or the first of
/// `...-2`, `...-3`, ... that is free or holds this same configuration (which then resumes).
pub fn run_dir(root: &Path, config: &RunConfig) -> PathBuf {
    let name = config.folder_name();
    let same = |dir: &Path| {
        RunConfig::load(dir).is_ok_and(|mut c| {
            c.version.clone_from(&config.version);
            &c == config
        })
    };
    let mut dir = root.join(&name);
    let mut k = 2;
    while dir.exists() && !same(&dir) {
        dir = root.join(format!("{name}-{k}"));
        k += 1;
    }
    dir
}
