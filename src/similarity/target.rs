//! Regularisation targets (docs/method.md section 6, Eq. 6): the model similarity of the
//! predictors' responses to one image set, averaged over scans (Neural
//! (model)), or the raw single-trial similarity of the same images (Neural
//! (data)). A target is a `.npy` matrix with a JSON sidecar.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::data::image_file::{image_files, read_gray};
use crate::data::npy::{encode, read_f32, read_file};
use crate::data::{Scan, Shown};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::runs::predictor::LoadedPredictor;
use crate::similarity::matrix::{similarity_matrix, SimilarityMatrix};
use crate::similarity::pixels::pixel_similarity;
use crate::similarity::quality::stored_quality;

/// How neurons are weighted in Eq. 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// `w[i] * max(rho[i], 0)` (default).
    SnrRho,
    /// `w[i]` alone.
    Snr,
}

/// The per-neuron scale of Eq. 6.
pub fn neuron_weights(snr: &[f32], rho: &[f32], weighting: Weighting) -> Vec<f32> {
    match weighting {
        Weighting::Snr => snr.to_vec(),
        Weighting::SnrRho => snr.iter().zip(rho).map(|(w, r)| w * r.max(0.0)).collect(),
    }
}

/// Images to build a target on, all of one size, ascending ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Image ids.
    pub ids: Vec<i64>,
    /// Height and width.
    pub shape: (usize, usize),
    /// Pixels of each image, row-major.
    pub pixels: Vec<Vec<f32>>,
    /// Where they came from, for the sidecar.
    pub source: String,
}

/// The images `scan` showed exactly once (the paper's 5000 non-oracle images).
pub fn single_shown_images(scan: &(impl Shown + ?Sized)) -> ImageSet {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for &id in scan.image_ids() {
        *counts.entry(id).or_default() += 1;
    }
    let ids: Vec<i64> = counts
        .into_iter()
        .filter(|&(_, c)| c == 1)
        .map(|(id, _)| id)
        .collect();
    let pixels = ids.iter().map(|id| scan.images()[id].clone()).collect();
    ImageSet {
        ids,
        shape: scan.image_shape(),
        pixels,
        source: format!("single-shown images of {}", scan.name()),
    }
}

