//! Noise robustness (docs/method.md section 8, Fig. 4) of several runs: each run's curve stored in its
//! `results/`, and the mean and SEM per condition.

use std::path::PathBuf;

use candle_core::Device;

use crate::error::Result;
use crate::eval::noise::{
    noise_curve, summarise, ConditionCurve, NoiseConfig, NoiseCurve, NoiseKind,
};
use crate::progress::Progress;
use crate::runs::store::run_name;
use crate::runs::RunConfig;

/// What to evaluate and how.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseRequest {
    /// Run folders.
    pub runs: Vec<PathBuf>,
    /// The noise.
    pub kind: NoiseKind,
    /// Levels, test images and seed.
    pub noise: NoiseConfig,
}

/// What happens as the evaluation goes.
pub enum NoiseEvent<'a> {
    /// Run `index` begins: its curve with no level yet (its config's notice, if any, says
    /// why its figures are not comparable).
    RunStarted {
        /// Position in the request's runs.
        index: usize,
        /// The curve so far.
        curve: &'a NoiseCurve,
        /// [`RunConfig::notice`] of the run.
        notice: Option<String>,
    },
    /// Run `index` has its accuracy at one more level.
    Level {
        /// Position in the request's runs.
        index: usize,
        /// The level.
        level: f64,
        /// Test accuracy at it.
        accuracy: f64,
    },
    /// Run `index` is done and stored.
    RunDone {
        /// Position in the request's runs.
        index: usize,
        /// Its curve.
        curve: &'a NoiseCurve,
    },
}

/// The curves of every run and their summary per condition.
pub struct NoiseOutcome {
    /// Per run, in the request's order.
    pub curves: Vec<NoiseCurve>,
    /// Per condition (and strength).
    pub summary: Vec<ConditionCurve>,
}

/// Evaluates every run of `request` in turn.
pub fn evaluate_noise(
    request: &NoiseRequest,
    device: &Device,
    progress: &dyn Progress,
    on_event: &mut dyn FnMut(NoiseEvent),
) -> Result<NoiseOutcome> {
    let levels = &request.noise.levels;
    let mut curves = Vec::with_capacity(request.runs.len());
    for (index, run) in request.runs.iter().enumerate() {
        let config = RunConfig::load(run)?;
        let partial = NoiseCurve {
            run: run_name(run),
            condition: config.condition,
            strength: config.strength,
            seed: config.seed,
            kind: request.kind,
            noise_seed: request.noise.seed,
            samples: request.noise.samples,
            levels: Vec::new(),
            accuracy: Vec::new(),
        };
        on_event(NoiseEvent::RunStarted {
            index,
            curve: &partial,
            notice: config.notice(),
        });
        let curve = noise_curve(
            run,
            request.kind,
            &request.noise,
            device,
            progress,
            &mut |k, accuracy| {
                on_event(NoiseEvent::Level {
                    index,
                    level: levels[k],
                    accuracy,
                })
            },
        )?;
        on_event(NoiseEvent::RunDone {
            index,
            curve: &curve,
        });
        curves.push(curve);
    }
    let summary = summarise(&curves)?;
    Ok(NoiseOutcome { curves, summary })
}
