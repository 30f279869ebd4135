//! The synthetic scan generator: a simulated mouse V1 population viewing natural-image patches,
//! written in the Sensorium layout.
//!
//! Every property of the population is set from published measurements of mouse V1
//! (`physiology.rs`, each value with its source): the screen geometry of the paper's setup
//! (`screen.rs`: the 36 x 64 image spans about 124 x 93 degrees), receptive fields of about 28
//! degrees laid out by a retinotopic map with scatter, preferring low spatial frequencies (0.04
//! cycles/degree), 40% simple and 60% complex cells, divisive normalisation by the local contrast
//! with a Naka-Rushton contrast response, gains set by running and pupil size (`neuron.rs`), and
//! trial-to-trial variability of three kinds: Poisson spike counts in the 500 ms window, a gain
//! fluctuation shared by the population, and a slow low-dimensional brain state each neuron's
//! gain loads on differently (`session.rs`: unobserved and unrelated to the image, the correlated
//! variability that keeps single trials noisy however many neurons are recorded, while a
//! predictive model averages it out). Several scans share the stimuli (and image ids) but have
//! different neurons. The ground truth, each trial's image seen at the mean behaviour with the eye
//! centred and without trial noise (the expected spike count), is written to
//! `meta/ground_truth/responses.npy`, so that denoising can be checked against the truth. The
//! same seed gives the same scans.
//!
//! The generator it replaced tiled the image with small, high-frequency Gabor filters z-scored
//! over the image set: its similarity tracked contrast energy at fine scales, which natural
//! images' pixel similarity (dominated by low frequencies) does not carry (Pearson r 0.01 with
//! the pixel similarity, where real mouse V1 is reported at about 0.8).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use rayon::prelude::*;

use crate::data::photos::{photos, Photo};
use crate::data::scan::{NeuronMeta, Scan, Tier};
use crate::data::scan_write::write_scan;
use crate::error::{Error, Result};
use crate::progress::Progress;

mod neuron;
pub mod physiology;
mod population;
pub mod screen;
mod session;

pub use neuron::Tuning;
pub use population::Population;

use neuron::{shift, Contrast};
use physiology::WINDOW_S;
use session::{session, trial_gain};

/// What to generate (also the flags of `neureg synth`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, clap::Args)]
pub struct SynthConfig {
    /// Number of scans (each with its own neurons).
    #[arg(long, default_value_t = SynthConfig::default().scans)]
    pub scans: usize,
    /// Images shown once.
    #[arg(long, default_value_t = SynthConfig::default().images)]
    pub images: usize,
    /// Oracle images, shown `repeats` times each.
    #[arg(long, default_value_t = SynthConfig::default().oracle)]
    pub oracle: usize,
    /// Repeats of each oracle image.
    #[arg(long, default_value_t = SynthConfig::default().repeats)]
    pub repeats: usize,
    /// Typical neuron count; each scan draws its count from [3/4, 3/2] of it.
    #[arg(long, default_value_t = SynthConfig::default().neurons)]
    pub neurons: usize,
    /// Image height in pixels.
    #[arg(long, default_value_t = SynthConfig::default().height)]
    pub height: usize,
    /// Image width in pixels.
    #[arg(long, default_value_t = SynthConfig::default().width)]
    pub width: usize,
    /// Random seed.
    #[arg(long, default_value_t = SynthConfig::default().seed)]
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            scans: 4,
            images: 500,
            oracle: 20,
            repeats: 10,
            neurons: 1000,
            height: 36,
            width: 64,
            seed: 0,
        }
    }
}

impl SynthConfig {
    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(format!("synthetic scans: {what}")));
        if self.scans == 0 || self.neurons < 2 {
            return bad("need at least one scan and two neurons");
        }
        if self.oracle < 2 || self.repeats < 2 {
            return bad("need at least two oracle images with at least two repeats each");
        }
        if self.height < 8 || self.width < 8 {
            return bad("images must be at least 8 x 8 pixels");
        }
        Ok(())
    }
}

