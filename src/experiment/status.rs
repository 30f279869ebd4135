//! Where each unit of an experiment stands, read from its run folder: its stages, which are
//! done (a stage whose result is stored with the plan's settings), and its state. The running
//! is `unit.rs`; the report reads this.

use std::path::Path;

use crate::eval::minimal::AttackResult;
use crate::eval::noise::{NoiseCurve, NoiseKind};
use crate::eval::results::{stored_curve, RunResults};
use crate::experiment::{Experiment, Unit};
use crate::runs::lock::{holder, Holder};
use crate::runs::store::{RunInfo, RunStatus};
use crate::runs::MetricEvent;

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
    let noise = &exp.plan.noise.config;
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
pub(crate) fn stage_done(exp: &Experiment, dir: &Path, stage: &Stage, trained: bool) -> bool {
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

/// The status of every unit.
pub fn statuses(exp: &Experiment) -> Vec<UnitStatus> {
    exp.units().iter().map(|u| unit_status(exp, u)).collect()
}
