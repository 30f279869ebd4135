//! A plan checked before any unit runs: its settings, its data set, every condition's target
//! resolved exactly as training will resolve it (readable, square, symmetric, finite, its images
//! present, enough of them for a batch), and its folder writable. Every problem is listed at
//! once; an experiment with any does not start.

use std::path::Path;

use candle_core::Device;

use crate::data::load_classification_set;
use crate::experiment::Plan;
use crate::train::targets::load_sim_target;

/// Every problem of `plan` for an experiment in `dir`; empty when it can run.
pub fn check_plan(plan: &Plan, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = plan.validate() {
        problems.push(e.to_string());
    }
    if let Err(e) = load_classification_set(&plan.training.data) {
        problems.push(format!("the data set: {e}"));
    }
    // One unit per condition and strength: the seed does not change what is read.
    let units = plan.units();
    let mut seen = Vec::new();
    for unit in &units {
        let key = (unit.condition, unit.config.strength.to_bits());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        if let Err(e) = unit.config.validate() {
            problems.push(format!("{}: {e}", unit.name));
            continue;
        }
        if let Err(e) = load_sim_target(&unit.config, &Device::Cpu) {
            let label = plan.conditions[unit.condition].condition.label();
            problems.push(format!("{label} (unit {}): {e}", unit.name));
        }
    }
    if let Err(e) = writable(dir) {
        problems.push(format!("the experiment folder {}: {e}", dir.display()));
    }
    problems
}

/// Whether a file can be made in `dir`, or in the nearest folder above it that exists (which the
/// experiment would create it in): a probe file written and removed.
fn writable(dir: &Path) -> std::io::Result<()> {
    let existing = dir
        .ancestors()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| Path::new("."));
    let probe = existing.join(format!(".neureg-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}
