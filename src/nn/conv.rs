//! 2-D convolution (f32, CPU) by im2col and gemm, with its own backward pass.
//!
//! Hand-written because candle 0.11's CPU conv2d backward runs through a
//! direct transposed convolution that is 10-25x slower than PyTorch's on the
//! predictor's and the ResNet's shapes. Forward, input gradient and weight
//! gradient are each one gemm per sample over an unfolded (im2col) buffer,
//! with the batch split across threads. Other devices and dtypes use candle's
//! own conv2d.

use candle_core::{CpuStorage, CustomOp2, Layout, Module, Shape, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::error::Result;
use crate::nn::seeded_init::torch_default;

/// A convolution layer: weight (O, C, kh, kw), optional bias (O), stride and zero padding.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// Kernels (O, C, kh, kw).
    pub weight: Tensor,
    /// Bias (O).
    pub bias: Option<Tensor>,
    /// Step between output positions.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
}

impl Conv2d {
    /// A `k x k` convolution from `inputs` to `outputs` channels, weights drawn from `init` (the
    /// ResNet: Kaiming normal, fan in; the predictor: PyTorch's default), bias uniform in
    /// +-1/sqrt(fan in).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inputs: usize,
        outputs: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        init: Init,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((outputs, inputs, k, k), "weight", init)?;
        let bias = if bias {
            Some(vb.get_with_hints(outputs, "bias", torch_default(inputs * k * k))?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            stride,
            padding,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = conv2d(x, &self.weight, self.stride, self.padding)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
            None => Ok(y),
        }
    }
}

/// `x` (B, C, H, W) convolved with `w` (O, C, kh, kw): (B, O, Ho, Wo).
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    let (_, c, h, wd) = x.dims4()?;
    let (_, cw, kh, kw) = w.dims4()?;
    if c != cw {
        candle_core::bail!("conv2d: input has {c} channels, kernels expect {cw}");
    }
    if h + 2 * padding < kh || wd + 2 * padding < kw || stride == 0 {
        candle_core::bail!("conv2d: {kh} x {kw} kernel does not fit a padded {h} x {wd} input");
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Forward { stride, padding })
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(
        x: (usize, usize, usize, usize),
        w: (usize, usize, usize, usize),
        stride: usize,
        padding: usize,
    ) -> Self {
        let (b, c, h, wd) = x;
        let (o, _, kh, kw) = w;
        Geometry {
            b,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            stride,
            padding,
            ho: (h + 2 * padding - kh) / stride + 1,
            wo: (wd + 2 * padding - kw) / stride + 1,
        }
    }

    /// Rows of the unfolded buffer: C * kh * kw.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output positions per channel: Ho * Wo.
    fn l(&self) -> usize {
        self.ho * self.wo
    }

    /// Output columns `ox` whose input column `ox * stride + kx - padding` lies inside the image.
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let lo = self.padding.saturating_sub(kx).div_ceil(self.stride);
        let hi = ((self.w + self.padding).saturating_sub(kx)).div_ceil(self.stride);
        (lo.min(self.wo), hi.min(self.wo))
    }

    /// Visits every (row of the unfolded buffer, output row, input row, column range) that touches
    /// the image: `f(row, oy, iy, ox_lo, ox_hi, kx)`.
    fn for_each_segment(&self, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
        for ch in 0..self.c {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ch * self.kh + ky) * self.kw + kx;
                    let (lo, hi) = self.valid_columns(kx);
                    for oy in 0..self.ho {
                        let iy = (oy * self.stride + ky) as isize - self.padding as isize;
                        if iy >= 0 && (iy as usize) < self.h && lo < hi {
                            f(row, oy, ch * self.h + iy as usize, lo, hi, kx);
                        }
                    }
                }
            }
        }
    }

    /// Unfolds one sample (C, H, W) into `cols` (C*kh*kw, Ho*Wo). Only the entries that touch the
    /// image are written: the rest (the zero padding) is the same for every sample, so `cols` must
    /// start zeroed and be reused only for this geometry.
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (l, s, w, p) = (self.l(), self.stride, self.w, self.padding);
        self.for_each_segment(|row, oy, iy, lo, hi, kx| {
            let dst = &mut cols[row * l + oy * self.wo..][lo..hi];
            let src = &x[iy * w..][..w];
            if s == 1 {
                dst.copy_from_slice(&src[lo + kx - p..hi + kx - p]);
            } else {
                for (ox, d) in (lo..hi).zip(dst) {
                    *d = src[ox * s + kx - p];
                }
            }
        });
    }

    /// Folds `cols` back onto one zeroed sample, adding overlapping contributions (the adjoint of im2col).
    fn col2im(&self, cols: &[f32], x: &mut [f32]) {
        let (l, s, w, p) = (self.l(), self.stride, self.w, self.padding);
        self.for_each_segment(|row, oy, iy, lo, hi, kx| {
            let src = &cols[row * l + oy * self.wo..][lo..hi];
            let dst = &mut x[iy * w..][..w];
            if s == 1 {
                let dst = &mut dst[lo + kx - p..hi + kx - p];
                dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
            } else {
                for (ox, v) in (lo..hi).zip(src) {
                    dst[ox * s + kx - p] += v;
                }
            }
        });
    }
}

