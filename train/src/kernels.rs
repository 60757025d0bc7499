//! The row kernels of the training step: inner product, the BPR gradient updates, and Adam.
//!
//! Each kernel is written once as plain loops over `f32` slices. On x86-64 CPUs with AVX2 the
//! same code is also compiled for 256-bit vectors and picked at run time. Both versions perform
//! exactly the same IEEE operations in the same order (no fused multiply-add, a fixed 8-lane
//! reduction in [`dot`]), so training gives the same bits with or without AVX2.

/// Whether the AVX2 versions can run here (checked once).
#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    use std::sync::OnceLock;
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
}

/// Defines `pub fn $name` that runs `$body` compiled for AVX2 when the CPU has it, and for the
/// baseline target otherwise.
macro_rules! kernel {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        #[inline]
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn wide($($arg: $ty),*) $(-> $ret)? {
                generic($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            if avx2() {
                // SAFETY: `wide` only needs AVX2, which `avx2()` has just confirmed this CPU
                // supports.
                return unsafe { wide($($arg),*) };
            }
            generic($($arg),*)
        }
    };
}

kernel! {
    /// Inner product of two equally long slices, summed in eight lanes (lane `k` takes the
    /// elements `k, k + 8, ...`), the lanes added pairwise, then the tail.
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut lanes = [0.0f32; 8];
        let mut ca = a.chunks_exact(8);
        let mut cb = b.chunks_exact(8);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for k in 0..8 {
                lanes[k] += x[k] * y[k];
            }
        }
        let mut tail = 0.0f32;
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            tail += x * y;
        }
        (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
            + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])))
            + tail
    }
}

kernel! {
    /// The user's gradient from one triple: `g += c * (vi - vj) + l2 * u`.
    fn user_grad(g: &mut [f32], c: f32, vi: &[f32], vj: &[f32], u: &[f32], l2: f32) {
        let n = g.len();
        let (vi, vj, u) = (&vi[..n], &vj[..n], &u[..n]);
        for d in 0..n {
            g[d] += c * (vi[d] - vj[d]) + l2 * u[d];
        }
    }
}

kernel! {
    /// An item's gradient from one triple: `g += c * u + l2 * v`.
    fn item_grad(g: &mut [f32], c: f32, u: &[f32], v: &[f32], l2: f32) {
        let n = g.len();
        let (u, v) = (&u[..n], &v[..n]);
        for d in 0..n {
            g[d] += c * u[d] + l2 * v[d];
        }
    }
}

kernel! {
    /// `y += a * x`.
    fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        let n = y.len();
        let x = &x[..n];
        for d in 0..n {
            y[d] += a * x[d];
        }
    }
}

kernel! {
    /// `acc += g`.
    fn add(acc: &mut [f32], g: &[f32]) {
        let n = acc.len();
        let g = &g[..n];
        for d in 0..n {
            acc[d] += g[d];
        }
    }
}

/// Adam's constants for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// Learning rate with the bias correction folded in.
    pub lr_t: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Epsilon.
    pub eps: f32,
}

kernel! {
    /// Adam on one row: `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g²`,
    /// `w -= lr_t m / (sqrt(v) + eps)`.
    fn adam(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], p: AdamStep) {
        let n = w.len();
        let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
        for d in 0..n {
            m[d] = p.beta1 * m[d] + (1.0 - p.beta1) * g[d];
            v[d] = p.beta2 * v[d] + (1.0 - p.beta2) * g[d] * g[d];
            w[d] -= p.lr_t * m[d] / (v[d].sqrt() + p.eps);
        }
    }
}

kernel! {
    /// [`adam`] for the active weights only (`active[d] != 0`); inactive weights, and their
    /// moments, stay zero (their gradient is masked to zero, so every update leaves them so).
    fn adam_masked(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], active: &[u8], p: AdamStep) {
        let n = w.len();
        let (m, v, g, active) = (&mut m[..n], &mut v[..n], &g[..n], &active[..n]);
        for d in 0..n {
            let gd = if active[d] != 0 { g[d] } else { 0.0 };
            m[d] = p.beta1 * m[d] + (1.0 - p.beta1) * gd;
            v[d] = p.beta2 * v[d] + (1.0 - p.beta2) * gd * gd;
            w[d] -= p.lr_t * m[d] / (v[d].sqrt() + p.eps);
        }
    }
}

