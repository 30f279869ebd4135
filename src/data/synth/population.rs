//! A scan's simulated neurons, to generate its responses and to be measured as a physiologist
//! would (gratings, running against still) by the tests that compare them with real mouse V1.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::neuron::{random_neuron, Contrast, Neuron, Tuning};
use super::physiology::{DEPTH_UM, FIELD_UM};
use super::screen::{angle_deg, direction_at, Direction, Screen};
use super::SynthConfig;

/// The neurons of one scan.
pub struct Population {
    pub(super) neurons: Vec<Neuron>,
    /// `cell_motor_coordinates` (um): the position in the imaging field and the depth.
    pub(super) coordinates: Vec<[f32; 3]>,
    screen: Screen,
}

impl Population {
    /// The neurons of scan `k` (0-based) of `config`, as `synthesize` draws them.
    pub fn of_scan(config: &SynthConfig, k: usize) -> Population {
        Self::with_generator(config, k).0
    }

    /// The neurons of scan `k` and the scan's generator after drawing them (the scan's trials
    /// are drawn from it next).
    pub(super) fn with_generator(config: &SynthConfig, k: usize) -> (Population, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(k as u64 + 1);
        let c = config;
        let n = rng.random_range(c.neurons * 3 / 4..=(c.neurons * 3 / 2).max(c.neurons * 3 / 4));
        let screen = Screen {
            height: c.height,
            width: c.width,
        };
        let coordinates: Vec<[f32; 3]> = (0..n)
            .map(|_| {
                [
                    rng.random_range(0.0..FIELD_UM).round(),
                    rng.random_range(0.0..FIELD_UM).round(),
                    rng.random_range(DEPTH_UM.0..DEPTH_UM.1).round(),
                ]
            })
            .collect();
        let neurons = coordinates
            .iter()
            .map(|p| random_neuron(&screen, [p[0], p[1]], &mut rng))
            .collect();
        let population = Population {
            neurons,
            coordinates,
            screen,
        };
        (population, rng)
    }

    /// The screen the neurons look at.
    pub fn screen(&self) -> Screen {
        self.screen
    }

    /// Each neuron's receptive field and tuning.
    pub fn tuning(&self) -> Vec<Tuning> {
        self.neurons.iter().map(|n| n.tuning).collect()
    }

    /// Each neuron's gain while running against sitting still.
    pub fn running_gains(&self) -> Vec<f32> {
        self.neurons
            .iter()
            .map(|n| n.running_log_gain.exp())
            .collect()
    }

    /// How much of each pixel the population sees: the sum of the neurons' receptive-field
    /// envelopes (isotropic, of their geometric-mean sigma) over the image, scaled to a maximum
    /// of 1. Weighting pixels by it gives the pixel similarity of what the population views.
    pub fn coverage(&self) -> Vec<f32> {
        let (h, w) = (self.screen.height, self.screen.width);
        let fields: Vec<(Direction, f32)> = self
            .neurons
            .iter()
            .map(|n| {
                let t = n.tuning;
                (
                    direction_at(t.centre[0], t.centre[1]),
                    (t.sigma[0] * t.sigma[1]).sqrt(),
                )
            })
            .collect();
        let mut out: Vec<f32> = (0..h * w)
            .map(|p| {
                let d = self
                    .screen
                    .direction((p / w) as f32 + 0.5, (p % w) as f32 + 0.5);
                fields
                    .iter()
                    .map(|(c, sigma)| {
                        let angle = angle_deg(*c, d);
                        (-angle * angle / (2.0 * sigma * sigma)).exp()
                    })
                    .sum()
            })
            .collect();
        let max = out
            .iter()
            .copied()
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        out.iter_mut().for_each(|v| *v /= max);
        out
    }

    /// Each neuron's noise-free rate (spikes/s) to `image` (luminance 0-255, row-major, the
    /// screen's size; 128 is the screen's mean gray), its visual response scaled by `gain`.
    pub fn rates(&self, image: &[f32], gain: f32) -> Vec<f32> {
        let seen = Contrast::of(image, self.screen.width);
        self.neurons.iter().map(|n| n.rate(&seen, gain)).collect()
    }
}
