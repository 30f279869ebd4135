//! Preparing classification images for a network (docs/method.md section 7): padding to the
//! network's size, normalisation, and the paper's augmentation (random crop
//! with 4-pixel padding, horizontal flip), deterministic for a seed.

use rand::Rng;

use crate::data::classification::LabelledImages;

/// Zero padding of the random crop, in pixels on every side.
pub const CROP_PADDING: usize = 4;

/// Centres `img` of `shape` in a zero image of `to` (`to` at least as large).
pub fn pad_to(img: &[f32], shape: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    if shape == to {
        return img.to_vec();
    }
    let (top, left) = ((to.0 - shape.0) / 2, (to.1 - shape.1) / 2);
    let mut out = vec![0.0; to.0 * to.1];
    for y in 0..shape.0 {
        out[(top + y) * to.1 + left..][..shape.1].copy_from_slice(&img[y * shape.1..][..shape.1]);
    }
    out
}

/// Pads every image of `set` to at least 32 x 32 (the CIFAR ResNet's input; 28 x 28 MNIST-style
/// images get 2 pixels on each side).
pub fn pad_to_32(set: LabelledImages) -> LabelledImages {
    let (h, w) = set.shape;
    let to = (h.max(32), w.max(32));
    if to == set.shape {
        return set;
    }
    let pixels = (0..set.len())
        .flat_map(|i| pad_to(set.image(i), set.shape, to))
        .collect();
    LabelledImages {
        shape: to,
        pixels,
        labels: set.labels,
    }
}

/// Pixel mean and standard deviation of a tier (the normalisation, from training images only).
pub fn pixel_stats(set: &LabelledImages) -> (f32, f32) {
    let n = set.pixels.len().max(1) as f64;
    let mean = set.pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = set
        .pixels
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, var.sqrt().max(1e-6) as f32)
}

/// A random crop of `img` padded by [`CROP_PADDING`] zeros, flipped left-right half the time.
pub fn augment(img: &[f32], shape: (usize, usize), rng: &mut impl Rng) -> Vec<f32> {
    let (h, w) = shape;
    let p = CROP_PADDING as i64;
    let dy = rng.random_range(-p..=p) as isize;
    let dx = rng.random_range(-p..=p) as isize;
    let flip = rng.random::<bool>();
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        let sy = y as isize + dy;
        if sy < 0 || sy >= h as isize {
            continue;
        }
        for x in 0..w {
            let sx = x as isize + dx;
            if sx < 0 || sx >= w as isize {
                continue;
            }
            let to = if flip { w - 1 - x } else { x };
            out[y * w + to] = img[sy as usize * w + sx as usize];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn padding_centres_the_image() {
        let out = pad_to(&[1.0, 2.0, 3.0, 4.0], (2, 2), (4, 4));
        assert_eq!(
            out,
            vec![0., 0., 0., 0., 0., 1., 2., 0., 0., 3., 4., 0., 0., 0., 0., 0.]
        );
    }

    #[test]
    fn augmentation_is_a_shifted_possibly_flipped_copy_and_repeats_for_a_seed() {
        let img: Vec<f32> = (0..64).map(|v| v as f32 + 1.0).collect();
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let out = augment(&img, (8, 8), &mut a);
            assert_eq!(out, augment(&img, (8, 8), &mut b));
            // Every kept pixel is an original one, and rows stay rows.
            for y in 0..8 {
                let row: Vec<f32> = out[y * 8..][..8]
                    .iter()
                    .copied()
                    .filter(|&v| v > 0.0)
                    .collect();
                if let Some(&v) = row.first() {
                    let src_row = ((v - 1.0) as usize) / 8;
                    assert!(row.iter().all(|&u| ((u - 1.0) as usize) / 8 == src_row));
                }
            }
        }
    }
}