/// Simulates the scans described by `config`.
pub fn synthesize(config: &SynthConfig, progress: &dyn Progress) -> Result<Vec<Scan>> {
    config.validate()?;
    let photos = photos()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let total = config.oracle + config.images;
    progress.stage("cutting stimuli", total as u64);
    let mut ids: Vec<i64> = (0..total as i64).collect();
    ids.shuffle(&mut rng);
    let mut stimuli = BTreeMap::new();
    for &id in &ids {
        stimuli.insert(id, cut_patch(&photos, config, &mut rng));
        progress.advance(1);
    }
    let oracle_ids = &ids[..config.oracle];
    let single_ids = &ids[config.oracle..];
    let mut scans = Vec::with_capacity(config.scans);
    for k in 0..config.scans {
        progress.check()?;
        progress.stage(&format!("simulating scan {}", k + 1), 1);
        let (population, mut rng) = Population::with_generator(config, k);
        scans.push(simulate_scan(
            k,
            config,
            &population,
            &stimuli,
            oracle_ids,
            single_ids,
            &mut rng,
        ));
        progress.advance(1);
    }
    Ok(scans)
}

/// Simulates and writes the scans as `out/scan_<k>.zip` (or folders when `zip` is false).
pub fn write_synthetic(
    config: &SynthConfig,
    out: &Path,
    zip: bool,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    let scans = synthesize(config, progress)?;
    progress.stage("writing scans", scans.len() as u64);
    let mut paths = Vec::new();
    for scan in &scans {
        let path = out.join(if zip {
            format!("{}.zip", scan.name)
        } else {
            scan.name.clone()
        });
        write_scan(scan, &path)?;
        paths.push(path);
        progress.advance(1);
    }
    Ok(paths)
}

