//! The animal across a session, trial by trial: running bouts, pupil size and eye position (what
//! a scan records as behaviour) and the brain's fluctuating state (what it does not).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};

use super::physiology::{LATENTS, SHARED_GAIN_SPREAD};

/// Probability per trial (an image and its gap, about 1 s) that a still mouse starts running, and
/// that a running one stops: bouts of about 20 s, running 40% of the time (head-fixed mice on a
/// treadmill run in bouts of tens of seconds; Niell and Stryker 2010, Reimer et al. 2014).
const START_RUNNING: f64 = 1.0 / 30.0;
const STOP_RUNNING: f64 = 1.0 / 20.0;
/// Median running speed, cm/s (Niell and Stryker 2010: running mice move at 10-30 cm/s).
const RUNNING_SPEED: f32 = 12.0;

/// One trial's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TrialState {
    /// Pupil size, its change since the last trial, treadmill speed (Sensorium's `behavior`).
    pub(super) behavior: [f32; 3],
    /// Pupil centre in the eye camera's pixels (Sensorium's `pupil_center`).
    pub(super) pupil_center: [f32; 2],
    /// Whether the mouse is running.
    pub(super) running: bool,
    /// How far the image moves on the retina with the eye, (rows, columns) in image pixels.
    pub(super) eye_shift: (f32, f32),
    /// The population's log-gain fluctuation.
    pub(super) shared: f32,
    /// The brain's latent state (unit variance per dimension).
    pub(super) latent: [f32; LATENTS],
}

/// The states of `trials` consecutive trials (trial order is time).
pub(super) fn session(trials: usize, rng: &mut ChaCha8Rng) -> Vec<TrialState> {
    let unit = Normal::new(0.0f32, 1.0).expect("unit normal");
    let shared = Normal::new(0.0f32, SHARED_GAIN_SPREAD).expect("valid normal");
    let speed_while_running =
        LogNormal::new((RUNNING_SPEED as f64).ln(), 0.4).expect("valid log-normal");
    let (mut running, mut arousal, mut eye_x, mut eye_y) = (false, 0.0f32, 0.0f32, 0.0f32);
    let mut latent = [0.0f32; LATENTS];
    let mut last_pupil = None;
    let mut out = Vec::with_capacity(trials);
    for _ in 0..trials {
        let switch = if running { STOP_RUNNING } else { START_RUNNING };
        if rng.random::<f64>() < switch {
            running = !running;
        }
        // Slow processes: AR(1) with unit stationary variance.
        let ar = |x: &mut f32, rng: &mut ChaCha8Rng| *x = 0.9 * *x + 0.436 * unit.sample(rng);
        ar(&mut arousal, rng);
        ar(&mut eye_x, rng);
        ar(&mut eye_y, rng);
        for z in &mut latent {
            ar(z, rng);
        }
        let speed = if running {
            speed_while_running.sample(rng) as f32
        } else {
            (0.3 * unit.sample(rng)).abs()
        };
        // The pupil dilates with arousal and with locomotion (Reimer et al. 2014).
        let pupil = 20.0 + 3.0 * arousal + if running { 4.0 } else { 0.0 };
        let derivative = last_pupil.map_or(0.0, |p| pupil - p);
        last_pupil = Some(pupil);
        out.push(TrialState {
            behavior: [pupil, derivative, speed],
            pupil_center: [160.0 + 3.0 * eye_x, 120.0 + 3.0 * eye_y],
            running,
            eye_shift: (-1.5 * eye_y, -1.5 * eye_x),
            shared: shared.sample(rng),
            latent,
        });
    }
    out
}

/// Each trial's multiplicative gain for a neuron with `loadings` on the latent state, with mean
/// 1 over trials (so that the noise-free response is the expected one).
pub(super) fn trial_gain(state: &TrialState, loadings: &[f32; LATENTS]) -> f32 {
    let log_variance = SHARED_GAIN_SPREAD.powi(2) + loadings.iter().map(|l| l * l).sum::<f32>();
    let state_part: f32 = loadings.iter().zip(&state.latent).map(|(l, z)| l * z).sum();
    (state.shared + state_part - log_variance / 2.0).exp()
}