/// Adam's constants for weights with their own update counts (see [`adam_counted`]).
#[derive(Clone, Copy, Debug)]
pub struct CountedStep<'a> {
    /// The uncorrected learning rate.
    pub lr: f32,
    /// Bias corrections by update count.
    pub bias: &'a crate::model::BiasCorrection,
    /// Betas and epsilon (`lr_t` is not used).
    pub step: AdamStep,
}

kernel! {
    /// [`adam_masked`] with each weight's bias correction taken from its own update count
    /// `count[d]` (incremented here) instead of the global step. A weight regrown with zero
    /// moments then starts as Adam starts, with steps of about `lr`.
    fn adam_counted(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], active: &[u8], count: &mut [u32], p: CountedStep<'_>) {
        let n = w.len();
        let (m, v, g, active, count) = (&mut m[..n], &mut v[..n], &g[..n], &active[..n], &mut count[..n]);
        let (first, second) = (&p.bias.first, &p.bias.second);
        let last = first.len().min(second.len()) - 1;
        let (b1, b2, eps) = (p.step.beta1, p.step.beta2, p.step.eps);
        for d in 0..n {
            if active[d] == 0 {
                continue;
            }
            let k = (count[d] as usize + 1).min(last);
            count[d] = k as u32;
            m[d] = b1 * m[d] + (1.0 - b1) * g[d];
            v[d] = b2 * v[d] + (1.0 - b2) * g[d] * g[d];
            w[d] -= p.lr * (m[d] * first[k]) / ((v[d] * second[k]).sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..19).map(|k| k as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|k| 1.0 - k as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn masked_adam_leaves_inactive_weights_at_zero() {
        let p = AdamStep {
            lr_t: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut w = [1.0, 0.0, -1.0];
        let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
        adam_masked(&mut w, &mut m, &mut v, &[0.5, 0.5, -0.5], &[1, 0, 1], p);
        assert_eq!(w[1], 0.0);
        assert_eq!((m[1], v[1]), (0.0, 0.0));
        // m = 0.1 * 0.5, v = 0.001 * 0.25: the step is 0.1 * 0.05 / sqrt(0.00025).
        let step = 0.1 * 0.05 / (0.00025f32.sqrt() + 1e-8);
        assert!((w[0] - (1.0 - step)).abs() < 1e-5, "{w:?}");
        assert!((w[2] + (1.0 - step)).abs() < 1e-5, "{w:?}");
        let mut plain = [1.0, 0.0, -1.0];
        let (mut m2, mut v2) = ([0.0; 3], [0.0; 3]);
        adam(&mut plain, &mut m2, &mut v2, &[0.5, 0.0, -0.5], p);
        assert_eq!(plain, w);
    }

    #[test]
    fn counted_adam_corrects_each_weight_by_its_own_count() {
        let bias = crate::model::BiasCorrection::new(0.9, 0.999);
        let p = CountedStep {
            lr: 0.01,
            bias: &bias,
            step: AdamStep {
                lr_t: f32::NAN,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        };
        // Weight 0 is fresh (its first step is lr), weight 1 inactive, weight 2 has 10^6 updates
        // behind it (no correction left).
        let mut w = [0.0, 0.0, 1.0];
        let (mut m, mut v) = ([0.0, 0.0, 0.5], [0.0, 0.0, 0.25]);
        let mut count = [0, 0, 1_000_000];
        adam_counted(
            &mut w,
            &mut m,
            &mut v,
            &[2.0, 3.0, 0.5],
            &[1, 0, 1],
            &mut count,
            p,
        );
        assert!((w[0] + 0.01).abs() < 1e-6, "{w:?}");
        assert_eq!((w[1], count[1]), (0.0, 0));
        assert!((w[2] - (1.0 - 0.01)).abs() < 1e-5, "{w:?}");
        assert_eq!(count[0], 1);
    }
}
