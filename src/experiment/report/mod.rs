//! The experiment's report, readable without neureg: `report/report.md` with PNG figures, and
//! every number as CSV and `numbers.json`. Its opening lines are written from the numbers and
//! their errors; a partial experiment reports what it has and lists what is missing.
//!
//! Statistics: over seeds, mean and standard error of the mean (SEM); differences between
//! conditions are paired by seed (the same seed gives the same initial weights, batch order and
//! augmentation), described by a 95% Student's t interval and tested by the exact sign-flip
//! permutation test, Holm-corrected within each declared family (`comparisons.rs`). Minimal
//! perturbations: per run the median over samples of the smallest distance any of the plan's
//! attacks found in that norm; per condition the mean of those medians over seeds, with a 95%
//! bootstrap interval over samples (the same resampled samples for every seed), and compared
//! between conditions over seeds like every other measure.

mod build;

mod markdown;
mod plots;
mod summary;
mod tables;

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::eval::attacks::Norm;
use crate::eval::noise::NoiseKind;
use crate::experiment::Experiment;
use crate::runs::config::Condition;
use crate::runs::lock::FolderLock;
use crate::stats::{MeanSem, PairedComparison};

pub use crate::eval::comparisons::{self, Comparison};
pub use build::build_report;
use build::distinct_norms;
use markdown::markdown;
use plots::write_figures;
use summary::{difference, pm, summary};
use tables::write_tables;

/// Bootstrap resamples of the perturbation intervals.
const RESAMPLES: usize = 1000;

/// One unit's line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitRow {
    /// Its run folder's name.
    pub name: String,
    /// Its group's label.
    pub group: String,
    /// Its seed.
    pub seed: u64,
    /// Its state in words.
    pub status: String,
    /// Final test accuracy, when trained.
    pub test_accuracy: Option<f64>,
    /// Final layer weights gamma, when trained with the similarity loss.
    pub gamma: Option<Vec<f64>>,
}

/// A (condition, strength): its seeds' clean accuracy and final gamma.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRow {
    /// "Neural (model)", or with ", a = 10" when the plan has several strengths for it.
    pub label: String,
    /// The condition.
    pub condition: Condition,
    /// The strength a.
    pub strength: f64,
    /// Seeds whose training finished.
    pub seeds: Vec<u64>,
    /// Final test accuracy over those seeds.
    pub clean: Option<MeanSem>,
    /// Clean accuracy minus None's, paired by seed.
    pub clean_vs_none: Option<PairedComparison>,
    /// The tapped conv layers.
    pub taps: Vec<usize>,
    /// Final gamma per tap over seeds (Table 1); empty without the similarity loss.
    pub gamma: Vec<MeanSem>,
}

/// One group's noise curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurveRow {
    /// The group.
    pub label: String,
    /// Accuracy per level over seeds.
    pub accuracy: Vec<MeanSem>,
    /// The pre-declared summary: each seed's mean accuracy over the levels, over seeds.
    pub mean_over_levels: MeanSem,
}

/// A group's accuracy minus None's at each level, paired by seed (uncorrected; the declared
/// comparisons are in [`Report::comparisons`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DifferenceRow {
    /// The group.
    pub label: String,
    /// The reference ("None").
    pub against: String,
    /// Paired difference per level.
    pub difference: Vec<PairedComparison>,
    /// Paired difference of the mean over the levels.
    pub mean_over_levels: PairedComparison,
}

/// Fig. 4 for one kind of noise.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoiseSection {
    /// The noise.
    pub kind: NoiseKind,
    /// Its levels.
    pub levels: Vec<f64>,
    /// Per group.
    pub curves: Vec<CurveRow>,
    /// Against None.
    pub differences: Vec<DifferenceRow>,
}

/// A group's minimal perturbation in one norm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerturbationRow {
    /// The group.
    pub label: String,
    /// The norm.
    pub norm: Norm,
    /// The attacks whose best is taken.
    pub attacks: Vec<String>,
    /// Per seed with results: (seed, median over samples; None: infinite).
    pub per_seed: Vec<(u64, Option<f64>)>,
    /// Mean over seeds of the medians (None: some median infinite, or no results).
    pub median: Option<f64>,
    /// 95% bootstrap interval over samples of that mean.
    pub interval: Option<(f64, f64)>,
    /// Samples per run.
    pub samples: usize,
}

/// Everything the report says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The plan's name.
    pub name: String,
    /// Units done out of all.
    pub done: usize,
    /// Every unit.
    pub units: Vec<UnitRow>,
    /// Clean accuracy and Table 1.
    pub groups: Vec<GroupRow>,
    /// Fig. 4 per noise kind.
    pub noise: Vec<NoiseSection>,
    /// Minimal perturbations per group and norm.
    pub perturbations: Vec<PerturbationRow>,
    /// The declared comparisons, family by family (the primary family first).
    pub comparisons: Vec<Comparison>,
    /// The opening lines.
    pub summary: Vec<String>,
    /// The figures, as (file name in the report folder, caption), in the report's order.
    #[serde(default)]
    pub figures: Vec<(String, String)>,
}

/// Reads the report an experiment's report folder holds (`numbers.json`).
pub fn read_report(dir: &std::path::Path) -> Result<Report> {
    let path = dir.join("numbers.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(path.display(), format!("not a neureg report: {e}")))
}

/// Writes the report of `exp` into its report folder (waiting for another process that is
/// writing it) and returns it.
pub fn write_report(exp: &Experiment) -> Result<Report> {
    let dir = exp.report_dir();
    let mut lock = None;
    for _ in 0..120 {
        match FolderLock::acquire(&dir) {
            Ok(l) => {
                lock = Some(l);
                break;
            }
            Err(Error::File { .. }) => std::thread::sleep(std::time::Duration::from_millis(500)),
            Err(e) => return Err(e),
        }
    }
    let _lock = match lock {
        Some(l) => l,
        None => FolderLock::acquire(&dir)?,
    };
    let mut r = build_report(exp)?;
    write_tables(&dir, &r)?;
    r.figures = write_figures(&dir, &r)?;
    let json =
        serde_json::to_string_pretty(&r).map_err(|e| Error::file(dir.display(), e.to_string()))?;
    write_atomic(&dir.join("numbers.json"), json.as_bytes())?;
    write_atomic(
        &dir.join("report.md"),
        markdown(exp, &r, &r.figures).as_bytes(),
    )?;
    Ok(r)
}
