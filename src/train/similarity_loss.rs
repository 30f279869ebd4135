//! The similarity loss of docs/method.md section 7 (Eq. 8-10): the network's representational
//! similarity on a batch of scan images, pulled towards the target's.

use candle_core::{DType, Tensor, D};

use crate::error::Result;
use crate::nn::kernels::layer_similarity::layer_similarity;

/// Similarities are clamped to `[-1 + CLAMP, 1 - CLAMP]` before atanh.
pub const CLAMP: f64 = 1e-6;

/// atanh on `[-1 + CLAMP, 1 - CLAMP]` (candle has none): `(ln(1 + x) - ln(1 - x)) / 2`.
pub fn atanh_clamped(s: &Tensor) -> Result<Tensor> {
    let x = s.clamp(-1.0 + CLAMP, 1.0 - CLAMP)?;
    Ok((((&x + 1.0)?.log()? - (1.0 - &x)?.log()?)? * 0.5)?)
}

/// The loss and what it was made of.
pub struct SimilarityLoss {
    /// Eq. 8, a scalar.
    pub loss: Tensor,
    /// The layer weights `gamma = softmax(theta)` (Eq. 10).
    pub gamma: Tensor,
}

/// Eq. 8 and 10: `S_cnn = sum_l gamma_l S_l` with `gamma = softmax(theta)`, and the mean over pairs
/// `alpha < beta` of `(atanh S_cnn - target_atanh)^2`, where `target_atanh` (B, B) is the target
/// similarity of the batch's images already passed through [`atanh_clamped`].
pub fn similarity_loss(
    taps: &[Tensor],
    theta: &Tensor,
    target_atanh: &Tensor,
) -> Result<SimilarityLoss> {
    let gamma = candle_nn::ops::softmax(theta, D::Minus1)?;
    let mut s_cnn: Option<Tensor> = None;
    for (l, f) in taps.iter().enumerate() {
        let weighted = layer_similarity(f)?.broadcast_mul(&gamma.get(l)?)?;
        s_cnn = Some(match s_cnn {
            Some(s) => (s + weighted)?,
            None => weighted,
        });
    }
    let s_cnn = s_cnn.ok_or_else(|| crate::error::Error::Config("no feature taps".into()))?;
    let b = s_cnn.dim(0)?;
    let diff = (atanh_clamped(&s_cnn)? - target_atanh)?.sqr()?;
    let upper = upper_triangle_mask(b, s_cnn.device())?;
    let pairs = (b * (b - 1) / 2).max(1) as f64;
    let loss = ((diff * upper)?.sum_all()? / pairs)?;
    Ok(SimilarityLoss { loss, gamma })
}

/// 1 above the diagonal, 0 elsewhere (B, B).
fn upper_triangle_mask(b: usize, device: &candle_core::Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..b * b)
        .map(|k| if k % b > k / b { 1.0 } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(v, (b, b), device)?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn layer_similarity_of_a_hand_case() {
        // Rows (1, 0), (0, 1), (1, 1): mean (2/3, 2/3); centred (1/3, -2/3), (-2/3, 1/3), (1/3, 1/3).
        // cos(c0, c1) = (-2/9 - 2/9) / (5/9) = -0.8; cos(c0, c2) = (1/9 - 2/9) / (sqrt(5)/3 * sqrt(2)/3).
        let f = Tensor::new(&[[1f32, 0.], [0., 1.], [1., 1.]], &Device::Cpu).unwrap();
        let s = layer_similarity(&f).unwrap().to_vec2::<f32>().unwrap();
        assert!((s[0][1] + 0.8).abs() < 1e-5, "{s:?}");
        let c02 = (-1.0 / 9.0) / ((5f32).sqrt() / 3.0 * (2f32).sqrt() / 3.0);
        assert!((s[0][2] - c02).abs() < 1e-5);
        assert!((s[1][1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_atanh_loss_equals_a_hand_computation_and_theta_gets_a_gradient() {
        let dev = Device::Cpu;
        // Two taps; tap 0 gives S01 = -0.8 (as above), tap 1 gives S01 = +1 for (1, 0, 2)... use
        // a 3 x 1 feature, centred (-1, -1, 2)/...: rows of one value each.
        let f0 = Tensor::new(&[[1f32, 0.], [0., 1.], [1., 1.]], &dev).unwrap();
        let f1 = Tensor::new(&[[0f32, 0.], [1., 0.], [0., 2.]], &dev).unwrap();
        let s0 = layer_similarity(&f0).unwrap().to_vec2::<f32>().unwrap();
        let s1 = layer_similarity(&f1).unwrap().to_vec2::<f32>().unwrap();
        let theta = Var::new(&[0.3f32, -0.2], &dev).unwrap();
        let (g0, g1) = {
            let (a, b) = (0.3f32.exp(), (-0.2f32).exp());
            (a / (a + b), b / (a + b))
        };
        let target = [[1f32, 0.1, -0.3], [0.1, 1., 0.5], [-0.3, 0.5, 1.]];
        let flat: Vec<f32> = target.iter().flatten().copied().collect();
        let t = atanh_clamped(&Tensor::from_vec(flat, (3, 3), &dev).unwrap()).unwrap();
        let out = similarity_loss(&[f0, f1], theta.as_tensor(), &t).unwrap();
        let mut expected = 0.0;
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let s = (g0 * s0[a][b] + g1 * s1[a][b]).clamp(-1.0 + 1e-6, 1.0 - 1e-6);
            expected += (s.atanh() - target[a][b].atanh()).powi(2) / 3.0;
        }
        let got = out.loss.to_scalar::<f32>().unwrap();
        assert!(
            (got - expected).abs() < 1e-4 * expected.max(1.0),
            "{got} vs {expected}"
        );
        let grads = out.loss.backward().unwrap();
        let g = grads.get(&theta).unwrap().to_vec1::<f32>().unwrap();
        assert!(
            g.iter().all(|v| v.is_finite()) && g[0].abs() > 1e-6,
            "{g:?}"
        );
    }
}
