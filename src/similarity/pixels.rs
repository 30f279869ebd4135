//! The pixel baseline: how much of a neural similarity matrix the images' own pixels already
//! carry (Attias, Pehlevan and Obeid 2024; rsatoolbox users compare every matrix with a pixel
//! model first).
//!
//! The pixel similarity of a set of images is Eq. 2 with the pixels as the neurons and unit
//! weights: each image flattened, the per-pixel mean over the set subtracted, rows L2-normalised,
//! the Gram matrix (also the Pixel control's target before thresholding). The baseline of a
//! neural matrix is its agreement (RSA: Pearson and Spearman over the pairs above the diagonal,
//! bootstrap intervals over images) with the pixel similarity of the same images, raw and
//! low-passed by the Blur control's Gaussian at a few widths: a low-passed match means the matrix
//! follows the images' coarse layout.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::models::blur::blur_image;
use crate::similarity::agreement::bootstrap_rsa;
use crate::similarity::matrix::{similarity_matrix, SimilarityMatrix};

/// Blur widths (pixels) of the low-passed baselines; 0 is the raw pixels.
pub const BLUR_WIDTHS: [f64; 4] = [0.0, 1.0, 2.0, 4.0];
/// Above this many images the baseline is measured on this many spread evenly over the set (the
/// bootstrap resamples every pair of the images each time).
pub const MOST_IMAGES: usize = 600;
/// Bootstrap resamplings of the images.
pub const RESAMPLES: usize = 200;

/// The pixel similarity of `images` (each `shape`, row-major) low-passed by `blur` pixels (0:
/// raw).
pub fn pixel_similarity(
    images: &[&[f32]],
    shape: (usize, usize),
    blur: f64,
    device: &Device,
) -> Result<SimilarityMatrix> {
    let size = shape.0 * shape.1;
    if let Some(bad) = images.iter().position(|p| p.len() != size) {
        return Err(Error::Config(format!(
            "image {bad} has {} pixels, not {} x {}",
            images[bad].len(),
            shape.0,
            shape.1
        )));
    }
    let rows: Vec<f32> = if blur > 0.0 {
        images
            .iter()
            .flat_map(|p| blur_image(p, shape, blur))
            .collect()
    } else {
        images.concat()
    };
    similarity_matrix(
        &rows,
        images.len(),
        &vec![1.0; size],
        device,
        "the pixel similarity",
    )
}

/// A correlation with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// On all the images measured.
    pub value: f64,
    /// 2.5th percentile over resampled image sets.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

/// The agreement of a neural matrix with the pixel similarity at one blur width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelAgreement {
    /// Blur width in pixels (0: raw pixels).
    pub blur: f64,
    /// Pearson r over the pairs above the diagonal.
    pub pearson: Interval,
    /// Spearman rho over the same pairs.
    pub spearman: Interval,
}

/// The pixel baseline of a neural matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelBaseline {
    /// Images in the matrix.
    pub images: usize,
    /// Images the agreement was measured on (all, or [`MOST_IMAGES`] spread evenly).
    pub measured: usize,
    /// One row per blur width of [`BLUR_WIDTHS`].
    pub agreements: Vec<PixelAgreement>,
}

impl PixelBaseline {
    /// The agreement with the raw pixels.
    pub fn raw(&self) -> Option<&PixelAgreement> {
        self.agreements.iter().find(|a| a.blur == 0.0)
    }

    /// "r = 0.41 [0.35, 0.47] raw; 0.52 blurred 1 px; ..." for a line of text.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .agreements
            .iter()
            .map(|a| {
                let p = a.pearson;
                let what = if a.blur == 0.0 {
                    "raw pixels".to_string()
                } else {
                    format!("blurred {} px", a.blur)
                };
                format!("{what} r = {:.3} [{:.3}, {:.3}]", p.value, p.low, p.high)
            })
            .collect();
        let subset = if self.measured < self.images {
            format!(
                " ({} of its {} images, spread evenly)",
                self.measured, self.images
            )
        } else {
            String::new()
        };
        format!("pixel baseline{subset}: {}", parts.join("; "))
    }
}

