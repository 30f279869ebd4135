//! Stride-1 convolutions without an unfolded buffer: the input copied once, zero-padded and
//! channels-last, and each kernel row's patches read from it as an overlapping strided view.
//!
//! In a padded (Hp, Wp, C) copy, the patch of output position n = oy * Wp + ox under kernel row
//! ky is the `kw * C` consecutive values from `((oy + ky) * Wp + ox) * C`: for one ky all patches
//! form a matrix whose rows lie C values apart. So the convolution is kh gemms over
//! (Ho * Wp) x (kw * C) views, with no im2col buffer (7 MB per sample for the predictor's 7 x 7
//! layers, far beyond the L2 cache), at the price of computing Wp - Wo columns per row that are
//! thrown away. Hand-written: candle has no such convolution, and the `gemm` crate reads any
//! strides. Measured on an AMD Zen 4 (AVX-512), one thread: the predictor's 7 x 7 layers at
//! 80-96 GFLOP/s forward instead of 28-70 over the unfolded input.

use crate::nn::kernels::conv::Geometry;
use crate::nn::kernels::cpu::{split_batch, split_samples, with_scratch};
use crate::nn::kernels::gemm::{matmul, Store, View};

/// A stride-1 convolution, read this way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shifted(Geometry);

impl Shifted {
    /// The convolution `g` read this way, if this layout is the faster one for it: stride 1,
    /// enough channels that a kernel row's patch (`kw * C` values) feeds gemm well, rows wide
    /// enough that the discarded columns (`kw - 1` per row) cost little, and few kernels or large
    /// ones. On an AMD Zen 4, one gemm over the unfolded input ran at a third of this layout's
    /// rate on the predictor's 7 x 7 layers and at 0.8 on 3 x 3 layers with 16 kernels, but
    /// 1.05-1.3x faster forward with 32 or more 3 x 3 kernels (`cargo bench --bench conv`).
    pub fn suiting(g: Geometry) -> Option<Self> {
        let suits = g.stride == 1 && g.kh > 1 && g.c >= 8 && g.wo >= 16 && (g.o <= 16 || g.kh >= 5);
        suits.then_some(Shifted(g))
    }

    fn hp(&self) -> usize {
        self.0.h + 2 * self.0.padding
    }

    fn wp(&self) -> usize {
        self.0.w + 2 * self.0.padding
    }

    /// Output positions computed per sample, the discarded columns included: Ho * Wp.
    fn m(&self) -> usize {
        self.0.ho * self.wp()
    }

    /// Values of one kernel row's patch: kw * C.
    fn patch(&self) -> usize {
        self.0.kw * self.0.c
    }

    /// Length of the padded copy: Hp * Wp positions and kw more, read by the last patches.
    fn padded_len(&self) -> usize {
        (self.hp() * self.wp() + self.0.kw) * self.0.c
    }

    /// Writes sample `x` (C, H, W) into `xp` zero-padded and channels-last (Hp, Wp, C).
    fn pad_channels_last(&self, x: &[f32], xp: &mut [f32]) {
        let (c, h, w, p, wp) = (self.0.c, self.0.h, self.0.w, self.0.padding, self.wp());
        xp.fill(0.0);
        for iy in 0..h {
            let dst = &mut xp[((iy + p) * wp + p) * c..][..w * c];
            for ch in 0..c {
                let src = &x[(ch * h + iy) * w..][..w];
                for (ix, &v) in src.iter().enumerate() {
                    dst[ix * c + ch] = v;
                }
            }
        }
    }

