//! How well a model predicts each neuron (docs/method.md section 6): single-trial correlation,
//! correlation to the oracle mean, fraction of explainable variance explained,
//! and the oracle-correlation ceiling the data allow.

use std::collections::BTreeMap;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::data::{Scan, Tier};
use crate::error::{Error, Result};
use crate::nn::models::predictor_data::trials_of;
use crate::runs::predictor::{predict_trials, read_json, LoadedPredictor};
use crate::runs::PredictorDir;
use crate::similarity::compare::pearson;

/// Per-neuron quality of a model on a set of trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronQuality {
    /// `rho[i]`: correlation of prediction and response over all the trials.
    pub rho: Vec<f32>,
    /// Correlation of the mean prediction and the mean response over the repeated images.
    pub oracle_correlation: Vec<f32>,
    /// Fraction of explainable variance explained over the repeated trials.
    pub feve: Vec<f32>,
    /// Fraction of the response variance that is explainable (not trial-to-trial noise).
    pub explainable: Vec<f32>,
    /// Ceiling: correlation of each repeated trial with the mean of the other repeats.
    pub ceiling: Vec<f32>,
    /// Neurons whose explainable fraction is below the threshold (kept, but flagged).
    pub flagged: Vec<usize>,
}

impl NeuronQuality {
    /// Mean of `rho`.
    pub fn mean_rho(&self) -> f32 {
        mean(&self.rho)
    }
    /// Mean of `ceiling`.
    pub fn mean_ceiling(&self) -> f32 {
        mean(&self.ceiling)
    }
}

fn mean(v: &[f32]) -> f32 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f32>() / v.len() as f32
    }
}

/// Quality of `predictions` against `responses` (both trials x `n` neurons, the
/// response scale) over trials showing `image_ids`; neurons whose explainable
/// fraction is below `threshold` are flagged.
pub fn neuron_quality(
    responses: &[f32],
    predictions: &[f32],
    image_ids: &[i64],
    n: usize,
    threshold: f32,
) -> NeuronQuality {
    let t_count = image_ids.len();
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (t, &id) in image_ids.iter().enumerate() {
        groups.entry(id).or_default().push(t);
    }
    groups.retain(|_, g| g.len() >= 2);
    let repeated: Vec<usize> = groups.values().flatten().copied().collect();
    let column = |data: &[f32], i: usize, trials: &[usize]| -> Vec<f32> {
        trials.iter().map(|&t| data[t * n + i]).collect()
    };
    let all: Vec<usize> = (0..t_count).collect();
    let mut q = NeuronQuality {
        rho: Vec::with_capacity(n),
        oracle_correlation: Vec::with_capacity(n),
        feve: Vec::with_capacity(n),
        explainable: Vec::with_capacity(n),
        ceiling: Vec::with_capacity(n),
        flagged: Vec::new(),
    };
    for i in 0..n {
        q.rho
            .push(pearson(&column(responses, i, &all), &column(predictions, i, &all)) as f32);
        let mean_of = |data: &[f32], g: &[usize]| {
            g.iter().map(|&t| data[t * n + i] as f64).sum::<f64>() / g.len() as f64
        };
        let (mut mr, mut mp, mut noise) = (Vec::new(), Vec::new(), 0.0f64);
        let (mut own, mut others) = (Vec::new(), Vec::new());
        for g in groups.values() {
            let m = mean_of(responses, g);
            mr.push(m as f32);
            mp.push(mean_of(predictions, g) as f32);
            noise += g
                .iter()
                .map(|&t| (responses[t * n + i] as f64 - m).powi(2))
                .sum::<f64>()
                / (g.len() - 1) as f64;
            let sum = m * g.len() as f64;
            for &t in g {
                own.push(responses[t * n + i]);
                others.push(((sum - responses[t * n + i] as f64) / (g.len() - 1) as f64) as f32);
            }
        }
        noise /= groups.len().max(1) as f64;
        q.oracle_correlation.push(pearson(&mr, &mp) as f32);
        q.ceiling.push(pearson(&own, &others) as f32);
        let r: Vec<f64> = repeated
            .iter()
            .map(|&t| responses[t * n + i] as f64)
            .collect();
        let total = if r.len() > 1 {
            let m = r.iter().sum::<f64>() / r.len() as f64;
            r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64
        } else {
            0.0
        };
        let mse = repeated
            .iter()
            .map(|&t| (responses[t * n + i] as f64 - predictions[t * n + i] as f64).powi(2))
            .sum::<f64>()
            / repeated.len().max(1) as f64;
        let explainable = if total > 0.0 {
            ((total - noise) / total) as f32
        } else {
            0.0
        };
        q.explainable.push(explainable);
        q.feve.push(if total - noise > 0.0 {
            (1.0 - (mse - noise) / (total - noise)) as f32
        } else {
            0.0
        });
        if explainable < threshold {
            q.flagged.push(i);
        }
    }
    q
}