/// The images of a folder (PNG and JPEG files, sorted by name), as grayscale (luminance, 0-255)
/// resized to `shape`; ids are their positions in that order.
pub fn folder_images(dir: &Path, shape: (usize, usize)) -> Result<ImageSet> {
    let files = image_files(dir)?;
    if files.len() < 2 {
        return Err(Error::file(
            dir.display(),
            format!(
                "holds {} PNG or JPEG images; a target needs at least two",
                files.len()
            ),
        ));
    }
    let pixels = files
        .iter()
        .map(|f| read_gray(f, Some(shape)).map(|(_, p)| p))
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageSet {
        ids: (0..files.len() as i64).collect(),
        shape,
        pixels,
        source: format!(
            "{} images in {} (ids in file-name order: {})",
            files.len(),
            dir.display(),
            files
                .iter()
                .filter_map(|f| f.file_name().and_then(|n| n.to_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The image set shared by `scans`: their single-shown images, which must agree.
pub fn common_single_images<S: Shown + ?Sized>(scans: &[&S]) -> Result<ImageSet> {
    let first = scans
        .first()
        .ok_or_else(|| Error::Config("no scans to take images from".into()))?;
    let set = single_shown_images(*first);
    for scan in &scans[1..] {
        let other = single_shown_images(*scan);
        if other.ids != set.ids || other.pixels != set.pixels {
            return Err(Error::analysis(
                scan.name(),
                format!(
                    "its single-shown images ({}) differ from those of {} ({}): the predictors' image sets disagree; choose one image set with --images",
                    other.ids.len(),
                    first.name(),
                    set.ids.len()
                ),
            ));
        }
    }
    Ok(ImageSet {
        source: format!(
            "single-shown images of {}",
            scans
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ..set
    })
}

/// What a target is and how it was made (the JSON sidecar). Only `image_ids` is required: a
/// matrix made elsewhere (NumPy, rsatoolbox) needs nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetMeta {
    /// `neural_model`, `neural_data`, `pixel_thresholded`, `pixel_cosine`, or what a sidecar
    /// made elsewhere says (`custom` when it says nothing).
    #[serde(default = "custom_kind")]
    pub kind: String,
    /// Rows and columns of the matrix.
    pub image_ids: Vec<i64>,
    /// Where the images came from.
    #[serde(default)]
    pub image_source: String,
    /// The scans whose matrices were averaged.
    #[serde(default)]
    pub scans: Vec<String>,
    /// The predictor folders used (Neural (model) only).
    #[serde(default)]
    pub predictors: Vec<PathBuf>,
    /// Neuron weighting (neural targets only).
    #[serde(default)]
    pub weighting: Option<Weighting>,
    /// neureg's version.
    #[serde(default)]
    pub version: String,
}

fn custom_kind() -> String {
    "custom".into()
}

/// Where a thresholded pixel target's +1 and -1 entries are put: just inside, so that atanh
/// stays finite at the value pixel-reg's eps of 1e-5 in its logarithms gives (atanh 6.1).
pub const PIXEL_SATURATION: f32 = 1.0 - 1e-5;

/// The Pixel controls' target (Attias, Pehlevan and Obeid 2024): the pixel similarity of
/// `images` (`similarity::pixels`); with a `threshold` TH, +1 where it exceeds TH, -1 where it
/// is below -TH, 0 between (pixel-reg's "boosting"), the diagonal 1.
pub fn pixel_target(images: &ImageSet, threshold: Option<f64>, device: &Device) -> Result<Target> {
    let refs: Vec<&[f32]> = images.pixels.iter().map(Vec::as_slice).collect();
    let mut matrix = pixel_similarity(&refs, images.shape, 0.0, device)?;
    if let Some(th) = threshold {
        let n = matrix.n;
        for (k, v) in matrix.values.iter_mut().enumerate() {
            *v = if k / n == k % n {
                1.0
            } else if *v as f64 > th {
                PIXEL_SATURATION
            } else if (*v as f64) < -th {
                -PIXEL_SATURATION
            } else {
                0.0
            };
        }
    }
    Ok(Target {
        matrix,
        meta: TargetMeta {
            kind: match threshold {
                Some(_) => "pixel_thresholded".into(),
                None => "pixel_cosine".into(),
            },
            image_ids: images.ids.clone(),
            image_source: images.source.clone(),
            scans: Vec::new(),
            predictors: Vec::new(),
            weighting: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    })
}

/// A target matrix with its description.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The mean matrix.
    pub matrix: SimilarityMatrix,
    /// Its description.
    pub meta: TargetMeta,
}

/// Neural (model): Eq. 6 for each predictor on `images`, averaged.
pub fn model_target(
    predictors: &[LoadedPredictor],
    images: &ImageSet,
    weighting: Weighting,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Target> {
    if predictors.is_empty() {
        return Err(Error::Config(
            "a target needs at least one predictor".into(),
        ));
    }
    if images.ids.len() < 2 {
        return Err(Error::Config(format!(
            "a target needs at least two images ({})",
            images.source
        )));
    }
    progress.stage("model similarity", predictors.len() as u64);
    let refs: Vec<&[f32]> = images.pixels.iter().map(Vec::as_slice).collect();
    let mut matrices = Vec::with_capacity(predictors.len());
    for p in predictors {
        progress.check()?;
        let quality = stored_quality(p)?;
        let w = neuron_weights(&p.snr_weights()?, &quality.rho, weighting);
        let predictions = p.predict_images(&refs, images.shape, device)?;
        matrices.push(similarity_matrix(
            &predictions,
            images.ids.len(),
            &w,
            device,
            &format!("model similarity of {}", p.meta.scan),
        )?);
        progress.advance(1);
    }
    let mean =
        SimilarityMatrix::mean(&matrices.iter().collect::<Vec<_>>()).unwrap_or(SimilarityMatrix {
            n: 0,
            values: Vec::new(),
        });
    Ok(Target {
        matrix: mean,
        meta: TargetMeta {
            kind: "neural_model".into(),
            image_ids: images.ids.clone(),
            image_source: images.source.clone(),
            scans: predictors.iter().map(|p| p.meta.scan.clone()).collect(),
            predictors: predictors.iter().map(|p| p.dir.clone()).collect(),
            weighting: Some(weighting),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    })
}

/// Neural (data): Eq. 2 on each scan's single-trial responses to `ids` (its
/// first trial of each), with its SNR weights, averaged over scans.
pub fn data_target(scans: &[&Scan], ids: &[i64], device: &Device) -> Result<Target> {
    let mut matrices = Vec::with_capacity(scans.len());
    for scan in scans {
        let w = crate::similarity::weights::snr_weights(scan, &scan.oracle_trials())?;
        let rows = scan.rows_for_images(&scan.responses, ids, false)?;
        matrices.push(similarity_matrix(
            &rows,
            ids.len(),
            &w.weights,
            device,
            &format!("single-trial similarity of {}", scan.name),
        )?);
    }
    let mean = SimilarityMatrix::mean(&matrices.iter().collect::<Vec<_>>())
        .ok_or_else(|| Error::Config("a target needs at least one scan".into()))?;
    Ok(Target {
        matrix: mean,
        meta: TargetMeta {
            kind: "neural_data".into(),
            image_ids: ids.to_vec(),
            image_source: "single trials of the scans".into(),
            scans: scans.iter().map(|s| s.name.clone()).collect(),
            predictors: Vec::new(),
            weighting: Some(Weighting::Snr),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    })
}

/// Writes `target` as `path` (.npy) and its sidecar `path` with extension `.json`.
pub fn save_target(path: &Path, target: &Target) -> Result<()> {
    let n = target.matrix.n;
    write_atomic(path, &encode(&[n, n], &target.matrix.values))?;
    let text = serde_json::to_string_pretty(&target.meta)
        .map_err(|e| Error::file(path.display(), e.to_string()))?;
    write_atomic(&path.with_extension("json"), text.as_bytes())
}

/// A matrix and the image ids of its rows: the sidecar's (`path` with extension `.json`) when
/// there is one, else the positions 0, 1, ... in its image source.
pub fn matrix_and_ids(path: &Path) -> Result<(SimilarityMatrix, Vec<i64>)> {
    if path.with_extension("json").is_file() {
        let t = load_target(path)?;
        return Ok((t.matrix, t.meta.image_ids));
    }
    let m = SimilarityMatrix::read_npy(path)?;
    let ids = (0..m.n as i64).collect();
    Ok((m, ids))
}

/// Reads a target and its sidecar, checking that they agree.
pub fn load_target(path: &Path) -> Result<Target> {
    let a = read_f32(&read_file(path)?, &path.display().to_string())?;
    let side = path.with_extension("json");
    let text = std::fs::read_to_string(&side).map_err(|e| Error::io(&side, e))?;
    let meta: TargetMeta = serde_json::from_str(&text)
        .map_err(|e| Error::file(side.display(), format!("unreadable: {e}")))?;
    let n = meta.image_ids.len();
    if a.shape != [n, n] {
        return Err(Error::file(
            path.display(),
            format!("has shape {:?} but its sidecar lists {n} images", a.shape),
        ));
    }
    Ok(Target {
        matrix: SimilarityMatrix { n, values: a.data },
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighting_clips_negative_correlations() {
        assert_eq!(
            neuron_weights(&[2.0, 3.0], &[0.5, -0.2], Weighting::SnrRho),
            vec![1.0, 0.0]
        );
        assert_eq!(
            neuron_weights(&[2.0, 3.0], &[0.5, -0.2], Weighting::Snr),
            vec![2.0, 3.0]
        );
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        let target = Target {
            matrix: SimilarityMatrix {
                n: 2,
                values: vec![1.0, 0.5, 0.5, 1.0],
            },
            meta: TargetMeta {
                kind: "neural_model".into(),
                image_ids: vec![3, 9],
                image_source: "test".into(),
                scans: vec!["a".into()],
                predictors: vec![],
                weighting: Some(Weighting::SnrRho),
                version: "0".into(),
            },
        };
        save_target(&path, &target).unwrap();
        assert_eq!(load_target(&path).unwrap(), target);
    }
}
