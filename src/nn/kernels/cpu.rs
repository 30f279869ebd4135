//! What the hand-written CPU ops share: their operands as slices, the batch split over candle's
//! CPU threads, and per-thread scratch buffers reused from call to call.
//!
//! Hand-written because candle's `CustomOp` hands over raw storage only. The scratch buffers
//! keep the unfolded (im2col) matrices of the convolutions out of the allocator: a fresh buffer
//! of several megabytes per call cost page faults and clearing on every layer.
//!
//! Every op falls back to candle's own operations on other devices and dtypes; [`CANDLE_OPS_ENV`]
//! makes the CPU take that path too, so that what a GPU runs is checked where there is none.

use std::cell::RefCell;
use std::sync::{Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape};

/// Set to `1`, neureg's hand-written CPU kernels stand aside and candle's operations compute on
/// the CPU as they do on every other device.
pub const CANDLE_OPS_ENV: &str = "NEUREG_CANDLE_OPS";

/// Whether the hand-written kernels compute on `device` for `dtype`: f32 on the CPU, unless
/// [`CANDLE_OPS_ENV`] is set to `1`.
pub(crate) fn kernels_apply(device: &Device, dtype: DType) -> bool {
    static CANDLE_OPS: OnceLock<bool> = OnceLock::new();
    let candle_ops =
        *CANDLE_OPS.get_or_init(|| std::env::var(CANDLE_OPS_ENV).is_ok_and(|v| v.trim() == "1"));
    device.is_cpu() && dtype == DType::F32 && !candle_ops
}

