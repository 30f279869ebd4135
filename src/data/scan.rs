//! A scan (docs/method.md section 1): one recording session of T trials and N neurons.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The data split a trial belongs to (Sensorium's `tiers.npy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Training trials.
    Train,
    /// Validation trials (early stopping).
    Validation,
    /// Test trials (the repeated oracle images in Sensorium scans).
    Test,
    /// Held-out test trials.
    FinalTest,
}

impl Tier {
    /// All tiers, in the order they are reported.
    pub const ALL: [Tier; 4] = [Tier::Train, Tier::Validation, Tier::Test, Tier::FinalTest];

    /// The name used in `tiers.npy`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Train => "train",
            Tier::Validation => "validation",
            Tier::Test => "test",
            Tier::FinalTest => "final_test",
        }
    }

    /// Parses a name from `tiers.npy`.
    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == s.trim())
    }
}

/// Optional per-neuron metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeuronMeta {
    /// Position of each cell (x, y, z) in motor coordinates.
    pub cell_motor_coordinates: Option<Vec<[f32; 3]>>,
    /// Brain area of each cell (e.g. "V1").
    pub area: Option<Vec<String>>,
}

/// One recording session, fully in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Shown to the user: the folder or zip name without extension.
    pub name: String,
    /// Where it was read from (empty for a scan made in memory).
    pub source: PathBuf,
    /// Per trial: the id of the image shown.
    pub image_ids: Vec<i64>,
    /// Per trial: its tier.
    pub tiers: Vec<Tier>,
    /// Per neuron: its id.
    pub unit_ids: Vec<i64>,
    /// T x N responses, row-major (trial, neuron).
    pub responses: Vec<f32>,
    /// Per trial: pupil size, its derivative, running speed.
    pub behavior: Option<Vec<[f32; 3]>>,
    /// Per trial: pupil centre (x, y).
    pub pupil_center: Option<Vec<[f32; 2]>>,
    /// Image height and width in pixels.
    pub image_shape: (usize, usize),
    /// The distinct images by id, each H x W row-major on the file's scale (0-255 for uint8).
    pub images: BTreeMap<i64, Vec<f32>>,
    /// Optional neuron metadata.
    pub neurons: NeuronMeta,
    /// T x N noise-free responses to each trial's image at the mean behaviour with the eye centred,
    /// present in synthetic scans (`meta/ground_truth/responses.npy`).
    pub ground_truth: Option<Vec<f32>>,
    /// What reading it had to assume or leave out (an NWB file's choices, missing behaviour).
    pub notices: Vec<String>,
}

impl Scan {
    /// Number of trials T.
    pub fn n_trials(&self) -> usize {
        self.image_ids.len()
    }

    /// CRC-32 of the trials' image ids and responses (little-endian), which tells one recording
    /// from another of the same name and neurons.
    pub fn fingerprint(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for id in &self.image_ids {
            h.update(&id.to_le_bytes());
        }
        for r in &self.responses {
            h.update(&r.to_le_bytes());
        }
        h.finalize()
    }

    /// Number of neurons N.
    pub fn n_neurons(&self) -> usize {
        self.unit_ids.len()
    }

    /// The N responses of trial `t`.
    pub fn response(&self, t: usize) -> &[f32] {
        let n = self.n_neurons();
        &self.responses[t * n..(t + 1) * n]
    }

    /// Rows (images x N) of `values` (T x N, e.g. the responses) for `ids`: each image's first
    /// trial, or the mean over all its trials when `average`.
    pub fn rows_for_images(&self, values: &[f32], ids: &[i64], average: bool) -> Result<Vec<f32>> {
        let n = self.n_neurons();
        let mut out = Vec::with_capacity(ids.len() * n);
        for id in ids {
            let trials: Vec<usize> = (0..self.n_trials())
                .filter(|&t| self.image_ids[t] == *id)
                .collect();
            let Some(&first) = trials.first() else {
                return Err(Error::analysis(
                    &self.name,
                    format!("image {id} is not shown in this scan"),
                ));
            };
            let used = if average { &trials[..] } else { &[first][..] };
            let mut mean = vec![0f32; n];
            for &t in used {
                for (m, v) in mean.iter_mut().zip(&values[t * n..(t + 1) * n]) {
                    *m += v / used.len() as f32;
                }
            }
            out.extend(mean);
        }
        Ok(out)
    }

    /// The image with this id, if the scan showed it.
    pub fn image(&self, id: i64) -> Option<&[f32]> {
        self.images.get(&id).map(Vec::as_slice)
    }

    /// The oracle images (shown on two or more trials): image id -> its trials, ascending ids.
    pub fn oracle_trials(&self) -> BTreeMap<i64, Vec<usize>> {
        let mut by_image: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (t, &id) in self.image_ids.iter().enumerate() {
            by_image.entry(id).or_default().push(t);
        }
        by_image.retain(|_, trials| trials.len() >= 2);
        by_image
    }

    /// Trials per tier, in `Tier::ALL` order.
    pub fn tier_counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for tier in &self.tiers {
            counts[Tier::ALL.iter().position(|t| t == tier).unwrap_or(0)] += 1;
        }
        counts
    }
}
