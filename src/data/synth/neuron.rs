//! One simulated V1 neuron: a Gabor receptive field laid out in visual degrees on the screen
//! (simple: one linear filter, rectified; complex: the energy of a quadrature pair), divisively
//! normalised by the local contrast (a Naka-Rushton contrast response), and a gain set by
//! running, pupil size and the unobserved state of the brain.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};

use super::physiology::*;
use super::screen::{direction_at, Screen};

/// A filter's weights on the window `[y0, y0 + h) x [x0, x0 + w)` of the image.
pub(super) struct Filter {
    y0: usize,
    x0: usize,
    h: usize,
    w: usize,
    weights: Vec<f32>,
}

impl Filter {
    fn sampled(
        screen: &Screen,
        centre: [f32; 2],
        radius: f32,
        f: &dyn Fn(f32, f32) -> f32,
    ) -> Self {
        let (y0, x0, h, w, weights) =
            screen.integrate(direction_at(centre[0], centre[1]), radius, f);
        Filter {
            y0,
            x0,
            h,
            w,
            weights,
        }
    }

    /// The weighted sum of `img` (row-major, `width` columns) over the window.
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

/// What a neuron is, in the units physiologists report (kept for the property tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Receptive-field centre: azimuth and elevation, degrees from the screen's centre.
    pub centre: [f32; 2],
    /// Envelope sigma along and across the carrier, degrees.
    pub sigma: [f32; 2],
    /// Preferred orientation of the carrier, radians.
    pub orientation: f32,
    /// Preferred spatial frequency, cycles per degree.
    pub frequency: f32,
    /// Simple (phase-sensitive) or complex.
    pub simple: bool,
    /// Low-pass: an ON (+1) or OFF (-1) region instead of a Gabor (0).
    pub low_pass: i8,
}

/// One model neuron.
pub(super) struct Neuron {
    pub(super) tuning: Tuning,
    even: Filter,
    odd: Option<Filter>,
    pool: Filter,
    exponent: f32,
    c50: f32,
    max_rate: f32,
    spontaneous: f32,
    /// Log-gain while running against sitting still.
    pub(super) running_log_gain: f32,
    /// Log-gain per standard deviation of pupil size.
    pub(super) pupil_log_gain: f32,
    /// Log-gain loadings on the brain's latent state.
    pub(super) loadings: [f32; LATENTS],
}

/// A positive value around `median` with log-normal spread `spread`.
fn log_normal(rng: &mut ChaCha8Rng, median: f32, spread: f32) -> f32 {
    LogNormal::new(median.ln() as f64, spread as f64).map_or(median, |d| d.sample(rng) as f32)
}

fn normal(rng: &mut ChaCha8Rng, mean: f32, sd: f32) -> f32 {
    Normal::new(mean, sd).map_or(mean, |d| d.sample(rng))
}