/// The contiguous f32 values of an operand; `what` names it in the error.
pub(crate) fn slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// Runs `f(i)` for every `i` in `0..parts` on candle's CPU worker threads, returning the results
/// in order. candle's own ops run on those threads, which spin between ops: a second pool (rayon's)
/// competed with them for the cores and lost a third of the second core's speed.
pub(crate) fn on_threads<T: Send>(parts: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let pool = candle_core::utils::barrier_pool();
    let threads = pool.n_workers() + 1;
    let slots: Vec<Mutex<Option<T>>> = (0..parts).map(|_| Mutex::new(None)).collect();
    pool.execute(|worker| {
        for i in (worker..parts).step_by(threads) {
            let value = f(i);
            if let Ok(mut slot) = slots[i].lock() {
                *slot = Some(value);
            }
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().ok().flatten().expect("every part ran"))
        .collect()
}

/// Samples per thread when `batch` samples are split into one chunk per thread
/// (`RAYON_NUM_THREADS`, default all cores).
fn chunk(batch: usize) -> usize {
    let threads = candle_core::utils::get_num_threads().min(batch).max(1);
    batch.div_ceil(threads)
}

/// Runs `f(first sample, samples of out)` over the batch split into one chunk per thread,
/// returning each chunk's result in order.
pub(crate) fn split_batch<T: Send>(
    batch: usize,
    per_sample: usize,
    out: &mut [f32],
    f: impl Fn(usize, &mut [f32]) -> T + Sync,
) -> Vec<T> {
    let chunk = chunk(batch);
    let parts: Vec<Mutex<&mut [f32]>> = out
        .chunks_mut((chunk * per_sample).max(1))
        .map(Mutex::new)
        .collect();
    on_threads(parts.len(), |i| match parts[i].lock() {
        Ok(mut part) => f(i * chunk, &mut part),
        Err(_) => unreachable!("each part is taken by one thread"),
    })
}

/// Runs `f(first sample, sample count)` over the batch split as [`split_batch`] splits it, for
/// ops with no per-sample output (sums over the batch), returning each chunk's result in order.
pub(crate) fn split_samples<T: Send>(batch: usize, f: impl Fn(usize, usize) -> T + Sync) -> Vec<T> {
    let chunk = chunk(batch);
    let parts = if chunk == 0 { 0 } else { batch.div_ceil(chunk) };
    on_threads(parts, |i| f(i * chunk, chunk.min(batch - i * chunk)))
}

/// `f(a[i], b[i])` for every i, the values split across the threads.
pub(crate) fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    const PART: usize = 1 << 14;
    let mut out = vec![0f32; a.len()];
    let parts = out.len().div_ceil(PART);
    split_batch(parts, PART, &mut out, |first, part| {
        let at = first * PART;
        let (a, b) = (&a[at..][..part.len()], &b[at..][..part.len()]);
        for i in 0..part.len() {
            part[i] = f(a[i], b[i]);
        }
    });
    out
}

/// Values per lane group of the hand-vectorised sums.
const LANES: usize = 16;

/// `sum_i a[i] * b[i]` in `LANES` partial sums, which the compiler keeps in vector registers.
pub(crate) fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The gradient through an element-wise op from the gradient of its output and the output:
/// `f(gradient, output)` for every value (a CustomOp2 of the two, contiguous, of one shape).
pub(crate) struct GradFromOutput {
    /// The op's name for candle.
    pub name: &'static str,
    /// The gradient of one value.
    pub f: fn(f32, f32) -> f32,
}

impl CustomOp2 for GradFromOutput {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, y) = (slice(s1, l1, "gradient")?, slice(s2, l2, "output")?);
        let dx = zip_map(g, y, self.f);
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with `N` scratch buffers of the given lengths, reused by this thread from call to
/// call (their contents are whatever the last user left: callers write before they read).
pub(crate) fn with_scratch<const N: usize, R>(
    lens: [usize; N],
    f: impl FnOnce([&mut [f32]; N]) -> R,
) -> R {
    SCRATCH.with(|pool| match pool.try_borrow_mut() {
        Ok(mut pool) => {
            if pool.len() < N {
                pool.resize_with(N, Vec::new);
            }
            let mut bufs = pool.iter_mut().take(N).zip(lens).map(|(buf, len)| {
                if buf.len() < len {
                    buf.resize(len, 0.0);
                }
                &mut buf[..len]
            });
            f(std::array::from_fn(|_| bufs.next().expect("N buffers")))
        }
        // A nested call on the same thread: fresh buffers.
        Err(_) => {
            let mut owned: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
            let mut bufs = owned.iter_mut().map(|b| &mut b[..]);
            f(std::array::from_fn(|_| bufs.next().expect("N buffers")))
        }
    })
}

/// The tests' comparison of a hand-written op with candle's: the largest difference relative to
/// the largest magnitude of `b`, that magnitude taken as at least `floor`.
#[cfg(test)]
pub(crate) fn rel_diff(
    a: &candle_core::Tensor,
    b: &candle_core::Tensor,
    floor: f32,
) -> candle_core::Result<f32> {
    let scale = b.abs()?.max_all()?.to_scalar::<f32>()?.max(floor);
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_covered_once_in_order() {
        let mut out = vec![0f32; 7 * 3];
        let firsts = split_batch(7, 3, &mut out, |first, part| {
            for (i, v) in part.iter_mut().enumerate() {
                *v = (first * 3 + i) as f32;
            }
            first
        });
        assert!(out.iter().enumerate().all(|(i, &v)| v == i as f32));
        assert_eq!(firsts[0], 0);
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
        // Without an output, the same chunks.
        let chunks = split_samples(7, |first, count| (first, count));
        assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), 7);
        assert_eq!(chunks.iter().map(|c| c.0).collect::<Vec<_>>(), firsts);
        assert!(split_samples(0, |first, count| (first, count)).is_empty());
    }

    #[test]
    fn scratch_buffers_have_the_asked_lengths_even_when_nested() {
        with_scratch([3, 5], |[a, b]| {
            assert_eq!((a.len(), b.len()), (3, 5));
            a.fill(1.0);
            with_scratch([4], |[c]| assert_eq!(c.len(), 4));
        });
        with_scratch([2], |[a]| assert_eq!(a, &[1.0, 1.0]));
    }
}