/// The rows a baseline measures: all, or `most` spread evenly.
pub fn spread_rows(n: usize, most: usize) -> Vec<usize> {
    if n <= most {
        return (0..n).collect();
    }
    (0..most).map(|k| k * n / most).collect()
}

/// The pixel baseline of `neural` (rows: `images`, each `shape`) at [`BLUR_WIDTHS`], with
/// `resamples` seeded bootstrap resamplings of the images.
pub fn pixel_baseline(
    neural: &SimilarityMatrix,
    images: &[&[f32]],
    shape: (usize, usize),
    resamples: usize,
    seed: u64,
    device: &Device,
) -> Result<PixelBaseline> {
    if neural.n != images.len() {
        return Err(Error::Config(format!(
            "a {} x {} similarity matrix needs {} images for its pixel baseline, not {}",
            neural.n,
            neural.n,
            neural.n,
            images.len()
        )));
    }
    let rows = spread_rows(neural.n, MOST_IMAGES);
    let neural = neural.reordered(&rows);
    let chosen: Vec<&[f32]> = rows.iter().map(|&r| images[r]).collect();
    let agreements = BLUR_WIDTHS
        .iter()
        .map(|&blur| {
            let pixels = pixel_similarity(&chosen, shape, blur, device)?;
            let e = bootstrap_rsa(&neural, &pixels, resamples, seed)?;
            let interval = |m: usize| {
                let (value, low, high) = e.triples()[m];
                Interval { value, low, high }
            };
            Ok(PixelAgreement {
                blur,
                pearson: interval(0),
                spearman: interval(1),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PixelBaseline {
        images: images.len(),
        measured: rows.len(),
        agreements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_similarity_is_the_centred_cosine_of_the_images() -> Result<()> {
        // Three 1 x 2 images: (1, 0), (0, 1), (2, 2); mean (1, 1); centred (0, -1), (-1, 0),
        // (1, 1): cosines 0, -1/sqrt2, -1/sqrt2.
        let images: [&[f32]; 3] = [&[1.0, 0.0], &[0.0, 1.0], &[2.0, 2.0]];
        let s = pixel_similarity(&images, (1, 2), 0.0, &Device::Cpu)?;
        let h = -(0.5f32).sqrt();
        for (got, want) in s.values.iter().zip([1.0, 0.0, h, 0.0, 1.0, h, h, h, 1.0]) {
            assert!((got - want).abs() < 1e-6, "{:?}", s.values);
        }
        assert!(pixel_similarity(&images, (2, 2), 0.0, &Device::Cpu).is_err());
        Ok(())
    }

    #[test]
    fn a_matrix_made_of_pixels_matches_its_baseline_and_a_scrambled_one_does_not() -> Result<()> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let shape = (6, 6);
        let images: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..36).map(|_| rng.random_range(0.0..255.0)).collect())
            .collect();
        let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
        let pixels = pixel_similarity(&refs, shape, 0.0, &Device::Cpu)?;
        let b = pixel_baseline(&pixels, &refs, shape, 50, 0, &Device::Cpu)?;
        let raw = b.raw().expect("raw row");
        assert!((raw.pearson.value - 1.0).abs() < 1e-6 && raw.pearson.low > 0.99);
        assert_eq!(b.agreements.len(), BLUR_WIDTHS.len());
        // Against another random set's similarity there is nothing to find.
        let other: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..36).map(|_| rng.random_range(0.0..255.0)).collect())
            .collect();
        let orefs: Vec<&[f32]> = other.iter().map(Vec::as_slice).collect();
        let unrelated = pixel_similarity(&orefs, shape, 0.0, &Device::Cpu)?;
        let b = pixel_baseline(&unrelated, &refs, shape, 50, 0, &Device::Cpu)?;
        let raw = b.raw().expect("raw row").pearson;
        assert!(raw.low < 0.0 && raw.high > 0.0, "{raw:?}");
        Ok(())
    }

    #[test]
    fn large_sets_are_measured_on_rows_spread_evenly() {
        assert_eq!(spread_rows(5, 10), vec![0, 1, 2, 3, 4]);
        let rows = spread_rows(1000, 4);
        assert_eq!(rows, vec![0, 250, 500, 750]);
    }
}
