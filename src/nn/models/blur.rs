//! A fixed Gaussian blur with circular padding: the Blur control's front end (Li et al. 2023,
//! PLOS Comp Biol 19:e1010932; their BlurNet) and the low-pass of the pixel baseline.
//!
//! As BlurNet: the kernel is a Gaussian of standard deviation sigma pixels sampled on the integer
//! offsets -r..=r with r = ceil(2.5 sigma), normalised to sum 1, applied per channel with the
//! image wrapped around its borders. The 2-D kernel is the outer product of the 1-D one, so the
//! blur of an H x W image is `Bh X Bw^T` with `Bh`, `Bw` the circulant matrices of the 1-D
//! kernel: two small matrix products, differentiable on every device (attacks take gradients
//! through it) and exact at the borders.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// The normalised 1-D kernel of width sigma (pixels), offsets -r..=r, r = ceil(2.5 sigma).
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (2.5 * sigma).ceil() as i64;
    let raw: Vec<f64> = (-r..=r)
        .map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / sum) as f32).collect()
}

/// The n x n circulant matrix that blurs a length-n signal with wrap-around: row i holds the
/// kernel centred on i.
pub fn circulant(n: usize, sigma: f64) -> Vec<f32> {
    let kernel = gaussian_kernel(sigma);
    let r = (kernel.len() / 2) as i64;
    let mut m = vec![0f32; n * n];
    for i in 0..n as i64 {
        for (k, &g) in kernel.iter().enumerate() {
            let j = (i + k as i64 - r).rem_euclid(n as i64);
            m[i as usize * n + j as usize] += g;
        }
    }
    m
}

/// Checks a blur width.
pub fn check_sigma(sigma: f64) -> Result<()> {
    if sigma > 0.0 && sigma <= 16.0 {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "blur sigma {sigma} must be in (0, 16] pixels"
        )))
    }
}

/// `pixels` (row-major, `shape` = height x width) blurred.
pub fn blur_image(pixels: &[f32], shape: (usize, usize), sigma: f64) -> Vec<f32> {
    let (h, w) = shape;
    let (bh, bw) = (circulant(h, sigma), circulant(w, sigma));
    // Rows first (X Bw^T), then columns (Bh Y).
    let mut rows = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = (0..w).map(|j| pixels[y * w + j] * bw[x * w + j]).sum();
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (0..h).map(|i| bh[y * h + i] * rows[i * w + x]).sum();
        }
    }
    out
}

/// The (H, W) the matrices are for, `Bh` and `Bw^T`.
type Matrices = ((usize, usize), Tensor, Tensor);

/// The blur as a fixed layer for images of one size.
#[derive(Debug, Clone)]
pub struct Blur {
    sigma: f64,
    /// `Bh` (H, H) and `Bw^T` (W, W) for the last size seen.
    matrices: std::sync::Arc<std::sync::Mutex<Option<Matrices>>>,
}

impl Blur {
    /// A blur of width `sigma` pixels.
    pub fn new(sigma: f64) -> Result<Self> {
        check_sigma(sigma)?;
        Ok(Blur {
            sigma,
            matrices: Default::default(),
        })
    }

    /// Its width in pixels.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    fn matrices(&self, h: usize, w: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let mut cache = self
            .matrices
            .lock()
            .map_err(|_| Error::Config("the blur's cache is poisoned by a failed job".into()))?;
        if let Some(((ch, cw), bh, bwt)) = cache.as_ref() {
            if (*ch, *cw) == (h, w) && bh.device().same_device(device) {
                return Ok((bh.clone(), bwt.clone()));
            }
        }
        let bh = Tensor::from_vec(circulant(h, self.sigma), (h, h), device)?;
        let bwt = Tensor::from_vec(circulant(w, self.sigma), (w, w), device)?
            .t()?
            .contiguous()?;
        *cache = Some(((h, w), bh.clone(), bwt.clone()));
        Ok((bh, bwt))
    }

    /// Blurs (B, C, H, W) images.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (bh, bwt) = self.matrices(h, w, x.device())?;
        let rows = x.reshape((b * c * h, w))?.matmul(&bwt)?;
        // Columns: Bh (H, H) times each image's (H, W).
        let rows = rows.reshape((b * c, h, w))?;
        let out = bh.broadcast_left(b * c)?.matmul(&rows)?;
        Ok(out.reshape((b, c, h, w))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_blurnets() {
        // sigma 1.5: r = ceil(3.75) = 4, nine taps summing to 1, symmetric, peak at the centre.
        let k = gaussian_kernel(1.5);
        assert_eq!(k.len(), 9);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((k[0] - k[8]).abs() < 1e-9 && k[4] > k[3]);
        // Hand value: exp(-1/4.5) / sum_k exp(-k^2/4.5).
        let sum: f64 = (-4..=4).map(|i: i32| (-(i * i) as f64 / 4.5).exp()).sum();
        assert!((k[5] as f64 - (-1.0f64 / 4.5).exp() / sum).abs() < 1e-7);
    }

    #[test]
    fn blurring_wraps_around_the_border_and_keeps_the_mean() {
        let (h, w) = (6, 8);
        let mut img = vec![0f32; h * w];
        img[0] = 1.0; // the corner
        let out = blur_image(&img, (h, w), 1.0);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        // Wrapped: the opposite corner gets what the neighbour across the border would.
        assert!((out[h * w - 1] - out[w + 1]).abs() < 1e-7 && out[h * w - 1] > 0.0);
        assert!((out[w - 1] - out[1]).abs() < 1e-7);
    }

    #[test]
    fn the_layer_is_the_image_blur_and_passes_gradients() -> Result<()> {
        let (h, w) = (5, 7);
        let img: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32).collect();
        let blur = Blur::new(0.8)?;
        let x = candle_core::Var::from_vec(img.clone(), (1, 1, h, w), &Device::Cpu)?;
        let y = blur.forward(x.as_tensor())?;
        let got = y.flatten_all()?.to_vec1::<f32>()?;
        for (a, b) in got.iter().zip(blur_image(&img, (h, w), 0.8)) {
            assert!((a - b).abs() < 1e-4, "{a} {b}");
        }
        // The gradient of the sum of a blur is 1 everywhere (the kernel sums to 1 and wraps).
        let g = y.sum_all()?.backward()?;
        let dx = g
            .get(&x)
            .expect("gradient")
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert!(dx.iter().all(|v| (v - 1.0).abs() < 1e-5), "{dx:?}");
        Ok(())
    }
}
