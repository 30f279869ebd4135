//! The Gaussian readout of the predictive model (docs/method.md section 6): one learned position
//! per neuron on the core's feature map, sampled bilinearly, then a feature
//! vector and a bias. While training, each neuron reads at a point drawn
//! from a Gaussian around its position with a learned spread (as
//! neuralpredictors does), so that a neuron far from its receptive field
//! still gets a useful gradient; evaluation reads at the position itself.
//!
//! candle has no `grid_sample`, so bilinear sampling is written here from
//! `index_select` and element-wise ops: the corner indices are constants
//! computed from the detached positions, the interpolation weights are
//! differentiable functions of the positions, so gradients reach both the
//! positions and the features. On the CPU the sampling and the feature
//! weighting run as one op instead ([`crate::nn::kernels::sampled_readout`]), which
//! stores nothing per (channel, neuron); these ops are its reference.

use candle_core::{Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::error::{Error, Result};
use crate::nn::kernels::sampled_readout::sampled_readout;
use crate::nn::models::readout_weights::ReadoutWeights;

/// Samples `features` (B, C, H, W) bilinearly at `positions` (B, N, 2), each
/// (x, y) in [-1, 1] (-1: first pixel centre, 1: last), clamped to the map.
/// Returns (B, C, N).
pub fn bilinear_sample(features: &Tensor, positions: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = features.dims4()?;
    let (pb, n, two) = positions.dims3()?;
    if pb != b || two != 2 {
        return Err(Error::Config(format!(
            "bilinear sampling: positions {:?} do not fit features {:?}",
            positions.dims(),
            features.dims()
        )));
    }
    let positions = positions.clamp(-1f32, 1f32)?;
    let px =
        ((positions.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)? + 1.0)? * ((w - 1) as f64 / 2.0))?;
    let py =
        ((positions.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)? + 1.0)? * ((h - 1) as f64 / 2.0))?;
    // Corner indices: constants from the detached coordinates.
    let corner = |p: &Tensor, size: usize| -> Result<Vec<f32>> {
        let hi = size.saturating_sub(2) as f32;
        Ok(p.detach()
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|v| v.floor().clamp(0.0, hi))
            .collect())
    };
    let (x0, y0) = (corner(&px, w)?, corner(&py, h)?);
    let device = features.device();
    let x0t = Tensor::from_slice(&x0, (b, n), device)?;
    let y0t = Tensor::from_slice(&y0, (b, n), device)?;
    // Fractions: differentiable in the positions.
    let fx = (&px - &x0t)?;
    let fy = (&py - &y0t)?;
    let (step_x, step_y) = (usize::from(w > 1), usize::from(h > 1) * w);
    let mut index = Vec::with_capacity(b * n * 4);
    for s in 0..b {
        for i in 0..n {
            let base = s * h * w + y0[s * n + i] as usize * w + x0[s * n + i] as usize;
            index.extend(
                [base, base + step_x, base + step_y, base + step_y + step_x].map(|v| v as u32),
            );
        }
    }
    let index = Tensor::from_vec(index, b * n * 4, device)?;
    let flat = features.permute((1, 0, 2, 3))?.reshape((c, b * h * w))?;
    let corners = flat.index_select(&index, 1)?.reshape((c, b, n, 4))?;
    let one_x = (1.0 - &fx)?;
    let one_y = (1.0 - &fy)?;
    let weights = Tensor::stack(
        &[
            (&one_x * &one_y)?,
            (&fx * &one_y)?,
            (&one_x * &fy)?,
            (&fx * &fy)?,
        ],
        2,
    )?;
    let sampled = corners.broadcast_mul(&weights.unsqueeze(0)?)?.sum(3)?;
    Ok(sampled.permute((1, 0, 2))?)
}