/// A contrast-normalised grayscale patch (0..=255, whole numbers) from a random photo, position and scale.
fn cut_patch(photos: &[Photo], c: &SynthConfig, rng: &mut ChaCha8Rng) -> Vec<f32> {
    loop {
        let photo = &photos[rng.random_range(0..photos.len())];
        let max_scale = ((photo.height as f32 - 1.0) / c.height as f32)
            .min((photo.width as f32 - 1.0) / c.width as f32)
            .min(4.0);
        let scale = rng.random_range(1.0f32.min(max_scale)..=max_scale);
        let y0 =
            rng.random_range(0.0..=(photo.height as f32 - 1.0 - scale * c.height as f32).max(0.0));
        let x0 =
            rng.random_range(0.0..=(photo.width as f32 - 1.0 - scale * c.width as f32).max(0.0));
        let flip = rng.random::<bool>();
        let mut patch = Vec::with_capacity(c.height * c.width);
        for y in 0..c.height {
            for x in 0..c.width {
                let xx = if flip { c.width - 1 - x } else { x };
                // Four taps per pixel approximate averaging over the pixel's footprint.
                let (py, px) = (
                    y0 + (y as f32 + 0.5) * scale,
                    x0 + (xx as f32 + 0.5) * scale,
                );
                let q = scale / 4.0;
                let v = photo.sample(py - q, px - q)
                    + photo.sample(py - q, px + q)
                    + photo.sample(py + q, px - q)
                    + photo.sample(py + q, px + q);
                patch.push(v / 4.0);
            }
        }
        let n = patch.len() as f32;
        let mean = patch.iter().sum::<f32>() / n;
        let std = (patch.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
        if std < 4.0 {
            continue; // a flat patch drives no neuron; cut another
        }
        return patch
            .iter()
            .map(|v| ((v - mean) / std * 48.0 + 128.0).clamp(0.0, 255.0).round())
            .collect();
    }
}

fn simulate_scan(
    k: usize,
    c: &SynthConfig,
    population: &Population,
    stimuli: &BTreeMap<i64, Vec<f32>>,
    oracle_ids: &[i64],
    single_ids: &[i64],
    rng: &mut ChaCha8Rng,
) -> Scan {
    let neurons = &population.neurons;
    let n = neurons.len();
    let contrast: BTreeMap<i64, Vec<f32>> = stimuli
        .iter()
        .map(|(&id, img)| (id, img.iter().map(|v| (v - 128.0) / 128.0).collect()))
        .collect();

    // The ground truth: each image's expected spike count at the mean behaviour with the eye
    // centred, free of both trial noise and behavioural state.
    let standard: BTreeMap<i64, Vec<f32>> = contrast
        .iter()
        .map(|(&id, img)| {
            let seen = Contrast::from_contrast(img.clone(), c.width);
            let rates = neurons
                .par_iter()
                .map(|nr| nr.rate(&seen, 1.0) * WINDOW_S)
                .collect();
            (id, rates)
        })
        .collect();

    // Trials: every oracle image `repeats` times and every other image once, in random order.
    let mut trials: Vec<i64> = oracle_ids
        .iter()
        .flat_map(|&id| std::iter::repeat_n(id, c.repeats))
        .collect();
    trials.extend_from_slice(single_ids);
    trials.shuffle(rng);
    let t_count = trials.len();
    let mut single_order: Vec<i64> = single_ids.to_vec();
    single_order.shuffle(rng);
    let n_validation = single_ids.len().div_ceil(7);
    let validation: std::collections::BTreeSet<i64> =
        single_order[..n_validation].iter().copied().collect();
    let oracle: std::collections::BTreeSet<i64> = oracle_ids.iter().copied().collect();
    let tiers = trials
        .iter()
        .map(|id| {
            if oracle.contains(id) {
                Tier::Test
            } else if validation.contains(id) {
                Tier::Validation
            } else {
                Tier::Train
            }
        })
        .collect();

    let states = session(t_count, rng);
    // Behaviour gains are relative to the session's mean state, where the ground truth is taken.
    let running_fraction =
        states.iter().filter(|s| s.running).count() as f32 / t_count.max(1) as f32;
    let pupils: Vec<f32> = states.iter().map(|s| s.behavior[0]).collect();
    let pupil_mean = pupils.iter().sum::<f32>() / t_count.max(1) as f32;
    let pupil_sd = (pupils.iter().map(|p| (p - pupil_mean).powi(2)).sum::<f32>()
        / t_count.max(1) as f32)
        .sqrt()
        .max(1e-6);
    let mut responses = Vec::with_capacity(t_count * n);
    let mut ground_truth = Vec::with_capacity(t_count * n);
    for (id, state) in trials.iter().zip(&states) {
        ground_truth.extend_from_slice(&standard[id]);
        // The receptive fields move with the eye: shifting the image the other way is the same.
        let (dy, dx) = state.eye_shift;
        let seen =
            Contrast::from_contrast(shift(&contrast[id], c.height, c.width, dy, dx), c.width);
        let running = if state.running { 1.0 } else { 0.0 } - running_fraction;
        let pupil_z = (state.behavior[0] - pupil_mean) / pupil_sd;
        let means: Vec<f32> = neurons
            .par_iter()
            .map(|nr| {
                let behaviour = (nr.running_log_gain * running + nr.pupil_log_gain * pupil_z).exp();
                trial_gain(state, &nr.loadings) * nr.rate(&seen, behaviour) * WINDOW_S
            })
            .collect();
        for mean in means {
            let count = Poisson::new(mean.max(1e-6) as f64).map_or(0.0, |p| p.sample(rng)) as f32;
            responses.push(count);
        }
    }
    Scan {
        name: format!("scan_{}", k + 1),
        source: PathBuf::new(),
        image_ids: trials,
        tiers,
        unit_ids: (1..=n as i64).collect(),
        responses,
        behavior: Some(states.iter().map(|s| s.behavior).collect()),
        pupil_center: Some(states.iter().map(|s| s.pupil_center).collect()),
        image_shape: (c.height, c.width),
        images: stimuli.clone(),
        neurons: NeuronMeta {
            cell_motor_coordinates: Some(population.coordinates.clone()),
            area: Some(vec!["V1".to_string(); n]),
        },
        ground_truth: Some(ground_truth),
        notices: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_content() {
        let mut img = vec![0.0; 16];
        img[5] = 1.0; // (1, 1) in a 4 x 4 image
        let out = shift(&img, 4, 4, 1.0, 2.0);
        assert_eq!(out[2 * 4 + 3], 1.0);
        assert_eq!(out.iter().sum::<f32>(), 1.0);
        let half = shift(&img, 4, 4, 0.5, 0.0);
        assert!((half[5] - 0.5).abs() < 1e-6 && (half[9] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn small_scans_have_the_requested_structure_and_repeat_for_a_seed() {
        let c = SynthConfig {
            scans: 2,
            images: 30,
            oracle: 4,
            repeats: 3,
            neurons: 8,
            seed: 7,
            ..Default::default()
        };
        let a = synthesize(&c, &crate::progress::Silent).unwrap();
        let b = synthesize(&c, &crate::progress::Silent).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        for scan in &a {
            assert_eq!(scan.n_trials(), 30 + 4 * 3);
            assert_eq!(scan.oracle_trials().len(), 4);
            assert!(scan.oracle_trials().values().all(|t| t.len() == 3));
            assert!((6..=12).contains(&scan.n_neurons()));
            assert!(scan.responses.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
        assert_eq!(a[0].images, a[1].images);
        assert_ne!(
            a[0].ground_truth, a[1].ground_truth,
            "scans must have different neurons"
        );
    }
}
