//! The classifier's inputs: the classification set padded and normalised, and
//! batches of it (augmented, deterministic for a seed) and of the target's images.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::augment::{augment, pad_to_32, pixel_stats};
use crate::data::{load_classification_set, LabelledImages};
use crate::error::Result;
use crate::runs::config::RunConfig;
use crate::train::similarity_loss::atanh_clamped;
use crate::train::targets::SimTarget;

/// The classification set ready for training.
pub struct PreparedSet {
    /// Class names.
    pub classes: Vec<String>,
    /// Training images (padded to at least 32 x 32).
    pub train: LabelledImages,
    /// Test images (padded alike).
    pub test: LabelledImages,
    /// Pixel mean and standard deviation of the training images (the normalisation).
    pub mean: f32,
    /// See `mean`.
    pub std: f32,
}

/// Loads and prepares the run's classification set.
pub fn prepare(config: &RunConfig) -> Result<PreparedSet> {
    let set = load_classification_set(&config.data)?;
    let limit = |n: usize| if n == 0 { usize::MAX } else { n };
    let train = pad_to_32(set.train.truncated(limit(config.train_limit)));
    let test = pad_to_32(set.test.truncated(limit(config.test_limit)));
    let (mean, std) = pixel_stats(&train);
    Ok(PreparedSet {
        classes: set.classes,
        train,
        test,
        mean,
        std,
    })
}

/// Seeds of the per-epoch generators (batch order and augmentation, similarity batches), so a
/// resumed run draws what an unbroken one would.
fn epoch_rng(seed: u64, epoch: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng.set_word_pos(epoch as u128 * (1 << 40));
    rng
}

/// The batches of an epoch: a seeded permutation of the training images, cut into full batches.
pub fn epoch_batches(n: usize, batch: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut epoch_rng(seed, epoch, 1));
    order.chunks_exact(batch).map(|c| c.to_vec()).collect()
}

/// The augmentation generator of an epoch.
pub fn augmentation_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    epoch_rng(seed, epoch, 2)
}

/// The similarity-batch generator of an epoch.
pub fn similarity_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    epoch_rng(seed, epoch, 3)
}

/// The generator of the batches that recompute the batch-norm statistics at an epoch's end.
pub fn precise_bn_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    epoch_rng(seed, epoch, 4)
}

/// A batch (B, 1, H, W) of normalised images and its labels (B), augmented when `rng` is given.
pub fn image_batch(
    set: &PreparedSet,
    tier: &LabelledImages,
    indices: &[usize],
    mut rng: Option<&mut ChaCha8Rng>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (h, w) = tier.shape;
    let mut pixels = Vec::with_capacity(indices.len() * h * w);
    for &i in indices {
        let img = tier.image(i);
        let img = match rng.as_deref_mut() {
            Some(r) => augment(img, tier.shape, r),
            None => img.to_vec(),
        };
        pixels.extend(img.iter().map(|v| (v - set.mean) / set.std));
    }
    let labels: Vec<u32> = indices.iter().map(|&i| tier.labels[i]).collect();
    Ok((
        Tensor::from_vec(pixels, (indices.len(), 1, h, w), device)?,
        Tensor::from_vec(labels, indices.len(), device)?,
    ))
}

/// A similarity batch: `batch` target images drawn without replacement (normalised like the
/// classification images) and the atanh of their target similarities (B, B).
pub fn similarity_batch(
    set: &PreparedSet,
    target: &SimTarget,
    batch: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let n = target.len();
    let chosen: Vec<usize> = rand::seq::index::sample(rng, n, batch.min(n)).into_vec();
    let (h, w) = target.shape;
    let mut pixels = Vec::with_capacity(chosen.len() * h * w);
    for &i in &chosen {
        pixels.extend(target.images[i].iter().map(|v| (v - set.mean) / set.std));
    }
    let mut sub = Vec::with_capacity(chosen.len() * chosen.len());
    for &a in &chosen {
        for &b in &chosen {
            sub.push(target.matrix[a * n + b]);
        }
    }
    let b = chosen.len();
    let matrix = Tensor::from_vec(sub, (b, b), device)?;
    Ok((
        Tensor::from_vec(pixels, (b, 1, h, w), device)?,
        atanh_clamped(&matrix)?,
    ))
}
