//! Experiments: the paper's controlled comparison (conditions x strengths x seeds, trained, then
//! evaluated under noise and attacks, then a report) as one plan and one folder.
//!
//! The folder holds `plan.json` (the resolved plan), `runs/<unit>/` (one ordinary run folder per
//! unit, with its results), `report/` and `slurm/`. Every stage of a unit is idempotent: a
//! unit run again skips what is done and resumes what is not, so the same plan runs here in one
//! process, in the window, or as a Slurm array with one task per unit.

pub mod check;
pub mod plan;
pub mod report;
pub mod slurm;
pub mod status;
pub mod unit;

use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
pub use plan::{Plan, Preset, Unit};

/// An experiment folder and its plan.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The folder.
    pub dir: PathBuf,
    /// What it compares.
    pub plan: Plan,
}

impl Experiment {
    /// The plan file of an experiment folder.
    pub fn plan_path(dir: &Path) -> PathBuf {
        dir.join("plan.json")
    }

    /// Opens the experiment in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = Self::plan_path(dir);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let plan: Plan = serde_json::from_str(&text)
            .map_err(|e| Error::file(path.display(), format!("not an experiment plan: {e}")))?;
        plan.validate()
            .map_err(|e| Error::file(path.display(), e.to_string()))?;
        Ok(Experiment {
            dir: dir.to_path_buf(),
            plan,
        })
    }

    /// Starts the experiment of `plan` in `dir`, or reopens it when `dir` holds the same plan;
    /// a folder holding another plan is refused (its runs would not match).
    pub fn create(dir: &Path, plan: &Plan) -> Result<Self> {
        plan.validate()?;
        let path = Self::plan_path(dir);
        if path.is_file() {
            let existing = Self::open(dir)?;
            if &existing.plan != plan {
                return Err(Error::file(
                    path.display(),
                    "holds another plan; choose a new folder, or run the experiment folder as it is",
                ));
            }
            return Ok(existing);
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let text = serde_json::to_string_pretty(plan)
            .map_err(|e| Error::file(path.display(), e.to_string()))?;
        write_atomic(&path, text.as_bytes())?;
        Ok(Experiment {
            dir: dir.to_path_buf(),
            plan: plan.clone(),
        })
    }

    /// The units, in array order.
    pub fn units(&self) -> Vec<Unit> {
        self.plan.units()
    }

    /// The unit with array index `index`.
    pub fn unit(&self, index: usize) -> Result<Unit> {
        let units = self.units();
        let n = units.len();
        units.into_iter().nth(index).ok_or_else(|| {
            Error::Config(format!(
                "unit {index} does not exist: the experiment has units 0 to {}",
                n.saturating_sub(1)
            ))
        })
    }

    /// The run folder of a unit.
    pub fn unit_dir(&self, unit: &Unit) -> PathBuf {
        self.dir.join("runs").join(&unit.name)
    }

    /// The report folder.
    pub fn report_dir(&self) -> PathBuf {
        self.dir.join("report")
    }
}
