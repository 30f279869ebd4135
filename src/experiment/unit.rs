//! One unit of an experiment, stage by stage: train its run, then each noise kind, then each
//! attack. A stage whose result is stored with the plan's settings is skipped, so a unit run
//! again after a kill, a pause or a requeue resumes where it stopped; its folder's lock keeps a
//! second process out meanwhile.

use candle_core::Device;

use crate::error::{Error, Result};
use crate::eval::minimal::attack_run;
use crate::eval::noise::noise_curve;
use crate::experiment::check::check_plan;
use crate::experiment::report::{write_report, Report};
use crate::experiment::status::{
    stage_done, stage_name, stages, unit_status, Stage, UnitState, UnitStatus,
};
use crate::experiment::{Experiment, Unit};
use crate::progress::Progress;
use crate::runs::lock::FolderLock;
use crate::runs::store::{RunInfo, RunStatus};
use crate::train::classifier::train_locked;

/// Cancels the stages that cannot checkpoint mid-way when a pause is requested (they are
/// redone from their start).
struct PauseStops<'a>(&'a dyn Progress);

impl Progress for PauseStops<'_> {
    fn stage(&self, name: &str, total: u64) {
        self.0.stage(name, total)
    }
    fn advance(&self, n: u64) {
        self.0.advance(n)
    }
    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled() || self.0.pause_requested()
    }
    fn pause_requested(&self) -> bool {
        self.0.pause_requested()
    }
}

/// Runs every stage of `unit` that is not done; `on_stage` hears each as it starts. Returns
/// the unit's state at the end (`Done`, or `Stopped` when its training stopped).
pub fn run_unit(
    exp: &Experiment,
    unit: &Unit,
    device: &Device,
    progress: &dyn Progress,
    on_stage: &mut dyn FnMut(&str),
) -> Result<UnitState> {
    let dir = exp.unit_dir(unit);
    let lock = FolderLock::acquire(&dir)?;
    let plan = &exp.plan;
    // Training ends before the evaluation stages start, so its state is read once.
    let trained = RunInfo::read(&dir).is_ok_and(|r| r.status() != RunStatus::Incomplete);
    for stage in stages(exp) {
        if stage_done(exp, &dir, &stage, trained) {
            continue;
        }
        on_stage(&stage_name(exp, &stage));
        let guarded = PauseStops(progress);
        let result = match &stage {
            Stage::Train => {
                let run = train_locked(&dir, &unit.config, device, progress, &lock);
                match run {
                    Ok(run) => {
                        if let RunStatus::Stopped(reason) = run.status() {
                            return Ok(UnitState::Stopped(reason));
                        }
                        Ok(())
                    }
                    Err(e @ Error::Diverged { .. }) => {
                        // The run recorded why; the unit stops there.
                        return Ok(UnitState::Stopped(e.to_string()));
                    }
                    Err(e) => Err(e),
                }
            }
            Stage::Noise(kind) => noise_curve(
                &dir,
                *kind,
                &plan.noise.config,
                device,
                &guarded,
                &mut |_, _| {},
            )
            .map(|_| ()),
            Stage::Attack(i) => {
                attack_run(&dir, &plan.attacks[*i], device, &guarded, &mut |_| {}).map(|_| ())
            }
        };
        match result {
            Err(Error::Cancelled) if progress.pause_requested() => {
                return Err(Error::Paused(format!(
                    "{}: {} stopped, to be redone",
                    dir.display(),
                    stage_name(exp, &stage)
                )))
            }
            other => other?,
        }
    }
    Ok(UnitState::Done)
}

/// Checks the plan (`check::check_plan`: any problem stops it before the first unit), then runs
/// every unit in order, skipping those done and those another process holds, and
/// rebuilds the report after each unit that ran; `on_event` hears each unit's stages and its
/// end. Returns the report as it stands at the end and the units that failed, with why. A pause
/// stops at once with `Err(Paused)`; other errors are kept per unit and the rest go on.
pub fn run_all(
    exp: &Experiment,
    device: &Device,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(&Unit, &str),
) -> Result<(Report, Vec<(Unit, Error)>)> {
    let problems = check_plan(&exp.plan, &exp.dir);
    if !problems.is_empty() {
        return Err(Error::Config(format!(
            "the plan of {} cannot run, nothing was started: {}",
            exp.dir.display(),
            problems.join("; ")
        )));
    }
    let mut report = None;
    let mut failed = Vec::new();
    for unit in exp.units() {
        progress.check()?;
        let status = unit_status(exp, &unit);
        let result = match &status.state {
            UnitState::Done | UnitState::Stopped(_) => {
                on_event(&unit, &status.describe(exp.plan.training.epochs));
                continue;
            }
            UnitState::Running(h) => {
                on_event(&unit, &format!("in use by {}, skipped", h.describe()));
                continue;
            }
            _ => run_unit(exp, &unit, device, progress, &mut |stage| {
                on_event(&unit, stage)
            }),
        };
        let words = match result {
            Err(e @ (Error::Paused(_) | Error::Cancelled)) => return Err(e),
            Ok(state) => UnitStatus {
                unit: unit.clone(),
                state,
            }
            .describe(exp.plan.training.epochs),
            Err(e) => {
                let words = format!("failed: {e}");
                failed.push((unit.clone(), e));
                words
            }
        };
        on_event(&unit, &words);
        report = Some(write_report(exp)?);
    }
    let report = match report {
        Some(r) => r,
        None => write_report(exp)?,
    };
    Ok((report, failed))
}