/// A neuron at the imaging-field position `field` (um, within [`FIELD_UM`]^2) on `screen`.
pub(super) fn random_neuron(screen: &Screen, field: [f32; 2], rng: &mut ChaCha8Rng) -> Neuron {
    // The retinotopic map: the monitor is centred on the field's population receptive field.
    let degrees_per_um = FIELD_DEGREES / FIELD_UM;
    let centre = [
        (field[0] - FIELD_UM / 2.0) * degrees_per_um + normal(rng, 0.0, RF_SCATTER_DEGREES),
        (field[1] - FIELD_UM / 2.0) * degrees_per_um + normal(rng, 0.0, RF_SCATTER_DEGREES),
    ];
    let sigma_along = log_normal(rng, RF_SIGMA_DEGREES, RF_SIGMA_SPREAD);
    let sigma_across = sigma_along * log_normal(rng, 1.0, RF_ASPECT_SPREAD);
    let frequency = SF_CPD * (normal(rng, 0.0, SF_SPREAD_OCTAVES)).exp2();
    let orientation = rng.random_range(0.0..PI);
    let phase = rng.random_range(0.0..2.0 * PI);
    let low_pass = if rng.random::<f32>() < LOW_PASS_FRACTION {
        if rng.random::<bool>() {
            1
        } else {
            -1
        }
    } else {
        0
    };
    let simple = low_pass != 0 || rng.random::<f32>() < BAND_PASS_SIMPLE_FRACTION;
    let tuning = Tuning {
        centre,
        sigma: [sigma_along, sigma_across],
        orientation,
        frequency,
        simple,
        low_pass,
    };
    let (su, sv) = (sigma_along, sigma_across);
    // A zero-mean Gabor scaled so that an optimal grating of contrast c drives it by c.
    let dc = (-(2.0 * PI * frequency * su).powi(2) / 2.0).exp();
    let gabor = |phase: f32| {
        move |u: f32, v: f32| {
            let a = u * orientation.cos() + v * orientation.sin();
            let b = -u * orientation.sin() + v * orientation.cos();
            let envelope = (-(a * a / (su * su) + b * b / (sv * sv)) / 2.0).exp();
            envelope * ((2.0 * PI * frequency * a + phase).cos() - dc * phase.cos())
                / (PI * su * sv)
        }
    };
    let radius = 3.0 * su.max(sv);
    // A low-pass cell sums the contrast in its region (a uniform field of contrast c drives it by
    // c), ON or OFF.
    let region = move |u: f32, v: f32| {
        low_pass as f32 * (-(u * u / (su * su) + v * v / (sv * sv)) / 2.0).exp()
            / (2.0 * PI * su * sv)
    };
    let even = if low_pass != 0 {
        Filter::sampled(screen, centre, radius, &region)
    } else {
        Filter::sampled(screen, centre, radius, &gabor(phase))
    };
    let odd = (!simple).then(|| Filter::sampled(screen, centre, radius, &gabor(phase + PI / 2.0)));
    // The normalisation pool: a Gaussian of the local squared contrast, weights summing to 1.
    let sp = POOL_SCALE * (su * sv).sqrt();
    let pool = Filter::sampled(screen, centre, 3.0 * sp, &|u: f32, v: f32| {
        (-(u * u + v * v) / (2.0 * sp * sp)).exp() / (2.0 * PI * sp * sp)
    });
    Neuron {
        tuning,
        even,
        odd,
        pool,
        exponent: normal(rng, EXPONENT.0, EXPONENT.1).clamp(1.0, 4.0),
        c50: log_normal(rng, C50, C50_SPREAD),
        max_rate: log_normal(rng, MAX_RATE_HZ.0, MAX_RATE_HZ.1),
        spontaneous: log_normal(rng, SPONTANEOUS_HZ.0, SPONTANEOUS_HZ.1),
        running_log_gain: normal(rng, RUNNING_GAIN.0.ln(), RUNNING_GAIN.1),
        pupil_log_gain: normal(rng, PUPIL_LOG_GAIN.0, PUPIL_LOG_GAIN.1),
        loadings: std::array::from_fn(|_| normal(rng, 0.0, LOADING_SPREAD)),
    }
}

/// An image as the neurons see it: contrast against the screen's mean gray, and its square.
pub(super) struct Contrast {
    contrast: Vec<f32>,
    squared: Vec<f32>,
    width: usize,
}

impl Contrast {
    /// Of `img` (luminance 0-255, row-major, `width` columns; the screen's mean gray is 128).
    pub(super) fn of(img: &[f32], width: usize) -> Self {
        Self::from_contrast(img.iter().map(|v| (v - 128.0) / 128.0).collect(), width)
    }

    /// Of contrast values (0 is the mean gray).
    pub(super) fn from_contrast(contrast: Vec<f32>, width: usize) -> Self {
        let squared = contrast.iter().map(|c| c * c).collect();
        Contrast {
            contrast,
            squared,
            width,
        }
    }
}

impl Neuron {
    /// The filter drive: the rectified linear response (simple) or the quadrature pair's energy
    /// (complex), in contrast units.
    fn drive(&self, image: &Contrast) -> f32 {
        let e = self.even.apply(&image.contrast, image.width);
        match &self.odd {
            Some(o) => (e * e + o.apply(&image.contrast, image.width).powi(2)).sqrt(),
            None => e.max(0.0),
        }
    }

    /// The local contrast of the normalisation pool (an optimal grating of contrast c gives c).
    fn pool_contrast(&self, image: &Contrast) -> f32 {
        (2.0 * self.pool.apply(&image.squared, image.width).max(0.0)).sqrt()
    }

    /// Mean rate (spikes/s) to `image` with the visual response scaled by `gain`.
    pub(super) fn rate(&self, image: &Contrast, gain: f32) -> f32 {
        let n = self.exponent;
        let d = self.drive(image).powf(n);
        let p = self.pool_contrast(image).powf(n);
        self.spontaneous + gain * self.max_rate * d / (self.c50.powf(n) + p)
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
