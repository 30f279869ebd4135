//! `relu(a + b)` in one pass forward and one backward: the residual connection's sum and its
//! ReLU, which as candle operations cost four activation-sized tensors and passes (the sum, the
//! ReLU, its mask and the masked gradient). Hand-written because candle has no fused
//! element-wise ops; other devices and dtypes use candle's.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::nn::kernels::cpu::{kernels_apply, slice, zip_map, GradFromOutput};

/// `relu(a + b)` for tensors of one shape.
pub fn add_relu(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if !kernels_apply(a.device(), a.dtype()) || a.shape() != b.shape() {
        return (a + b)?.relu();
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "neureg-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b) = (slice(s1, l1, "residual sum")?, slice(s2, l2, "shortcut")?);
        let y = zip_map(a, b, |a, b| (a + b).max(0.0));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // The gradient zeroed where the ReLU's output is not positive.
        let mask = GradFromOutput {
            name: "neureg-relu-mask",
            f: |g, y| if y > 0.0 { g } else { 0.0 },
        };
        let g = grad.contiguous()?.apply_op2_no_bwd(res, &mask)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_both_gradients_match_candle_operations() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // Odd sizes: the parts of the split do not divide the tensor.
        let a = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 5, 7, 9), &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 5, 7, 9), &dev)?)?;
        let probe = Tensor::randn(0f32, 1., (3, 5, 7, 9), &dev)?;
        let ours = add_relu(&a, &b)?;
        let theirs = (a.as_tensor() + b.as_tensor())?.relu()?;
        let diff = |x: &Tensor, y: &Tensor| -> candle_core::Result<f32> {
            (x - y)?.abs()?.max_all()?.to_scalar::<f32>()
        };
        assert!(diff(&ours, &theirs)? < 1e-6);
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        for v in [&a, &b] {
            let (x, y) = (g1.get(v).expect("gradient"), g2.get(v).expect("gradient"));
            assert!(diff(x, y)? < 1e-6);
        }
        Ok(())
    }
}
