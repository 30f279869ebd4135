//! The similarity targets of the conditions (the paper's and the Pixel controls), resolved to a
//! matrix and the images behind its rows.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::image_file::{image_files, is_image_folder};
use crate::data::{load_scan, LoadOptions};
use crate::error::{Error, Result};
use crate::nn::kernels::layer_similarity::layer_similarity;
use crate::nn::models::vgg::Vgg;
use crate::progress::Silent;
use crate::runs::classifier::load_classifier;
use crate::runs::config::{Condition, RunConfig};
use crate::similarity::target::{
    folder_images, load_target, matrix_and_ids, pixel_target, single_shown_images, ImageSet,
};

/// A target matrix and the images of its rows, ready for the similarity loss.
#[derive(Debug, Clone)]
pub struct SimTarget {
    /// The image ids of the rows (positions in a folder of images).
    pub ids: Vec<i64>,
    /// Image height and width.
    pub shape: (usize, usize),
    /// The images on [0, 1], in the matrix's row order.
    pub images: Vec<Vec<f32>>,
    /// The target similarity, n x n row-major.
    pub matrix: Vec<f32>,
}

impl SimTarget {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

/// Image height and width, and the images.
type ShapedImages = ((usize, usize), Vec<Vec<f32>>);

/// The images of `path` for the ids `ids`, on [0, 1]: a scan's images, or (for a folder of
/// PNG/JPEG files) the files in name order, ids being positions.
pub fn images_for(path: &Path, ids: &[i64]) -> Result<ShapedImages> {
    let (shape, by_id): ((usize, usize), std::collections::BTreeMap<i64, Vec<f32>>) =
        if is_image_folder(path) {
            let first = image_files(path)?[0].clone();
            let (shape, _) = crate::data::image_file::read_gray(&first, None)?;
            let set = folder_images(path, shape)?;
            (shape, set.ids.into_iter().zip(set.pixels).collect())
        } else {
            let scan = load_scan(path, LoadOptions::default(), &Silent)?;
            (scan.image_shape, scan.images)
        };
    let images = ids
        .iter()
        .map(|id| {
            by_id
                .get(id)
                .map(|p| p.iter().map(|v| v / 255.0).collect())
                .ok_or_else(|| {
                    Error::file(
                        path.display(),
                        format!("has no image {id}, which the target lists"),
                    )
                })
        })
        .collect::<Result<Vec<Vec<f32>>>>()?;
    Ok((shape, images))
}

/// The off-diagonal entries of the symmetric `matrix` (n x n) permuted at random, kept symmetric;
/// the diagonal stays.
pub fn shuffled(matrix: &[f32], n: usize, seed: u64) -> Vec<f32> {
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .collect();
    let mut values: Vec<f32> = pairs.iter().map(|&(a, b)| matrix[a * n + b]).collect();
    values.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut out = matrix.to_vec();
    for (&(a, b), v) in pairs.iter().zip(values) {
        out[a * n + b] = v;
        out[b * n + a] = v;
    }
    out
}

/// Checks that `matrix` is n x n, finite, symmetric and on [-1, 1].
fn check_matrix(matrix: &[f32], n: usize, name: &str) -> Result<()> {
    for a in 0..n {
        for b in 0..n {
            let v = matrix[a * n + b];
            if !v.is_finite() || v.abs() > 1.0 + 1e-4 {
                return Err(Error::file(
                    name,
                    format!("entry ({a}, {b}) = {v} is not a similarity in [-1, 1]"),
                ));
            }
            if (v - matrix[b * n + a]).abs() > 1e-4 {
                return Err(Error::file(name, format!("not symmetric at ({a}, {b})")));
            }
        }
    }
    Ok(())
}

/// The images of a run's image source with their ids: a scan's single-shown images, or the
/// PNG and JPEG files of a folder at the size of its first.
fn source_images(path: &Path) -> Result<ImageSet> {
    if is_image_folder(path) {
        let first = image_files(path)?[0].clone();
        let (shape, _) = crate::data::image_file::read_gray(&first, None)?;
        folder_images(path, shape)
    } else {
        let scan = load_scan(path, LoadOptions::default(), &Silent)?;
        Ok(single_shown_images(&scan))
    }
}

/// Resolves the run's condition to a target, or `None` without regulariser.
pub fn load_sim_target(config: &RunConfig, device: &Device) -> Result<Option<SimTarget>> {
    if !config.regularised() {
        return Ok(None);
    }
    if let Some(threshold) = match config.condition {
        Condition::PixelThresholded => Some(Some(config.pixel_threshold)),
        Condition::PixelCosine => Some(None),
        _ => None,
    } {
        let set = source_images(&config.images)?;
        let target = pixel_target(&set, threshold, device)?;
        check_batch(set.ids.len(), config.similarity_batch_size(), &set.source)?;
        return Ok(Some(SimTarget {
            ids: set.ids,
            shape: set.shape,
            images: unit_range(&set.pixels),
            matrix: target.matrix.values,
        }));
    }
    let path = config.target.as_deref().ok_or_else(|| {
        Error::Config(format!(
            "condition {} needs a target",
            config.condition.label()
        ))
    })?;
    let name = path.display().to_string();
    let (ids, matrix) = match config.condition {
        Condition::NeuralModel | Condition::NeuralData | Condition::Shuffle => {
            let t = load_target(path)?;
            (t.meta.image_ids, t.matrix.values)
        }
        Condition::Custom => {
            let (m, ids) = matrix_and_ids(path)?;
            (ids, m.values)
        }
        Condition::Feature => return feature_target(path, config, device).map(Some),
        Condition::None
        | Condition::Blur
        | Condition::PixelThresholded
        | Condition::PixelCosine => return Ok(None),
    };
    let n = ids.len();
    check_matrix(&matrix, n, &name)?;
    let matrix = if config.condition == Condition::Shuffle {
        shuffled(&matrix, n, config.seed)
    } else {
        matrix
    };
    let (shape, images) = images_for(&config.images, &ids)?;
    check_batch(n, config.similarity_batch_size(), &name)?;
    Ok(Some(SimTarget {
        ids,
        shape,
        images,
        matrix,
    }))
}

/// Images of 0-255 luminance on [0, 1].
fn unit_range(pixels: &[Vec<f32>]) -> Vec<Vec<f32>> {
    pixels
        .iter()
        .map(|p| p.iter().map(|v| v / 255.0).collect())
        .collect()
}

/// Features of (B, 1, H, W) images at the layer a Feature control pulls towards.
type FeatureFn = Box<dyn Fn(&Tensor) -> Result<Tensor>>;

fn check_batch(n: usize, batch: usize, name: &str) -> Result<()> {
    if n < batch {
        return Err(Error::file(
            name,
            format!("has {n} images, fewer than a batch of {batch}"),
        ));
    }
    Ok(())
}

/// The Feature control: cosine similarity (Eq. 9) of a pretrained network's features on the
/// single-shown images of the run's image source: tap `feature_tap` of the run in the folder
/// `source`, or layer `feature_layer` of the VGG whose weights are the file `source`.
fn feature_target(source: &Path, config: &RunConfig, device: &Device) -> Result<SimTarget> {
    let set = source_images(&config.images)?;
    let shape = set.shape;
    let images = unit_range(&set.pixels);
    check_batch(
        images.len(),
        config.similarity_batch_size(),
        &source.display().to_string(),
    )?;
    let features: FeatureFn = if source.is_file() {
        let (vgg, _) = Vgg::load(source, &config.feature_layer, device)?;
        Box::new(move |x| vgg.features(x))
    } else {
        let mut other = load_classifier(source, device)?;
        other.net = other.net.with_taps(vec![config.feature_tap])?;
        Box::new(move |x| Ok(other.taps(x)?.remove(0)))
    };
    let mut parts = Vec::new();
    for chunk in images.chunks(64) {
        let x = Tensor::from_vec(chunk.concat(), (chunk.len(), 1, shape.0, shape.1), device)?;
        parts.push(features(&x)?.flatten_from(1)?);
    }
    let all = Tensor::cat(&parts, 0)?;
    let matrix = layer_similarity(&all)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(SimTarget {
        ids: set.ids,
        shape,
        images,
        matrix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_keeps_symmetry_the_diagonal_and_the_values() {
        let n = 6;
        let mut m = vec![0f32; n * n];
        for a in 0..n {
            for b in 0..n {
                m[a * n + b] = if a == b {
                    1.0
                } else {
                    ((a + 1) * (b + 1)) as f32 / 100.0
                };
            }
        }
        let s = shuffled(&m, n, 7);
        assert_ne!(s, m);
        assert_eq!(s, shuffled(&m, n, 7));
        let upper = |x: &[f32]| {
            let mut v: Vec<f32> = (0..n)
                .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                .map(|(a, b)| x[a * n + b])
                .collect();
            v.sort_by(f32::total_cmp);
            v
        };
        assert_eq!(upper(&s), upper(&m));
        for a in 0..n {
            assert_eq!(s[a * n + a], 1.0);
            for b in 0..n {
                assert_eq!(s[a * n + b], s[b * n + a]);
            }
        }
    }
}
