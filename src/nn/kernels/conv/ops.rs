//! The convolution's forward pass and its two gradients, each a candle custom op.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::nn::kernels::conv::shifted::Shifted;
use crate::nn::kernels::cpu::{slice, split_batch, split_samples, with_scratch};
use crate::nn::kernels::gemm::{matmul, transpose, Store, View};

use super::geometry::*;
/// The forward convolution.
pub(super) struct Forward {
    pub(super) stride: usize,
    pub(super) padding: usize,
}

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "neureg-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geometry::new(
            l1.shape().dims4()?,
            l2.shape().dims4()?,
            self.stride,
            self.padding,
        );
        let (x, w) = (
            slice(s1, l1, "conv2d input")?,
            slice(s2, l2, "conv2d weight")?,
        );
        if let Some(shifted) = Shifted::suiting(g) {
            let y = shifted.forward(x, w);
            return Ok((CpuStorage::F32(y), Shape::from((g.b, g.o, g.ho, g.wo))));
        }
        let (k, l, o) = (g.k(), g.l(), g.o);
        let layout = ForwardLayout::for_geometry(&g);
        let w_t = (layout == ForwardLayout::KernelsTransposed).then(|| {
            let mut t = vec![0f32; o * k];
            transpose(w, o, k, &mut t);
            t
        });
        let kernels = match &w_t {
            Some(t) => View::dense(t, k, o).t(),
            None => View::dense(w, o, k),
        };
        let store = match layout {
            ForwardLayout::OutputTransposed => Store::Columns,
            _ => Store::Rows,
        };
        let mut y = vec![0f32; g.b * o * l];
        split_batch(g.b, o * l, &mut y, |first, out| {
            let samples = out.len() / (o * l);
            let group = g.group(samples);
            let spare = if group > 1 || store == Store::Columns {
                o * group * l
            } else {
                0
            };
            let regrouped = if group > 1 && store == Store::Columns {
                o * group * l
            } else {
                0
            };
            with_scratch([k * group * l, spare, regrouped], |[cols, product, rows]| {
                for s0 in (0..samples).step_by(group) {
                    let count = group.min(samples - s0);
                    let n = count * l;
                    let cols = &mut cols[..k * n];
                    let unfolded = if store == Store::Columns {
                        g.unfold_patches(x, first + s0, count, cols);
                        View::dense(cols, n, k).t()
                    } else {
                        g.unfold(x, first + s0, count, cols);
                        View::dense(cols, k, n)
                    };
                    let y_g = &mut out[s0 * o * l..][..count * o * l];
                    match (store, count) {
                        (Store::Rows, 1) => matmul(y_g, store, kernels, unfolded, false),
                        (Store::Rows, _) => {
                            let product = &mut product[..o * n];
                            matmul(product, store, kernels, unfolded, false);
                            scatter(product, y_g, count, o, l);
                        }
                        (Store::Columns, _) => {
                            // The product is stored (n x O): transposed into (O x n), grouped.
                            let product = &mut product[..o * n];
                            matmul(product, store, kernels, unfolded, false);
                            if count == 1 {
                                transpose(product, n, o, y_g);
                            } else {
                                let rows = &mut rows[..o * n];
                                transpose(product, n, o, rows);
                                scatter(rows, y_g, count, o, l);
                            }
                        }
                    }
                }
            })
        });
        Ok((CpuStorage::F32(y), Shape::from((g.b, o, g.ho, g.wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, wd) = x.dims4()?;
        let (kh, kw) = (w.dim(2)?, w.dim(3)?);
        let dx = if !x.track_op() {
            None // the images: no gradient wanted
        } else if self.stride == 1 && kh == kw && self.padding < kh {
            // With stride 1 the input gradient is the output gradient convolved with the flipped,
            // transposed kernels: one more forward pass, whose gemm is far faster than folding.
            let flipped = w
                .transpose(0, 1)?
                .contiguous()?
                .flip(&[2, 3])?
                .contiguous()?;
            Some(grad.apply_op2_no_bwd(
                &flipped,
                &Forward {
                    stride: 1,
                    padding: kh - 1 - self.padding,
                },
            )?)
        } else {
            Some(grad.apply_op2_no_bwd(
                w,
                &InputGradient {
                    stride: self.stride,
                    padding: self.padding,
                    h,
                    w: wd,
                },
            )?)
        };
        let dw = if !w.track_op() {
            None // frozen kernels (an attack): only the input gradient is wanted
        } else {
            Some(x.apply_op2_no_bwd(
                &grad,
                &WeightGradient {
                    stride: self.stride,
                    padding: self.padding,
                    kernel: (kh, kw),
                },
            )?)
        };
        Ok((dx, dw))
    }
}

/// Gradient with respect to the input: W^T times the output gradient, folded back.
pub(super) struct InputGradient {
    stride: usize,
    padding: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGradient {
    fn name(&self) -> &'static str {
        "neureg-conv2d-input-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, _, _, _) = l1.shape().dims4()?;
        let wdims = l2.shape().dims4()?;
        let g = Geometry::new(
            (b, wdims.1, self.h, self.w),
            wdims,
            self.stride,
            self.padding,
        );
        let (grad, w) = (
            slice(s1, l1, "conv2d gradient")?,
            slice(s2, l2, "conv2d weight")?,
        );
        let (chw, k, l, o) = (g.chw(), g.k(), g.l(), g.o);
        let kernels_t = View::dense(w, o, k).t();
        let mut dx = vec![0f32; g.b * chw];
        split_batch(g.b, chw, &mut dx, |first, out| {
            let samples = out.len() / chw;
            let group = g.group(samples);
            with_scratch([k * group * l, o * group * l], |[cols, grouped]| {
                for s0 in (0..samples).step_by(group) {
                    let count = group.min(samples - s0);
                    let n = count * l;
                    let g_s = &grad[(first + s0) * o * l..][..count * o * l];
                    let dy = if count == 1 {
                        g_s
                    } else {
                        gather(g_s, &mut grouped[..o * n], count, o, l);
                        &grouped[..o * n]
                    };
                    let cols = &mut cols[..k * n];
                    matmul(cols, Store::Rows, kernels_t, View::dense(dy, o, n), false);
                    for j in 0..count {
                        g.col2im(cols, n, j * l, &mut out[(s0 + j) * chw..][..chw]);
                    }
                }
            })
        });
        Ok((CpuStorage::F32(dx), Shape::from((g.b, g.c, g.h, g.w))))
    }
}

/// Gradient with respect to the weight: the output gradient times the unfolded input, summed
/// over the batch.
pub(super) struct WeightGradient {
    stride: usize,
    padding: usize,
    kernel: (usize, usize),
}

impl CustomOp2 for WeightGradient {
    fn name(&self) -> &'static str {
        "neureg-conv2d-weight-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let xd = l1.shape().dims4()?;
        let o = l2.shape().dims4()?.1;
        let g = Geometry::new(
            xd,
            (o, xd.1, self.kernel.0, self.kernel.1),
            self.stride,
            self.padding,
        );
        let (x, grad) = (
            slice(s1, l1, "conv2d input")?,
            slice(s2, l2, "conv2d gradient")?,
        );
        if let Some(shifted) = Shifted::suiting(g) {
            let dw = shifted.weight_gradient(x, grad);
            return Ok((CpuStorage::F32(dw), Shape::from((g.o, g.c, g.kh, g.kw))));
        }
        let (k, l) = (g.k(), g.l());
        // Both of gemm's kernels (AVX2 on an AMD Zen 3, AVX-512 on a Zen 4) are fastest writing
        // the gradient's transpose (K x O), transposed once at the end, except for the stem's
        // nine columns, written as stored (O x K) (`cargo bench --bench conv`).
        let store = if k < 32 { Store::Rows } else { Store::Columns };
        // Each thread sums its samples into its own accumulator; the accumulators are added at
        // the end.
        let partial = split_samples(g.b, |first, samples| {
            let group = g.group(samples);
            let mut dw = vec![0f32; o * k];
            with_scratch([k * group * l, o * group * l], |[cols, grouped]| {
                for (i, s0) in (0..samples).step_by(group).enumerate() {
                    let count = group.min(samples - s0);
                    let n = count * l;
                    let cols = &mut cols[..k * n];
                    g.unfold(x, first + s0, count, cols);
                    let g_s = &grad[(first + s0) * o * l..][..count * o * l];
                    let dy = if count == 1 {
                        g_s
                    } else {
                        gather(g_s, &mut grouped[..o * n], count, o, l);
                        &grouped[..o * n]
                    };
                    let unfolded_t = View::dense(cols, k, n).t();
                    matmul(&mut dw, store, View::dense(dy, o, n), unfolded_t, i > 0);
                }
            });
            dw
        });
        let mut sum = vec![0f32; o * k];
        for p in partial {
            sum.iter_mut().zip(p).for_each(|(d, v)| *d += v);
        }
        let dw = match store {
            Store::Rows => sum,
            Store::Columns => {
                let mut dw = vec![0f32; o * k];
                transpose(&sum, k, o, &mut dw);
                dw
            }
        };
        Ok((CpuStorage::F32(dw), Shape::from((g.o, g.c, g.kh, g.kw))))
    }
}
