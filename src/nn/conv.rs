//! 2-D convolution (f32, CPU) by im2col and gemm, with its own backward pass.
//!
//! Hand-written because candle 0.11's CPU conv2d backward runs through a
//! direct transposed convolution that is 10-25x slower than PyTorch's on the
//! predictor's and the ResNet's shapes. Forward, input gradient and weight
//! gradient are each one gemm per group of samples over an unfolded (im2col)
//! buffer, with the batch split across threads. Samples are grouped so that a
//! gemm has at least [`MIN_COLUMNS`] columns: the ResNet's late stages have
//! only 16-64 output positions per sample, too thin for gemm's kernels. Other
//! devices and dtypes use candle's own conv2d.

use candle_core::{CpuStorage, CustomOp2, Layout, Module, Shape, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::error::Result;
use crate::nn::cpu::{slice, split_batch, split_samples, with_scratch};
use crate::nn::gemm::{matmul, transpose, wide_kernel, Store, View};
use crate::nn::seeded_init::torch_default;
use crate::nn::shifted_conv::Shifted;

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

/// A gemm over fewer output columns than this runs far below its peak, so samples are unfolded
/// side by side until their columns reach it ...
const MIN_COLUMNS: usize = 256;
/// ... unless the unfolded group would exceed this many values (8 MB).
const MAX_UNFOLDED: usize = 1 << 21;

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
    pub ho: usize,
    pub wo: usize,
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

    /// Values of one input sample: C * H * W.
    fn chw(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Samples unfolded into one gemm, out of `samples`.
    fn group(&self, samples: usize) -> usize {
        let wanted = MIN_COLUMNS.div_ceil(self.l());
        let room = (MAX_UNFOLDED / (self.k() * self.l())).max(1);
        wanted.min(room).min(samples).max(1)
    }

    /// Output columns `ox` whose input column `ox * stride + kx - padding` lies inside the image.
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let lo = self.padding.saturating_sub(kx).div_ceil(self.stride);
        let hi = ((self.w + self.padding).saturating_sub(kx)).div_ceil(self.stride);
        (lo.min(self.wo), hi.min(self.wo))
    }

    /// The input row read by output row `oy` at kernel row `ky`, if inside the image.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&iy| iy < self.h)
    }

    /// Unfolds one sample (C, H, W) into columns `offset..offset + Ho*Wo` of `cols` (C*kh*kw
    /// rows, `ld` values apart), writing every entry, the zero padding included.
    fn im2col(&self, x: &[f32], cols: &mut [f32], ld: usize, offset: usize) {
        let (s, w, p, wo) = (self.stride, self.w, self.padding, self.wo);
        for ch in 0..self.c {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ch * self.kh + ky) * self.kw + kx;
                    let (lo, hi) = self.valid_columns(kx);
                    let dst_row = &mut cols[row * ld + offset..][..self.l()];
                    if s == 1 && wo == w {
                        self.unfold_shifted(x, ch, ky, kx, dst_row);
                        continue;
                    }
                    for (oy, dst) in dst_row.chunks_exact_mut(wo).enumerate() {
                        let Some(iy) = self.input_row(oy, ky).filter(|_| lo < hi) else {
                            dst.fill(0.0);
                            continue;
                        };
                        let src = &x[(ch * self.h + iy) * w..][..w];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if s == 1 {
                            dst[lo..hi].copy_from_slice(&src[lo + kx - p..hi + kx - p]);
                        } else {
                            for (ox, d) in (lo..hi).zip(&mut dst[lo..hi]) {
                                *d = src[ox * s + kx - p];
                            }
                        }
                    }
                }
            }
        }
    }

    /// One row of the unfolded matrix for stride 1 and "same" padding (Wo = W): the input
    /// plane shifted by (ky - padding) rows and (kx - padding) columns, copied as one block,
    /// then the wrapped-around columns and the rows outside the image set to zero.
    fn unfold_shifted(&self, x: &[f32], ch: usize, ky: usize, kx: usize, dst: &mut [f32]) {
        let (h, w, p) = (self.h, self.w, self.padding);
        let plane = &x[ch * h * w..][..h * w];
        let (lo, hi) = self.valid_columns(kx);
        let oy_lo = p.saturating_sub(ky).min(self.ho);
        let oy_hi = (h + p).saturating_sub(ky).clamp(oy_lo, self.ho);
        if lo >= hi || oy_lo == oy_hi {
            dst.fill(0.0);
            return;
        }
        dst[..oy_lo * w].fill(0.0);
        dst[oy_hi * w..].fill(0.0);
        let block = &mut dst[oy_lo * w..oy_hi * w];
        // Plane index of block[0]; the ends that fall outside the plane are wrapped columns.
        let start = ((oy_lo + ky - p) * w) as isize + kx as isize - p as isize;
        let j0 = (-start).max(0) as usize;
        let j1 = ((h * w) as isize - start).clamp(j0 as isize, block.len() as isize) as usize;
        block[..j0].fill(0.0);
        block[j1..].fill(0.0);
        block[j0..j1].copy_from_slice(&plane[(start + j0 as isize) as usize..][..j1 - j0]);
        if lo > 0 || hi < w {
            for row in block.chunks_exact_mut(w) {
                row[..lo].fill(0.0);
                row[hi..].fill(0.0);
            }
        }
    }

    /// Folds columns `offset..offset + Ho*Wo` of `cols` back onto one sample, adding
    /// overlapping contributions (the adjoint of im2col).
    fn col2im(&self, cols: &[f32], ld: usize, offset: usize, x: &mut [f32]) {
        let (s, w, p, wo) = (self.stride, self.w, self.padding, self.wo);
        for ch in 0..self.c {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ch * self.kh + ky) * self.kw + kx;
                    let (lo, hi) = self.valid_columns(kx);
                    let src_row = &cols[row * ld + offset..][..self.l()];
                    for (oy, src) in src_row.chunks_exact(wo).enumerate() {
                        let Some(iy) = self.input_row(oy, ky).filter(|_| lo < hi) else {
                            continue;
                        };
                        let dst = &mut x[(ch * self.h + iy) * w..][..w];
                        if s == 1 {
                            let dst = &mut dst[lo + kx - p..hi + kx - p];
                            dst.iter_mut().zip(&src[lo..hi]).for_each(|(d, v)| *d += v);
                        } else {
                            for (ox, v) in (lo..hi).zip(&src[lo..hi]) {
                                dst[ox * s + kx - p] += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Unfolds samples `first..first + count` of `x` side by side into `cols` (C*kh*kw rows of
    /// `count * Ho*Wo` values).
    fn unfold(&self, x: &[f32], first: usize, count: usize, cols: &mut [f32]) {
        let (chw, l) = (self.chw(), self.l());
        for j in 0..count {
            self.im2col(&x[(first + j) * chw..][..chw], cols, count * l, j * l);
        }
    }

    /// Unfolds samples `first..first + count` of `x` into patch rows: one row of C*kh*kw values
    /// per output position (`count * Ho*Wo` rows), the transpose of [`Geometry::unfold`].
    fn unfold_patches(&self, x: &[f32], first: usize, count: usize, p: &mut [f32]) {
        let (k, chw, kw) = (self.k(), self.chw(), self.kw);
        let (s, pad) = (self.stride, self.padding);
        for j in 0..count {
            let xs = &x[(first + j) * chw..][..chw];
            for oy in 0..self.ho {
                for ox in 0..self.wo {
                    let row = &mut p[((j * self.ho + oy) * self.wo + ox) * k..][..k];
                    // Kernel columns whose input column ox * s + kx - pad lies in the image.
                    let lo = pad.saturating_sub(ox * s).min(kw);
                    let hi = (self.w + pad).saturating_sub(ox * s).min(kw);
                    for ch in 0..self.c {
                        for ky in 0..self.kh {
                            let dst = &mut row[(ch * self.kh + ky) * kw..][..kw];
                            match self.input_row(oy, ky) {
                                Some(iy) if lo < hi => {
                                    let src = &xs[(ch * self.h + iy) * self.w..][..self.w];
                                    let start = ox * s + lo - pad;
                                    dst[..lo].fill(0.0);
                                    dst[hi..].fill(0.0);
                                    dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                                }
                                _ => dst.fill(0.0),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where the (O, L) rows of `count` samples lie in those samples (first) and in one
/// (O, count * L) matrix holding them side by side (second).
fn group_rows(count: usize, o: usize, l: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..count).flat_map(move |j| (0..o).map(move |ch| ((j * o + ch) * l, ch * count * l + j * l)))
}

/// `count` samples of (O, L) values written side by side into `grouped`.
fn gather(samples: &[f32], grouped: &mut [f32], count: usize, o: usize, l: usize) {
    for (s, g) in group_rows(count, o, l) {
        grouped[g..g + l].copy_from_slice(&samples[s..s + l]);
    }
}

/// The inverse of [`gather`].
fn scatter(grouped: &[f32], samples: &mut [f32], count: usize, o: usize, l: usize) {
    for (s, g) in group_rows(count, o, l) {
        samples[s..s + l].copy_from_slice(&grouped[g..g + l]);
    }
}

/// How the forward gemm `Y (O x n) = W (O x K) * cols (K x n)` reads and writes its operands,
/// chosen per kernel and shape from the per-layer rates of `cargo bench --bench conv` and of
/// gemm alone on these shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForwardLayout {
    /// W as stored, Y written row-major (AVX2: 128 or more kernels; AVX-512 on an AMD Zen 4:
    /// every layer but the stem, 1.05-1.4x the transposed layout's rate).
    Direct,
    /// W read from a transposed copy (AVX2: fewer than 128 kernels on up to 576 rows, up to
    /// 1.7x the direct rate there; AVX-512: the stem's nine rows).
    KernelsTransposed,
    /// The unfolded input as patch rows (one row per output position) and Y written
    /// column-major, transposed after (AVX2, fewer than 128 kernels on more rows: the
    /// predictor's 7 x 7 layers, where the layouts over the column-unfolded input ran at
    /// 11-23 GFLOP/s and this one at 41-62).
    OutputTransposed,
}

impl ForwardLayout {
    fn for_geometry(g: &Geometry) -> Self {
        if wide_kernel() {
            if g.k() < 32 {
                ForwardLayout::KernelsTransposed
            } else {
                ForwardLayout::Direct
            }
        } else if g.o < 128 && g.k() <= 576 {
            ForwardLayout::KernelsTransposed
        } else if g.o < 128 {
            ForwardLayout::OutputTransposed
        } else {
            ForwardLayout::Direct
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::rel_diff;
    use candle_core::{Device, Var};

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
        assert!(rel_diff(&ours, &theirs, 1.0)? < 1e-5, "values");
        let mix = Tensor::randn(0f32, 1., theirs.shape(), &dev)?;
        let g1 = (ours * &mix)?.sum_all()?.backward()?;
        let g2 = (theirs * &mix)?.sum_all()?.backward()?;
        for v in [&x, &wt] {
            let (a, b) = (g1.get(v).expect("gradient"), g2.get(v).expect("gradient"));
            assert!(rel_diff(a, b, 1.0)? < 1e-4, "gradient of {:?}", v.dims());
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
    fn matches_candle_on_the_networks_awkward_shapes() -> candle_core::Result<()> {
        // Scan-sized inputs with the predictor's kernels ("same" padding: the shifted unfold).
        check((2, 1, 36, 64), (3, 9), (1, 4))?;
        check((1, 3, 36, 64), (5, 7), (1, 3))?;
        // Batch 1; odd channel counts; the stem's nine-row unfold (weight gradient by rows).
        check((1, 1, 32, 32), (7, 3), (1, 1))?;
        check((3, 5, 11, 13), (7, 3), (2, 1))?;
        // 1 x 1 kernels, stride 2 (the downsampling shortcut), and no padding.
        check((3, 6, 8, 8), (9, 1), (2, 0))?;
        check((2, 4, 9, 9), (3, 3), (1, 0))?;
        // Late-stage sizes: few output positions, so samples are grouped into one gemm, and
        // enough kernels for the direct layout.
        // (candle's own input gradient has the wrong width for stride 2 when the last column is
        // not read, e.g. 8 wide: hence the odd widths of the reference cases.)
        check((5, 6, 4, 4), (130, 3), (1, 1))?;
        check((3, 7, 5, 7), (129, 3), (2, 1))?;
        check((4, 130, 2, 3), (3, 3), (1, 1))?;
        // Few kernels on many rows: the patch-row unfold, with stride and padding.
        check((2, 13, 9, 11), (5, 7), (1, 3))?;
        check((3, 13, 9, 11), (6, 7), (2, 2))?;
        check((2, 70, 5, 5), (3, 3), (1, 0))?;
        // Stride 1 with 8+ channels on rows 16+ wide: shifted views of a padded copy (the input
        // gradient too where there are 8+ kernels), padding below, at and above "same".
        check((3, 9, 5, 17), (10, 3), (1, 1))?;
        check((2, 8, 6, 20), (3, 3), (1, 0))?;
        check((1, 16, 12, 18), (9, 5), (1, 3))?;
        // The predictor's hidden layer.
        check((2, 16, 36, 64), (16, 7), (1, 3))
    }

    #[test]
    fn gradients_are_adjoint_on_even_sizes_with_stride_2() -> candle_core::Result<()> {
        // conv(x, w) is linear in each argument, so <conv(x, w), p> = <dx, x> = <dw, w> for
        // the gradients of <conv(x, w), p>: a check that needs no reference implementation,
        // on the ResNet's even 32 -> 16 downsampling that candle's reference gets wrong.
        let dev = Device::Cpu;
        for (o, k, padding) in [(6, 3, 1), (130, 3, 1), (5, 1, 0)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1., (3, 4, 8, 8), &dev)?)?;
            let w = Var::from_tensor(&Tensor::randn(0f32, 1., (o, 4, k, k), &dev)?)?;
            let y = conv2d(&x, &w, 2, padding)?;
            let probe = Tensor::randn(0f32, 1., y.shape(), &dev)?;
            let value = (&y * &probe)?.sum_all()?;
            let grads = value.backward()?;
            let inner = |g: &Tensor, v: &Tensor| (g * v)?.sum_all()?.to_scalar::<f32>();
            let v = value.to_scalar::<f32>()?;
            let dx = inner(grads.get(&x).expect("dx"), &x)?;
            let dw = inner(grads.get(&w).expect("dw"), &w)?;
            let tol = 1e-4 * v.abs().max(1.0) * 10.0;
            assert!(
                (dx - v).abs() < tol && (dw - v).abs() < tol,
                "{v} {dx} {dw}"
            );
        }
        Ok(())
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
