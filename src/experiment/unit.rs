//! One unit of an experiment, stage by stage: train its run, then each noise kind, then each
//! attack. A stage whose result is stored with the plan's settings is skipped, so a unit run
//! again after a kill, a pause or a requeue resumes where it stopped; its folder's lock keeps a
//! second process out meanwhile.

use std::path::Path;

use candle_core::Device;

use crate::error::{Error, Result};
use crate::eval::minimal::{attack_run, AttackResult};
use crate::eval::noise::{noise_curve, NoiseCurve, NoiseKind};
use crate::eval::results::{stored_curve, RunResults};
use crate::experiment::check::check_plan;
use crate::experiment::report::{write_report, Report};
use crate::experiment::{Experiment, Unit};
use crate::progress::Progress;
use crate::runs::lock::{holder, FolderLock, Holder};
use crate::runs::store::{RunInfo, RunStatus};
use crate::runs::MetricEvent;
use crate::train::classifier::train_locked;

/// A step of a unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Training its run.
    Train,
    /// Its accuracy under one kind of noise.
    Noise(NoiseKind),
    /// One of the plan's attacks (its index there).
    Attack(usize),
}

/// Where a unit stands, read from its folder.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitState {
    /// Nothing written yet.
    NotStarted,
    /// A process holds its lock now.
    Running(Holder),
    /// Some stages are done (the rest are listed).
    Partial {
        /// Epochs trained so far.
        epochs_done: usize,
        /// Stages left.
        left: Vec<String>,
    },
    /// Every stage done.
    Done,
    /// Its training stopped (e.g. a NaN loss): no evaluation follows.
    Stopped(String),
}

/// A unit and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStatus {
    /// The unit.
    pub unit: Unit,
    /// Its state.
    pub state: UnitState,
}

impl UnitStatus {
    /// One line for `--status` and the window.
    pub fn describe(&self, epochs: usize) -> String {
        match &self.state {
            UnitState::NotStarted => "not started".into(),
            UnitState::Running(h) => format!("running ({})", h.describe()),
            UnitState::Partial { epochs_done, left } => {
                format!("{epochs_done}/{epochs} epochs; to do: {}", left.join(", "))
            }
            UnitState::Done => "done".into(),
            UnitState::Stopped(reason) => format!("stopped: {reason}"),
        }
    }
}

/// Every stage of a unit of `exp`, in order.
pub fn stages(exp: &Experiment) -> Vec<Stage> {
    let mut out = vec![Stage::Train];
    out.extend(exp.plan.noise.kinds.iter().map(|&k| Stage::Noise(k)));
    out.extend((0..exp.plan.attacks.len()).map(Stage::Attack));
    out
}

/// The stage's name in status lines.
pub fn stage_name(exp: &Experiment, stage: &Stage) -> String {
    match stage {
        Stage::Train => "training".into(),
        Stage::Noise(k) => format!("{} noise", k.name()),
        Stage::Attack(i) => {
            let a = &exp.plan.attacks[*i];
            format!("{} {:?}", a.attack.label(), a.norm)
        }
    }
}

/// The run's stored curve of `kind`, if stored with the plan's levels, samples and seed. An
/// unreadable curve counts as not stored: the stage runs again and replaces it.
pub fn plan_curve(exp: &Experiment, dir: &Path, kind: NoiseKind) -> Option<NoiseCurve> {
    let noise = &exp.plan.noise;
    stored_curve(dir, kind).ok().flatten().filter(|c| {
        c.levels == noise.levels
            && c.noise_seed == noise.seed
            && (noise.samples == 0 || c.samples == noise.samples)
    })
}

/// The run's stored attack results made with one of the plan's attack settings (the readable
/// ones: an unreadable result counts as not stored, and its attack runs again and replaces it).
pub fn plan_attacks(exp: &Experiment, dir: &Path) -> Vec<AttackResult> {
    RunResults::read(dir)
        .attacks
        .into_iter()
        .filter(|r| exp.plan.attacks.contains(&r.config))
        .collect()
}

/// Whether `stage` of the run in `dir` is stored with the plan's settings; `trained`: whether
/// its training has ended (finished or stopped), as its metrics say.
fn stage_done(exp: &Experiment, dir: &Path, stage: &Stage, trained: bool) -> bool {
    match stage {
        Stage::Train => trained,
        Stage::Noise(kind) => plan_curve(exp, dir, *kind).is_some(),
        Stage::Attack(i) => plan_attacks(exp, dir)
            .iter()
            .any(|r| r.config == exp.plan.attacks[*i]),
    }
}

/// The state of `unit`.
pub fn unit_status(exp: &Experiment, unit: &Unit) -> UnitStatus {
    let dir = exp.unit_dir(unit);
    UnitStatus {
        unit: unit.clone(),
        state: state_of(exp, &dir, RunInfo::read(&dir).ok().as_ref()),
    }
}

/// The state of the unit in `dir` whose run reads as `run` (None: nothing readable yet).
pub fn state_of(exp: &Experiment, dir: &Path, run: Option<&RunInfo>) -> UnitState {
    let me = Holder::me();
    if let Some(h) = holder(dir).filter(|h| *h != me && !h.is_dead(&me)) {
        return UnitState::Running(h);
    }
    let Some(run) = run else {
        return UnitState::NotStarted;
    };
    let status = run.status();
    if let RunStatus::Stopped(reason) = status {
        return UnitState::Stopped(reason);
    }
    let trained = status != RunStatus::Incomplete;
    let left: Vec<String> = stages(exp)
        .iter()
        .filter(|s| !stage_done(exp, dir, s, trained))
        .map(|s| stage_name(exp, s))
        .collect();
    if left.is_empty() {
        return UnitState::Done;
    }
    let epochs_done = run
        .events
        .iter()
        .filter(|e| matches!(e, MetricEvent::Epoch { .. }))
        .count();
    UnitState::Partial { epochs_done, left }
}

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
                &plan.noise.levels,
                plan.noise.samples,
                plan.noise.seed,
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

/// The status of every unit.
pub fn statuses(exp: &Experiment) -> Vec<UnitStatus> {
    exp.units().iter().map(|u| unit_status(exp, u)).collect()
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
