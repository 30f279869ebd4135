//! Single-threaded f32 matrix products for the hand-written CPU ops, through the `gemm` crate,
//! with the operand layouts chosen for the kernel this CPU runs.
//!
//! `gemm` picks its micro-kernel at run time: AVX-512 where the CPU has it (the crate's `x86-v4`
//! feature, enabled in `Cargo.toml`), otherwise AVX2 + FMA, otherwise portable code. Which
//! operand is read transposed changes its speed severalfold on the convolutions' thin matrices,
//! differently for each kernel, so the callers ask [`wide_kernel`] and pass the layout measured
//! fastest for it (`cargo bench --bench conv` prints the per-layer rates).

/// A matrix operand: `rows x cols` values of `data`, element (i, j) at `i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix whose rows are `stride` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        View {
            data,
            rows,
            cols,
            rs: stride,
            cs: 1,
        }
    }

    /// A row-major `rows x cols` matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, rows, cols, cols)
    }

    /// The same values read transposed.
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether every element lies inside `len` values.
    fn fits(&self, len: usize) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < len
    }
}

/// How the product is stored: row-major (`Rows`) or column-major (`Columns`, i.e. its transpose
/// stored row-major).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    Rows,
    Columns,
}

/// `dst (m x n) = a (m x k) * b (k x n)`, added to `dst` when `accumulate`.
pub(crate) fn matmul(dst: &mut [f32], store: Store, a: View, b: View, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        k == b.rows && dst.len() == m * n,
        "matmul: mismatched operands"
    );
    assert!(a.fits(a.data.len()) && b.fits(b.data.len()));
    let (d_rs, d_cs) = match store {
        Store::Rows => (n as isize, 1),
        Store::Columns => (1, m as isize),
    };
    // SAFETY: the asserts above keep every index of the three matrices inside their slices.
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
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Whether `gemm` runs its AVX-512 kernel on this CPU (checked once, at run time).
pub(crate) fn wide_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `src` (rows x cols, row-major) written transposed into `dst` (cols x rows), in cache-sized
/// tiles.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const TILE: usize = 32;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by definition.
    fn naive(a: View, b: View) -> Vec<f32> {
        let mut out = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols)
                    .map(|k| a.data[i * a.rs + k * a.cs] * b.data[k * b.rs + j * b.cs])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn every_layout_gives_the_product() {
        let a: Vec<f32> = (0..15).map(|v| v as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..20).map(|v| (v as f32).sin()).collect();
        let (av, bv) = (View::dense(&a, 3, 5), View::dense(&b, 5, 4));
        let want = naive(av, bv);
        let mut rows = vec![0f32; 12];
        matmul(&mut rows, Store::Rows, av, bv, false);
        let mut cols = vec![0f32; 12];
        // The same product from transposed operands: (b^T a^T)^T, stored column-major.
        let mut a_t = vec![0f32; 15];
        transpose(&a, 3, 5, &mut a_t);
        matmul(
            &mut cols,
            Store::Columns,
            View::dense(&a_t, 5, 3).t(),
            bv,
            false,
        );
        let mut back = vec![0f32; 12];
        transpose(&cols, 4, 3, &mut back);
        for (x, y) in want.iter().zip(rows.iter().zip(&back)) {
            assert!((x - y.0).abs() < 1e-5 && (x - y.1).abs() < 1e-5);
        }
        // Accumulating adds; a strided view reads every other row.
        matmul(&mut rows, Store::Rows, av, bv, true);
        assert!((rows[5] - 2.0 * want[5]).abs() < 1e-4);
        let strided = View::rows(&a, 2, 5, 10);
        let mut two = vec![0f32; 8];
        matmul(&mut two, Store::Rows, strided, bv, false);
        assert!((two[4] - want[8]).abs() < 1e-5);
    }
}