    /// Kernel row `ky`'s patches of a padded copy: (Ho * Wp) x (kw * C), rows C values apart.
    fn patches<'a>(&self, xp: &'a [f32], ky: usize) -> View<'a> {
        View::rows(
            &xp[ky * self.wp() * self.0.c..],
            self.m(),
            self.patch(),
            self.0.c,
        )
    }

    /// The kernels rearranged per kernel row: for each ky a (kw * C) x O matrix.
    fn kernel_rows(&self, w: &[f32]) -> Vec<f32> {
        let (c, o, kh, kw) = (self.0.c, self.0.o, self.0.kh, self.0.kw);
        let mut rows = vec![0f32; kh * kw * c * o];
        for oc in 0..o {
            for ch in 0..c {
                for ky in 0..kh {
                    for kx in 0..kw {
                        rows[((ky * kw + kx) * c + ch) * o + oc] =
                            w[((oc * c + ch) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        rows
    }

    /// `x` (B, C, H, W) convolved with `w` (O, C, kh, kw): (B, O, Ho, Wo).
    pub fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let Geometry {
            b,
            c,
            o,
            kh,
            ho,
            wo,
            ..
        } = self.0;
        let (m, wp, patch) = (self.m(), self.wp(), self.patch());
        let chw = c * self.0.h * self.0.w;
        let l = ho * wo;
        let rows = self.kernel_rows(w);
        let mut y = vec![0f32; b * o * l];
        split_batch(b, o * l, &mut y, |first, out| {
            with_scratch([self.padded_len(), m * o], |[xp, product]| {
                for (j, ys) in out.chunks_exact_mut(o * l).enumerate() {
                    self.pad_channels_last(&x[(first + j) * chw..][..chw], xp);
                    // The product is (Ho * Wp) x O, positions as rows.
                    for ky in 0..kh {
                        let kernels = View::dense(&rows[ky * patch * o..], patch, o);
                        matmul(product, Store::Rows, self.patches(xp, ky), kernels, ky > 0);
                    }
                    for oy in 0..ho {
                        let src = &product[oy * wp * o..][..wo * o];
                        for oc in 0..o {
                            let dst = &mut ys[oc * l + oy * wo..][..wo];
                            for (ox, d) in dst.iter_mut().enumerate() {
                                *d = src[ox * o + oc];
                            }
                        }
                    }
                }
            })
        });
        y
    }

    /// The kernels' gradient (O, C, kh, kw) from the input `x` (B, C, H, W) and the output's
    /// gradient `dy` (B, O, Ho, Wo), summed over the batch.
    pub fn weight_gradient(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let Geometry {
            b,
            c,
            o,
            kh,
            kw,
            ho,
            wo,
            ..
        } = self.0;
        let (m, wp, patch) = (self.m(), self.wp(), self.patch());
        let chw = c * self.0.h * self.0.w;
        let l = ho * wo;
        // Each thread sums its samples into its own (ky, O, kw * C) accumulator.
        let partial = split_samples(b, |first, samples| {
            let mut acc = vec![0f32; kh * o * patch];
            with_scratch([self.padded_len(), o * m], |[xp, grid]| {
                // The discarded columns get no gradient.
                grid.fill(0.0);
                for j in 0..samples {
                    let s = first + j;
                    self.pad_channels_last(&x[s * chw..][..chw], xp);
                    let dys = &dy[s * o * l..][..o * l];
                    for oc in 0..o {
                        for oy in 0..ho {
                            grid[oc * m + oy * wp..][..wo]
                                .copy_from_slice(&dys[oc * l + oy * wo..][..wo]);
                        }
                    }
                    for ky in 0..kh {
                        let dst = &mut acc[ky * o * patch..][..o * patch];
                        let lhs = View::dense(grid, o, m);
                        matmul(dst, Store::Rows, lhs, self.patches(xp, ky), j > 0);
                    }
                }
            });
            acc
        });
        let mut dw = vec![0f32; o * c * kh * kw];
        for acc in partial {
            for ky in 0..kh {
                for oc in 0..o {
                    let src = &acc[(ky * o + oc) * patch..][..patch];
                    for kx in 0..kw {
                        for ch in 0..c {
                            dw[((oc * c + ch) * kh + ky) * kw + kx] += src[kx * c + ch];
                        }
                    }
                }
            }
        }
        dw
    }
}