/// Row-major matrix operand: data, rows, columns, and whether it is read transposed.
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl Mat<'_> {
    /// (rows, cols, row stride, column stride) as used.
    fn view(&self) -> (usize, usize, isize, isize) {
        if self.transposed {
            (self.cols, self.rows, 1, self.cols as isize)
        } else {
            (self.rows, self.cols, self.cols as isize, 1)
        }
    }
}

/// `dst (m x n) = a (m x k) * b (k x n)`, added to `dst` when `accumulate`; `dst` is row-major, or
/// column-major when `dst_transposed`. Which operands are stored transposed changes gemm's speed
/// severalfold for these thin matrices; the callers below use the layouts measured fastest.
fn gemm(dst: &mut [f32], dst_transposed: bool, a: Mat, b: Mat, accumulate: bool) {
    let (m, k, a_rs, a_cs) = a.view();
    let (k2, n, b_rs, b_cs) = b.view();
    assert!(k == k2 && dst.len() == m * n, "gemm: mismatched operands");
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols);
    let (d_rs, d_cs) = if dst_transposed {
        (1, m as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: the asserts above keep every index inside the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            d_cs,
            d_rs,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `src` (rows x cols, row-major) written transposed into `dst` (cols x rows).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, row) in src.chunks_exact(cols).take(rows).enumerate() {
        for (c, v) in row.iter().enumerate() {
            dst[c * rows + r] = *v;
        }
    }
}

/// Runs `f(first sample, samples of out)` over the batch split into one chunk per thread.
pub(crate) fn split_batch<T: Send>(
    batch: usize,
    per_sample: usize,
    out: &mut [f32],
    f: impl Fn(usize, &mut [f32]) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(batch)
        .max(1);
    let chunk = batch.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = out
            .chunks_mut((chunk * per_sample).max(1))
            .enumerate()
            .map(|(i, part)| {
                let f = &f;
                scope.spawn(move || f(i * chunk, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("convolution worker panicked"))
            .collect()
    })
}

pub(crate) fn slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("conv2d: {what} must be contiguous"),
    }
}

