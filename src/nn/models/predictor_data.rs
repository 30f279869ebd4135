//! A scan as the predictor sees it: inputs normalised as neuralpredictors does
//! (images z-scored, responses divided by each neuron's standard deviation,
//! behaviour by its standard deviation, pupil centre z-scored), with every
//! statistic taken from the training tier only.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{Scan, Tier};
use crate::error::{Error, Result};

/// The normalisation statistics, kept with the model so that new images are treated alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean and standard deviation of all training image pixels.
    pub image_mean: f32,
    /// See `image_mean`.
    pub image_std: f32,
    /// Per neuron: standard deviation of its training responses (1 where it is 0).
    pub response_std: Vec<f32>,
    /// Per behaviour channel: standard deviation over training trials (1 where 0).
    pub behavior_std: Option<[f32; 3]>,
    /// Mean normalised behaviour over training trials (the behaviour used for new images).
    pub behavior_mean: Option<[f32; 3]>,
    /// Per pupil coordinate: mean and standard deviation over training trials.
    pub pupil_mean: Option<[f32; 2]>,
    /// See `pupil_mean`.
    pub pupil_std: Option<[f32; 2]>,
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn nonzero(s: f64) -> f32 {
    if s > 1e-12 {
        s as f32
    } else {
        1.0
    }
}

impl Normalization {
    /// Statistics over the training trials of `scan`.
    pub fn from_scan(scan: &Scan) -> Result<Self> {
        let train: Vec<usize> = trials_of(scan, Tier::Train);
        if train.len() < 2 {
            return Err(Error::analysis(
                &scan.name,
                "the predictor needs at least two training trials (tier train)",
            ));
        }
        let pixels = train
            .iter()
            .flat_map(|&t| scan.images[&scan.image_ids[t]].iter().map(|&v| v as f64));
        let (image_mean, image_std) = mean_std(pixels);
        let n = scan.n_neurons();
        let response_std = (0..n)
            .map(|i| nonzero(mean_std(train.iter().map(|&t| scan.response(t)[i] as f64)).1))
            .collect();
        let behavior_std = scan.behavior.as_ref().map(|b| {
            let mut s = [1.0; 3];
            for (k, v) in s.iter_mut().enumerate() {
                *v = nonzero(mean_std(train.iter().map(|&t| b[t][k] as f64)).1);
            }
            s
        });
        let behavior_mean = scan.behavior.as_ref().zip(behavior_std).map(|(b, s)| {
            let mut m = [0.0; 3];
            for (k, v) in m.iter_mut().enumerate() {
                *v = (mean_std(train.iter().map(|&t| b[t][k] as f64)).0 / s[k] as f64) as f32;
            }
            m
        });
        let (mut pupil_mean, mut pupil_std) = (None, None);
        if let Some(p) = &scan.pupil_center {
            let (mut m, mut s) = ([0.0; 2], [1.0; 2]);
            for k in 0..2 {
                let (a, b) = mean_std(train.iter().map(|&t| p[t][k] as f64));
                m[k] = a as f32;
                s[k] = nonzero(b);
            }
            (pupil_mean, pupil_std) = (Some(m), Some(s));
        }
        Ok(Normalization {
            image_mean: image_mean as f32,
            image_std: nonzero(image_std),
            response_std,
            behavior_std,
            behavior_mean,
            pupil_mean,
            pupil_std,
        })
    }

    /// Normalised images (B, 1, H, W) from raw pixel rows.
    pub fn images(
        &self,
        pixels: &[&[f32]],
        (h, w): (usize, usize),
        device: &Device,
    ) -> Result<Tensor> {
        let data: Vec<f32> = pixels
            .iter()
            .flat_map(|p| p.iter().map(|v| (v - self.image_mean) / self.image_std))
            .collect();
        Ok(Tensor::from_vec(data, (pixels.len(), 1, h, w), device)?)
    }

    /// (1, N) factors that take normalised predictions back to the response scale.
    pub fn response_scale(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(
            &self.response_std,
            (1, self.response_std.len()),
            device,
        )?)
    }

    /// The behaviour and pupil inputs used for images that no trial showed: the training means.
    pub fn mean_inputs(
        &self,
        count: usize,
        device: &Device,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let behavior = self
            .behavior_mean
            .map(|m| Tensor::from_vec(m.repeat(count), (count, 3), device))
            .transpose()?;
        let pupil = self
            .pupil_mean
            .map(|_| Tensor::zeros((count, 2), candle_core::DType::F32, device))
            .transpose()?;
        Ok((behavior, pupil))
    }
}

/// The trials of `scan` in `tier`, in trial order.
pub fn trials_of(scan: &Scan, tier: Tier) -> Vec<usize> {
    scan.tiers
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == tier)
        .map(|(i, _)| i)
        .collect()
}

/// One batch of trials as tensors.
pub struct Batch {
    /// (B, 1, H, W) normalised images.
    pub images: Tensor,
    /// (B, N) normalised responses.
    pub responses: Tensor,
    /// (B, 3) normalised behaviour.
    pub behavior: Option<Tensor>,
    /// (B, 2) normalised pupil centre.
    pub pupil: Option<Tensor>,
}

/// The trials `trials` of `scan`, normalised by `norm`.
pub fn batch(
    scan: &Scan,
    norm: &Normalization,
    trials: &[usize],
    device: &Device,
) -> Result<Batch> {
    let pixels: Vec<&[f32]> = trials
        .iter()
        .map(|&t| scan.images[&scan.image_ids[t]].as_slice())
        .collect();
    let images = norm.images(&pixels, scan.image_shape, device)?;
    let n = scan.n_neurons();
    let responses: Vec<f32> = trials
        .iter()
        .flat_map(|&t| {
            scan.response(t)
                .iter()
                .zip(&norm.response_std)
                .map(|(r, s)| r / s)
        })
        .collect();
    let responses = Tensor::from_vec(responses, (trials.len(), n), device)?;
    let behavior = match (&scan.behavior, norm.behavior_std) {
        (Some(b), Some(s)) => Some(Tensor::from_vec(
            trials
                .iter()
                .flat_map(|&t| (0..3).map(move |k| b[t][k] / s[k]))
                .collect::<Vec<f32>>(),
            (trials.len(), 3),
            device,
        )?),
        _ => None,
    };
    let pupil = match (&scan.pupil_center, norm.pupil_mean, norm.pupil_std) {
        (Some(p), Some(m), Some(s)) => Some(Tensor::from_vec(
            trials
                .iter()
                .flat_map(|&t| (0..2).map(move |k| (p[t][k] - m[k]) / s[k]))
                .collect::<Vec<f32>>(),
            (trials.len(), 2),
            device,
        )?),
        _ => None,
    };
    Ok(Batch {
        images,
        responses,
        behavior,
        pupil,
    })
}
