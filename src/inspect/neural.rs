//! The neural side of an inspection, the matrix the layers are compared with. By default the
//! oracle images of a set of scans (the repeated test-tier images: neureg's targets hold only
//! single-shown images, so the similarity loss never saw them), the mean oracle similarity over
//! them (Eq. 3, the matrix the brain gives), and how well that matrix agrees with itself, the
//! noise ceiling: the agreement of the matrices built from two halves of each image's repeats
//! (even and odd repeats, every scan), RSA's Pearson r also stepped up to the full data by
//! Spearman-Brown. Or a run's own target on some of its images, the images the similarity loss
//! saw: how closely the network fits what it was pulled towards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::data::Scan;
use crate::error::{Error, Result};
use crate::runs::config::RunConfig;
use crate::runs::store::run_name;
use crate::similarity::agreement::{agreement, Agreement};
use crate::similarity::matrix::SimilarityMatrix;
use crate::similarity::oracle::{common_oracle_ids, oracle_similarity_of_trials};
use crate::similarity::pixels::spread_rows;
use crate::similarity::weights::snr_weights;
use crate::train::targets::load_sim_target;

/// How the noise ceiling is estimated, as reports say it.
pub const CEILING_METHOD: &str = "split-half: the mean oracle similarity from the even repeats of \
     each image against that from the odd repeats (every scan); rsa_pearson_full is r stepped \
     up to all repeats by Spearman-Brown, 2r / (1 + r)";

/// Which matrix the layers are compared with, on which images.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ReferenceChoice {
    /// The mean oracle similarity on the oracle images common to the scans.
    #[default]
    Oracle,
    /// The target the run in `run` was trained towards, on `images` of its rows spread evenly
    /// over them.
    TargetOf {
        /// The run folder.
        run: PathBuf,
        /// How many of the target's images.
        images: usize,
    },
}

impl ReferenceChoice {
    /// What the matrix is, in a figure's title.
    pub fn short(&self) -> &'static str {
        match self {
            ReferenceChoice::Oracle => "the neural matrix",
            ReferenceChoice::TargetOf { .. } => "the run's target",
        }
    }
}

/// The matrix an inspection compares the layers with.
pub fn reference(
    choice: &ReferenceChoice,
    scans: &[&Scan],
    device: &Device,
) -> Result<NeuralReference> {
    match choice {
        ReferenceChoice::Oracle => oracle_reference(scans, device),
        ReferenceChoice::TargetOf { run, images } => target_reference(run, *images, device),
    }
}

/// The neural reference of an inspection.
#[derive(Debug, Clone)]
pub struct NeuralReference {
    /// What the matrix is: "mean oracle similarity (Eq. 3)", "Shuffle target of RUN".
    pub matrix_name: String,
    /// What the images are, e.g. "oracle images of scan_1, scan_2".
    pub source: String,
    /// Image ids, the rows of `matrix`.
    pub image_ids: Vec<i64>,
    /// Height and width of the images.
    pub shape: (usize, usize),
    /// Each image's pixels on [0, 1].
    pub pixels: Vec<Vec<f32>>,
    /// The mean oracle similarity over the scans.
    pub matrix: SimilarityMatrix,
    /// The split-half agreement; None when an image has fewer than four repeats in a scan.
    pub ceiling: Option<Ceiling>,
}

/// The split-half noise ceiling.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ceiling {
    /// The halves' agreement.
    pub split_half: Agreement,
    /// RSA Pearson r stepped up to the full number of repeats (Spearman-Brown).
    pub rsa_pearson_full: f64,
}

/// The oracle images common to `scans`, their mean oracle similarity and its ceiling.
pub fn oracle_reference(scans: &[&Scan], device: &Device) -> Result<NeuralReference> {
    let first = scans
        .first()
        .ok_or_else(|| Error::Config("inspecting needs at least one scan".into()))?;
    let (image_ids, _) = common_oracle_ids(scans)?;
    if image_ids.len() < 4 {
        return Err(Error::analysis(
            &first.name,
            format!(
                "{} oracle images in common; inspecting needs at least 4",
                image_ids.len()
            ),
        ));
    }
    let mut full = Vec::new();
    let mut halves: [Vec<SimilarityMatrix>; 2] = [Vec::new(), Vec::new()];
    let mut splittable = true;
    for scan in scans {
        let trials = scan.oracle_trials();
        let weights = snr_weights(scan, &trials)?.weights;
        full.push(oracle_similarity_of_trials(scan, &trials, &image_ids, &weights, device)?.matrix);
        let half = |parity: usize| -> BTreeMap<i64, Vec<usize>> {
            trials
                .iter()
                .map(|(&id, t)| (id, t.iter().skip(parity).step_by(2).copied().collect()))
                .collect()
        };
        splittable &= image_ids.iter().all(|id| trials[id].len() >= 4);
        if splittable {
            for (parity, out) in halves.iter_mut().enumerate() {
                let m =
                    oracle_similarity_of_trials(scan, &half(parity), &image_ids, &weights, device)?;
                out.push(m.matrix);
            }
        }
    }
    let mean = |ms: &[SimilarityMatrix]| {
        SimilarityMatrix::mean(&ms.iter().collect::<Vec<_>>()).expect("at least one scan")
    };
    let ceiling = if splittable {
        let split_half = agreement(&mean(&halves[0]), &mean(&halves[1]))?;
        let r = split_half.rsa_pearson;
        Some(Ceiling {
            split_half,
            rsa_pearson_full: 2.0 * r / (1.0 + r),
        })
    } else {
        None
    };
    let shape = first.image_shape;
    let pixels = image_ids
        .iter()
        .map(|id| {
            first
                .image(*id)
                .map(|p| p.iter().map(|v| v / 255.0).collect())
                .ok_or_else(|| {
                    Error::analysis(&first.name, format!("has no pixels for image {id}"))
                })
        })
        .collect::<Result<Vec<Vec<f32>>>>()?;
    let names = scans
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(NeuralReference {
        matrix_name: "mean oracle similarity (Eq. 3)".into(),
        source: format!("oracle images of {names}: shown repeatedly, in no target neureg builds"),
        image_ids,
        shape,
        pixels,
        matrix: mean(&full),
        ceiling,
    })
}

/// The target of the run in `dir` (shuffled as its training shuffled it) on `images` of its
/// rows spread evenly over them; no ceiling.
pub fn target_reference(dir: &Path, images: usize, device: &Device) -> Result<NeuralReference> {
    let config = RunConfig::load(dir)?;
    let name = run_name(dir);
    let target = load_sim_target(&config, device)?.ok_or_else(|| {
        Error::Config(format!(
            "run {name} was trained without a target (condition {}); choose a regularised run",
            config.condition.label()
        ))
    })?;
    let n = target.len();
    let k = images.min(n);
    if k < 4 {
        return Err(Error::Config(format!(
            "comparing with run {name}'s target needs at least 4 of its {n} images, not {k}"
        )));
    }
    let rows = spread_rows(n, k);
    let full = &target.matrix;
    let values = rows
        .iter()
        .flat_map(|&a| rows.iter().map(move |&b| full[a * n + b]))
        .collect();
    Ok(NeuralReference {
        matrix_name: format!("{} target of {name}", config.condition.label()),
        source: format!("{k} of the {n} images of {name}'s target, seen by its similarity loss"),
        image_ids: rows.iter().map(|&r| target.ids[r]).collect(),
        shape: target.shape,
        pixels: rows.iter().map(|&r| target.images[r].clone()).collect(),
        matrix: SimilarityMatrix { n: k, values },
        ceiling: None,
    })
}
