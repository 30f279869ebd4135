//! ELU (alpha 1), `x` where `x >= 0` and `exp(x) - 1` below, as candle computes it, with the
//! values split across the threads. Hand-written because candle's runs on one thread: in the
//! predictor's core and readout it was a fifth of a forward pass at paper size. Other devices
//! and dtypes use candle's.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::nn::kernels::cpu::{kernels_apply, slice, zip_map, GradFromOutput};

/// ELU with alpha 1 of every value of `x`.
pub fn elu(x: &Tensor) -> candle_core::Result<Tensor> {
    if !kernels_apply(x.device(), x.dtype()) {
        return x.elu(1.0);
    }
    x.contiguous()?.apply_op1(Elu)
}

struct Elu;

impl CustomOp1 for Elu {
    fn name(&self) -> &'static str {
        "neureg-elu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "ELU input")?;
        let y = zip_map(x, x, |v, _| if v >= 0.0 { v } else { v.exp() - 1.0 });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // 1 where the input was positive (the output is), `exp(x) = y + 1` elsewhere (as
        // candle's, which takes 1 at 0 from that side too).
        let through = GradFromOutput {
            name: "neureg-elu-grad",
            f: |g, y| if y > 0.0 { g } else { g * (y + 1.0) },
        };
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(y, &through)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradient_match_candle() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // Enough values to be split across threads, zero included.
        let mut values = Tensor::randn(0f32, 2., 70_000, &dev)?.to_vec1::<f32>()?;
        values[5] = 0.0;
        let x = Var::from_tensor(&Tensor::new(values, &dev)?.reshape((7, 10_000))?)?;
        let ours = elu(&x)?;
        let theirs = x.elu(1.0)?;
        let diff = |a: &Tensor, b: &Tensor| (a - b)?.abs()?.max_all()?.to_scalar::<f32>();
        assert_eq!(diff(&ours, &theirs)?, 0.0);
        let probe = Tensor::randn(0f32, 1., (7, 10_000), &dev)?;
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        let (a, b) = (g1.get(&x).expect("ours"), g2.get(&x).expect("candle's"));
        assert!(diff(a, b)? < 1e-6, "{a} vs {b}");
        Ok(())
    }
}