/// The forward convolution.
struct Forward {
    stride: usize,
    padding: usize,
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
        let (x, w) = (slice(s1, l1, "input")?, slice(s2, l2, "weight")?);
        let mut y = vec![0f32; g.b * g.o * g.l()];
        let (chw, k, l) = (g.c * g.h * g.w, g.k(), g.l());
        split_batch(g.b, g.o * l, &mut y, |first, out| {
            let mut cols = vec![0f32; k * l];
            let mut y_t = vec![0f32; l * g.o];
            for (i, y_b) in out.chunks_mut(g.o * l).enumerate() {
                g.im2col(&x[(first + i) * chw..][..chw], &mut cols);
                let a = Mat {
                    data: w,
                    rows: g.o,
                    cols: k,
                    transposed: false,
                };
                let b = Mat {
                    data: &cols,
                    rows: k,
                    cols: l,
                    transposed: false,
                };
                gemm(&mut y_t, true, a, b, false);
                transpose(&y_t, l, g.o, y_b);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((g.b, g.o, g.ho, g.wo))))
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
struct InputGradient {
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
        let (grad, w) = (slice(s1, l1, "gradient")?, slice(s2, l2, "weight")?);
        let (chw, k, l) = (g.c * g.h * g.w, g.k(), g.l());
        let mut dx = vec![0f32; g.b * chw];
        split_batch(g.b, chw, &mut dx, |first, out| {
            let mut cols = vec![0f32; k * l];
            for (i, dx_b) in out.chunks_mut(chw).enumerate() {
                let g_b = &grad[(first + i) * g.o * l..][..g.o * l];
                let a = Mat {
                    data: w,
                    rows: g.o,
                    cols: k,
                    transposed: true,
                };
                let bm = Mat {
                    data: g_b,
                    rows: g.o,
                    cols: l,
                    transposed: false,
                };
                gemm(&mut cols, false, a, bm, false);
                g.col2im(&cols, dx_b);
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from((g.b, g.c, g.h, g.w))))
    }
}

/// Gradient with respect to the weight: the output gradient times the unfolded input, summed over the batch.
struct WeightGradient {
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
        let (x, grad) = (slice(s1, l1, "input")?, slice(s2, l2, "gradient")?);
        let (chw, k, l) = (g.c * g.h * g.w, g.k(), g.l());
        // Each thread sums its samples into its own accumulator; the accumulators are added at the end.
        let mut samples = vec![0f32; g.b];
        let partial = split_batch(g.b, 1, &mut samples, |first, part| {
            let mut cols = vec![0f32; k * l];
            let mut g_t = vec![0f32; l * g.o];
            let mut dw_t = vec![0f32; k * g.o];
            for i in 0..part.len() {
                g.im2col(&x[(first + i) * chw..][..chw], &mut cols);
                transpose(&grad[(first + i) * g.o * l..][..g.o * l], g.o, l, &mut g_t);
                let a = Mat {
                    data: &cols,
                    rows: k,
                    cols: l,
                    transposed: false,
                };
                let b = Mat {
                    data: &g_t,
                    rows: l,
                    cols: g.o,
                    transposed: false,
                };
                gemm(&mut dw_t, false, a, b, i > 0);
            }
            dw_t
        });
        let mut dw_t = vec![0f32; k * g.o];
        for p in partial {
            dw_t.iter_mut().zip(p).for_each(|(d, v)| *d += v);
        }
        let mut dw = vec![0f32; g.o * k];
        transpose(&dw_t, k, g.o, &mut dw);
        Ok((CpuStorage::F32(dw), Shape::from((g.o, g.c, g.kh, g.kw))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Largest difference relative to the largest magnitude of `b`.
    fn rel_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
        let scale = b.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
        Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? / scale)
    }

    /// Compares values and both gradients with candle's own conv2d: input (b, c, h, w), kernels
    /// (o, c, k, k), and (stride, padding).
    fn check(
        (b, c, h, w): (usize, usize, usize, usize),
        (o, k): (usize, usize),
        (stride, padding): (usize, usize),
    ) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, h, w), &dev)?)?;
        let wt = Var::from_tensor(&Tensor::randn(0f32, 1., (o, c, k, k), &dev)?)?;
        let ours = conv2d(&x, &wt, stride, padding)?;
        let theirs = x.conv2d(&wt, padding, stride, 1, 1)?;
        assert!(rel_diff(&ours, &theirs)? < 1e-5, "values");
        let mix = Tensor::randn(0f32, 1., theirs.shape(), &dev)?;
        let g1 = (ours * &mix)?.sum_all()?.backward()?;
        let g2 = (theirs * &mix)?.sum_all()?.backward()?;
        for v in [&x, &wt] {
            let (a, b) = (g1.get(v).expect("gradient"), g2.get(v).expect("gradient"));
            assert!(rel_diff(a, b)? < 1e-4, "gradient of {:?}", v.dims());
        }
        Ok(())
    }

    #[test]
    fn matches_candle_with_gradients() -> candle_core::Result<()> {
        check((3, 2, 7, 9), (4, 3), (1, 1))?;
        check((2, 1, 8, 8), (3, 5), (1, 2))?;
        check((2, 3, 9, 7), (2, 3), (2, 1))?;
        check((1, 2, 6, 6), (2, 1), (2, 0))?;
        check((4, 3, 5, 6), (5, 3), (1, 0))
    }

    #[test]
    fn images_get_no_gradient_but_kernels_do() -> candle_core::Result<()> {
        let x = Tensor::randn(0f32, 1., (2, 1, 5, 5), &Device::Cpu)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 1, 3, 3), &Device::Cpu)?)?;
        let grads = conv2d(&x, &w, 1, 1)?.sum_all()?.backward()?;
        assert!(grads.get(&x).is_none() && grads.get(&w).is_some());
        Ok(())
    }

    #[test]
    fn one_by_one_hand_case() -> candle_core::Result<()> {
        // 1x1 kernel of weight 2 on a 1x1x2x2 input, stride 1: doubles it.
        let x = Tensor::new(&[[[[1f32, 2.], [3., 4.]]]], &Device::Cpu)?;
        let w = Tensor::new(&[[[[2f32]]]], &Device::Cpu)?;
        let y = conv2d(&x, &w, 1, 0)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(y, vec![2., 4., 6., 8.]);
        Ok(())
    }
}