/// Learned readout parameters for N neurons reading C feature channels.
pub struct GaussianReadout {
    /// (N, 2) positions in [-1, 1].
    pub positions: Tensor,
    /// (N, 1) spread of the training-time sampling (its absolute value is used).
    pub sigma: Tensor,
    /// Feature weights and biases.
    pub weights: ReadoutWeights,
}

impl GaussianReadout {
    /// Positions uniform in [-init_range, init_range], spread `init_sigma`, small positive feature
    /// weights, zero biases.
    pub fn new(
        neurons: usize,
        channels: usize,
        init_range: f64,
        init_sigma: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let init = Init::Uniform {
            lo: -init_range,
            up: init_range,
        };
        Ok(GaussianReadout {
            positions: vb.get_with_hints((neurons, 2), "readout.positions", init)?,
            sigma: vb.get_with_hints((neurons, 1), "readout.sigma", Init::Const(init_sigma))?,
            weights: ReadoutWeights::new(neurons, channels, &vb)?,
        })
    }

    /// (B, N) linear responses to `features` (B, C, H, W), positions moved by `shift` (B, 2) if
    /// given and, while training, by `noise` (B, N, 2, standard normal) times the spread.
    pub fn forward(
        &self,
        features: &Tensor,
        shift: Option<&Tensor>,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let b = features.dim(0)?;
        let n = self.positions.dim(0)?;
        let mut grid = self.positions.unsqueeze(0)?.broadcast_as((b, n, 2))?;
        if let Some(z) = noise {
            grid = (grid + z.broadcast_mul(&self.sigma.abs()?.unsqueeze(0)?)?)?;
        }
        if let Some(s) = shift {
            grid = grid.broadcast_add(&s.unsqueeze(1)?)?;
        }
        if crate::nn::kernels::cpu::kernels_apply(features.device(), features.dtype()) {
            let out = sampled_readout(features, &grid, &self.weights.features)?;
            return Ok(out.broadcast_add(&self.weights.bias.unsqueeze(0)?)?);
        }
        self.weights
            .apply(&bilinear_sample(features, &grid.contiguous()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// A 1 x 1 x 2 x 3 map with values 0..6 (row-major).
    fn map() -> Tensor {
        Tensor::arange(0f32, 6f32, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 3))
            .unwrap()
    }

    #[test]
    fn samples_corners_centres_and_between() {
        // x = -1 -> column 0, x = 0 -> column 1, x = 1 -> column 2; y = -1 -> row 0, y = 1 -> row 1.
        let pos = Tensor::new(
            &[[[-1f32, -1.], [1., 1.], [0., 0.], [0.5, -1.]]],
            &Device::Cpu,
        )
        .unwrap();
        let out = bilinear_sample(&map(), &pos)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // (0,0) = 0; (2,1) = 5; centre (1, 0.5) = (1 + 4) / 2 = 2.5; (1.5, 0) = 1.5.
        assert_eq!(out, vec![0.0, 5.0, 2.5, 1.5]);
    }

    #[test]
    fn gradients_reach_positions_and_features() {
        let feats = Var::from_tensor(&map()).unwrap();
        let pos = Var::new(&[[[0.25f32, 0.0]]], &Device::Cpu).unwrap();
        let out = bilinear_sample(feats.as_tensor(), pos.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = out.backward().unwrap();
        // d/dx: moving right by one column (dx = 1 in [-1, 1] is one column here) adds 1: slope (W-1)/2 = 1.
        let gp = grads
            .get(&pos)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((gp[0] - 1.0).abs() < 1e-5, "{gp:?}");
        // d/dy: one row down adds 3, over half the range: slope 3 * (H-1)/2 = 1.5.
        assert!((gp[1] - 1.5).abs() < 1e-5, "{gp:?}");
        let gf = grads
            .get(&feats)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // x = 1.25 columns, y = 0.5 rows: weights 0.375, 0.125 on each row.
        let want = [0.0, 0.375, 0.125, 0.0, 0.375, 0.125];
        for (a, b) in gf.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{gf:?}");
        }
    }
}
