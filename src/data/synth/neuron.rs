//! The simulated neurons: Gabor simple and complex cells, their nonlinearities, gains and
//! receptive-field shifts with the pupil.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};

use super::*;

/// One model neuron.
pub(super) struct Neuron {
    /// Even (and, for complex cells, odd) filter over a window of the image.
    pub(super) even: Filter,
    pub(super) odd: Option<Filter>,
    pub(super) amplitude: f32,
    pub(super) threshold: f32,
    pub(super) baseline: f32,
    pub(super) running_gain: f32,
    pub(super) pupil_gain: f32,
    /// Log-gain loadings on the population's latent state.
    pub(super) loadings: [f32; LATENTS],
    /// Mean and standard deviation of the drive over the unshifted stimuli.
    pub(super) drive_mean: f32,
    pub(super) drive_std: f32,
}

/// A filter defined on the window `[y0, y0 + h) x [x0, x0 + w)` of the image.
pub(super) struct Filter {
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
    weights: Vec<f32>,
}

impl Filter {
    pub(super) fn apply(&self, img: &[f32], width: usize) -> f32 {
        let mut acc = 0.0;
        for dy in 0..self.h {
            let row = &img[(self.y0 + dy) * width + self.x0..][..self.w];
            let wrow = &self.weights[dy * self.w..][..self.w];
            acc += row.iter().zip(wrow).map(|(a, b)| a * b).sum::<f32>();
        }
        acc
    }
}

/// Dimensions of the unobserved population state that modulates every trial (Stringer et al. 2019:
/// low-dimensional, brain-wide, unrelated to the stimulus).
pub(super) const LATENTS: usize = 3;
/// Standard deviation of a neuron's log-gain loading on each latent dimension.
pub(super) const LOADING_STD: f32 = 0.35;

/// Orientations of the filter types.
pub(super) const ORIENTATIONS: usize = 4;
/// Envelope widths of the filter types, as fractions of the image height.
pub(super) const SCALES: [f32; 2] = [0.07, 0.11];
/// Cycles per envelope sigma of every filter type.
pub(super) const CYCLES_PER_SIGMA: f32 = 0.55;

pub(super) fn random_neuron(c: &SynthConfig, rng: &mut ChaCha8Rng) -> Neuron {
    let (h, w) = (c.height as f32, c.width as f32);
    // A filter type (orientation, scale, phase or complex) shared by many neurons across the field.
    let sigma = SCALES[rng.random_range(0..SCALES.len())] * h;
    let theta = rng.random_range(0..ORIENTATIONS) as f32 * PI / ORIENTATIONS as f32;
    let freq = CYCLES_PER_SIGMA / sigma;
    let phase = rng.random_range(0..4) as f32 * PI / 2.0;
    let complex = rng.random::<f32>() < 0.4;
    let cy = rng.random_range(0.3 * h..0.7 * h);
    let cx = rng.random_range(0.25 * w..0.75 * w);
    let gabor = |phase: f32| {
        let r = (3.0 * sigma).ceil() as isize;
        let (yc, xc) = (cy.round() as isize, cx.round() as isize);
        let y0 = (yc - r).max(0) as usize;
        let x0 = (xc - r).max(0) as usize;
        let y1 = ((yc + r + 1) as usize).min(c.height);
        let x1 = ((xc + r + 1) as usize).min(c.width);
        let mut weights = Vec::with_capacity((y1 - y0) * (x1 - x0));
        for y in y0..y1 {
            for x in x0..x1 {
                let (dy, dx) = (y as f32 - cy, x as f32 - cx);
                let u = dx * theta.cos() + dy * theta.sin();
                let v = -dx * theta.sin() + dy * theta.cos();
                let envelope = (-(u * u + 0.5 * v * v) / (2.0 * sigma * sigma)).exp();
                weights.push(envelope * (2.0 * PI * freq * u + phase).cos());
            }
        }
        let mean = weights.iter().sum::<f32>() / weights.len() as f32;
        let norm = weights
            .iter()
            .map(|v| (v - mean).powi(2))
            .sum::<f32>()
            .sqrt()
            .max(1e-6);
        for v in &mut weights {
            *v = (*v - mean) / norm;
        }
        Filter {
            y0,
            x0,
            h: y1 - y0,
            w: x1 - x0,
            weights,
        }
    };
    let even = gabor(phase);
    let odd = complex.then(|| gabor(phase + PI / 2.0));
    // A fifth of the cells respond weakly, as many recorded neurons do.
    let weak = rng.random::<f32>() < 0.2;
    let amplitude =
        LogNormal::new(0.0, 0.4).map_or(1.0, |d| d.sample(rng)) * if weak { 0.15 } else { 1.0 };
    Neuron {
        even,
        odd,
        amplitude,
        threshold: rng.random_range(0.0..1.0),
        baseline: rng.random_range(0.05..0.3),
        running_gain: Normal::new(0.25, 0.1).map_or(0.25, |d| d.sample(rng)),
        pupil_gain: Normal::new(0.1, 0.1).map_or(0.1, |d| d.sample(rng)),
        loadings: std::array::from_fn(|_| {
            Normal::new(0.0, LOADING_STD).map_or(0.0, |d| d.sample(rng))
        }),
        drive_mean: 0.0,
        drive_std: 1.0,
    }
}

impl Neuron {
    pub(super) fn raw_drive(&self, img: &[f32], width: usize) -> f32 {
        let e = self.even.apply(img, width);
        match &self.odd {
            Some(o) => (e * e + o.apply(img, width).powi(2)).sqrt(),
            None => e,
        }
    }

    /// Mean response to `img` at the given behaviour gain (before trial noise).
    pub(super) fn rate(&self, img: &[f32], width: usize, gain: f32) -> f32 {
        let z = (self.raw_drive(img, width) - self.drive_mean) / self.drive_std;
        let softplus = (2.0 * (z - self.threshold)).exp().ln_1p();
        gain * (self.baseline + self.amplitude * softplus)
    }
}

/// Shifts an image by (dy, dx) pixels with bilinear interpolation; outside is mean gray (0).
pub(super) fn shift(img: &[f32], h: usize, w: usize, dy: f32, dx: f32) -> Vec<f32> {
    let at = |y: isize, x: isize| {
        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
            0.0
        } else {
            img[y as usize * w + x as usize]
        }
    };
    let (fy, fx) = (dy.floor(), dx.floor());
    let (ay, ax) = (dy - fy, dx - fx);
    let (iy, ix) = (fy as isize, fx as isize);
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h as isize {
        for x in 0..w as isize {
            let (sy, sx) = (y - iy, x - ix);
            // out(y, x) = img(y - dy, x - dx)
            let v = at(sy, sx) * (1.0 - ay) * (1.0 - ax)
                + at(sy - 1, sx) * ay * (1.0 - ax)
                + at(sy, sx - 1) * (1.0 - ay) * ax
                + at(sy - 1, sx - 1) * ay * ax;
            out.push(v);
        }
    }
    out
}