/// The quality of `predictor` on the test tier of `scan` (the scan it was fitted to).
pub fn test_quality(
    predictor: &LoadedPredictor,
    scan: &Scan,
    flag_below: f32,
    device: &Device,
) -> Result<NeuronQuality> {
    predictor.check_scan(scan)?;
    let test = trials_of(scan, Tier::Test);
    if test.is_empty() {
        return Err(Error::analysis(
            &scan.name,
            "no test trials to measure the predictor on",
        ));
    }
    let norm = &predictor.meta.normalization;
    let pred = predict_trials(&predictor.model, scan, norm, &test, device)?;
    let resp: Vec<f32> = test
        .iter()
        .flat_map(|&t| scan.response(t).to_vec())
        .collect();
    let ids: Vec<i64> = test.iter().map(|&t| scan.image_ids[t]).collect();
    Ok(neuron_quality(
        &resp,
        &pred,
        &ids,
        scan.n_neurons(),
        flag_below,
    ))
}

/// The quality `predictor`'s fit wrote at its end (`quality.json`).
pub fn stored_quality(predictor: &LoadedPredictor) -> Result<NeuronQuality> {
    read_json(&PredictorDir(&predictor.dir).quality())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_quality() {
        // One neuron; image 1 trials (1, 3), image 2 trials (5, 7); prediction = image means (2, 2, 6, 6).
        let responses = [1.0, 3.0, 5.0, 7.0];
        let predictions = [2.0, 2.0, 6.0, 6.0];
        let q = neuron_quality(&responses, &predictions, &[1, 1, 2, 2], 1, 0.05);
        // noise = mean(var(1,3), var(5,7)) = 2; total var(1,3,5,7) = 20/3; mse = 1.
        // explainable = (20/3 - 2) / (20/3) = 0.7; FEVE = 1 - (1 - 2) / (20/3 - 2) = 1 + 3/14.
        assert!((q.explainable[0] - 0.7).abs() < 1e-6);
        assert!((q.feve[0] - (1.0 + 3.0 / 14.0)).abs() < 1e-5);
        assert!((q.oracle_correlation[0] - 1.0).abs() < 1e-6);
        // rho = corr((1,3,5,7), (2,2,6,6)) = 16 / sqrt(20 * 16) = 0.894...
        assert!((q.rho[0] - (16.0f32 / (20.0f32 * 16.0).sqrt())).abs() < 1e-6);
        // Leave-one-out: others = (3, 1, 7, 5): corr with (1, 3, 5, 7) = 12 / 20 = 0.6.
        assert!((q.ceiling[0] - 0.6).abs() < 1e-6);
        assert!(q.flagged.is_empty());
    }

    #[test]
    fn pure_noise_is_flagged() {
        let q = neuron_quality(&[1.0, 3.0, 1.0, 3.0], &[2.0; 4], &[1, 1, 2, 2], 1, 0.05);
        assert_eq!(q.flagged, vec![0]);
    }
}
