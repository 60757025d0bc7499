//! A safe view of `matrixmultiply`'s `sgemm` for the contrastive losses' batch products.
//!
//! `matrixmultiply` (bluss; the GEMM under `ndarray`) is pure Rust, has AVX/AVX2/FMA/AVX-512
//! and NEON micro-kernels chosen at run time, and no system dependency, so the trainer builds
//! the same way on every host; we call it single-threaded on blocks of rows and parallelise
//! over the blocks ourselves, so that every output element is summed in the same order
//! whatever the number of threads. Its entry point takes raw pointers and strides; this module
//! checks every index the product can touch against the slices' lengths before calling it.

/// A matrix view over a slice: element `(r, c)` is `data[offset + r * row_stride + c * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// The `rows x cols` row-major matrix at the start of `data`.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            offset: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Columns `first .. first + count` of this view.
    pub fn columns(self, first: usize, count: usize) -> Self {
        assert!(first + count <= self.cols, "columns out of range");
        View {
            offset: self.offset + first * self.col_stride,
            cols: count,
            ..self
        }
    }

    /// Whether every element lies inside the slice.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .and_then(|a| Some(a + (self.cols - 1).checked_mul(self.col_stride)?))
            .and_then(|a| a.checked_add(self.offset));
        matches!(last, Some(last) if last < self.data.len())
    }
}

/// `c = alpha * a * b + beta * c` with `c` the `a.rows x b.cols` row-major matrix at the start
/// of `c` (so `c.len() >= a.rows * b.cols`).
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice (programming errors).
pub fn gemm(alpha: f32, a: View<'_>, b: View<'_>, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(a.in_bounds() && b.in_bounds(), "matrix view out of bounds");
    assert!(c.len() >= m * n, "output too short");
    if m == 0 || n == 0 {
        return;
    }
    let stride = |s: usize| isize::try_from(s).expect("stride fits isize");
    // SAFETY: `in_bounds` checked that every element `(r, c)` of `a` and `b` (r < rows,
    // c < cols) lies inside its slice, and `c` holds the `m x n` row-major output (checked
    // above), which does not alias the inputs (a `&mut` slice). `sgemm` reads only those
    // elements and writes only the output's; with `k == 0` it scales `c` by `beta` only.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr().add(a.offset),
            stride(a.row_stride),
            stride(a.col_stride),
            b.data.as_ptr().add(b.offset),
            stride(b.row_stride),
            stride(b.col_stride),
            beta,
            c.as_mut_ptr(),
            stride(n),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let at = |v: &View<'_>, r: usize, c: usize| {
            v.data[v.offset + r * v.row_stride + c * v.col_stride]
        };
        let mut out = vec![0.0; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                out[r * b.cols + c] = (0..a.cols).map(|k| at(&a, r, k) * at(&b, k, c)).sum();
            }
        }
        out
    }

    #[test]
    fn products_of_views_match_the_naive_product() {
        let a: Vec<f32> = (0..35).map(|x| (x as f32 * 0.37).sin()).collect(); // 5 x 7
        let b: Vec<f32> = (0..42).map(|x| (x as f32 * 0.11).cos()).collect(); // 6 x 7
        let (va, vb) = (View::rows(&a, 5, 7), View::rows(&b, 6, 7));
        for (x, y) in [
            (va, vb.t()), // 5 x 6
            (vb, va.t()), // 6 x 5
            (va.t().columns(1, 3).t(), vb.t()),
        ] {
            let mut c = vec![f32::NAN; x.rows * y.cols];
            gemm(1.0, x, y, 0.0, &mut c);
            for (got, want) in c.iter().zip(naive(x, y)) {
                assert!((got - want).abs() < 1e-5, "{got} vs {want}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_view_past_its_slice_is_refused() {
        let a = vec![0.0f32; 10];
        let mut c = vec![0.0; 4];
        gemm(1.0, View::rows(&a, 2, 6), View::rows(&a, 6, 2), 0.0, &mut c);
    }
}
