//! The sizes of a convolution and how its samples are grouped into gemms.

use crate::nn::kernels::gemm::wide_kernel;

/// A gemm over fewer output columns than this runs far below its peak, so samples are unfolded
/// side by side until their columns reach it ...
pub(super) const MIN_COLUMNS: usize = 256;
/// ... unless the unfolded group would exceed this many values (8 MB).
pub(super) const MAX_UNFOLDED: usize = 1 << 21;

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
    pub(super) fn new(
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
    pub(super) fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output positions per channel: Ho * Wo.
    pub(super) fn l(&self) -> usize {
        self.ho * self.wo
    }

    /// Values of one input sample: C * H * W.
    pub(super) fn chw(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Samples unfolded into one gemm, out of `samples`.
    pub(super) fn group(&self, samples: usize) -> usize {
        let wanted = MIN_COLUMNS.div_ceil(self.l());
        let room = (MAX_UNFOLDED / (self.k() * self.l())).max(1);
        wanted.min(room).min(samples).max(1)
    }

    /// Output columns `ox` whose input column `ox * stride + kx - padding` lies inside the image.
    pub(super) fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let lo = self.padding.saturating_sub(kx).div_ceil(self.stride);
        let hi = ((self.w + self.padding).saturating_sub(kx)).div_ceil(self.stride);
        (lo.min(self.wo), hi.min(self.wo))
    }

    /// The input row read by output row `oy` at kernel row `ky`, if inside the image.
    pub(super) fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.padding)
            .filter(|&iy| iy < self.h)
    }

    /// Unfolds one sample (C, H, W) into columns `offset..offset + Ho*Wo` of `cols` (C*kh*kw
    /// rows, `ld` values apart), writing every entry, the zero padding included.
    pub(super) fn im2col(&self, x: &[f32], cols: &mut [f32], ld: usize, offset: usize) {
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
    pub(super) fn unfold_shifted(
        &self,
        x: &[f32],
        ch: usize,
        ky: usize,
        kx: usize,
        dst: &mut [f32],
    ) {
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
    pub(super) fn col2im(&self, cols: &[f32], ld: usize, offset: usize, x: &mut [f32]) {
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
    pub(super) fn unfold(&self, x: &[f32], first: usize, count: usize, cols: &mut [f32]) {
        let (chw, l) = (self.chw(), self.l());
        for j in 0..count {
            self.im2col(&x[(first + j) * chw..][..chw], cols, count * l, j * l);
        }
    }

    /// Unfolds samples `first..first + count` of `x` into patch rows: one row of C*kh*kw values
    /// per output position (`count * Ho*Wo` rows), the transpose of [`Geometry::unfold`].
    pub(super) fn unfold_patches(&self, x: &[f32], first: usize, count: usize, p: &mut [f32]) {
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
pub(super) fn group_rows(count: usize, o: usize, l: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..count).flat_map(move |j| (0..o).map(move |ch| ((j * o + ch) * l, ch * count * l + j * l)))
}

/// `count` samples of (O, L) values written side by side into `grouped`.
pub(super) fn gather(samples: &[f32], grouped: &mut [f32], count: usize, o: usize, l: usize) {
    for (s, g) in group_rows(count, o, l) {
        grouped[g..g + l].copy_from_slice(&samples[s..s + l]);
    }
}

/// The inverse of [`gather`].
pub(super) fn scatter(grouped: &[f32], samples: &mut [f32], count: usize, o: usize, l: usize) {
    for (s, g) in group_rows(count, o, l) {
        samples[s..s + l].copy_from_slice(&grouped[g..g + l]);
    }
}

/// How the forward gemm `Y (O x n) = W (O x K) * cols (K x n)` reads and writes its operands,
/// chosen per kernel and shape from the per-layer rates of `cargo bench --bench conv` and of
/// gemm alone on these shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ForwardLayout {
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
    pub(super) fn for_geometry(g: &Geometry) -> Self {
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
