//! The step of the Brendel & Bethge attack for one sample: move the current
//! point x (inside the box [0, 1]) by delta so that the linearised logit
//! margin changes by c (`b . delta = c`), delta within the trust region
//! `||delta||_2 <= r`, and x + delta as close to the original x0 as possible in
//! L2 or Linf. Where the boundary cannot be reached, the largest progress
//! towards it within the trust region. Solved through the Lagrangian: every
//! inner problem is separable per pixel (a clipped linear function of the
//! multipliers), the multipliers are found by bisection. Hand-written: foolbox
//! uses a box-constrained BFGS on the same dual; bisection on the monotone
//! functions is simpler and exact to tolerance.

use crate::eval::attacks::Norm;

/// The box of delta: `lo <= delta <= hi`.
struct Bounds {
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl Bounds {
    /// x + delta within [0, 1].
    fn image(x: &[f64]) -> Self {
        Bounds {
            lo: x.iter().map(|v| -v).collect(),
            hi: x.iter().map(|v| 1.0 - v).collect(),
        }
    }

    /// x + delta within [0, 1] and within `eps` of x0 in Linf.
    fn linf(x0: &[f64], x: &[f64], eps: f64) -> Self {
        Bounds {
            lo: x0
                .iter()
                .zip(x)
                .map(|(a, v)| (a - eps).max(0.0) - v)
                .collect(),
            hi: x0
                .iter()
                .zip(x)
                .map(|(a, v)| (a + eps).min(1.0) - v)
                .collect(),
        }
    }

    /// `clip(s * b * t, lo, hi)`: for t >= 0 the step of most gain along `s b` per length.
    fn along(&self, b: &[f64], s: f64, t: f64) -> Vec<f64> {
        (0..b.len())
            .map(|n| (s * b[n] * t).clamp(self.lo[n], self.hi[n]))
            .collect()
    }

    /// The gain `s b . delta` and the length of `along(b, s, t)`, without building it.
    fn gain_and_length(&self, b: &[f64], s: f64, t: f64) -> (f64, f64) {
        let (mut g, mut l) = (0.0, 0.0);
        for (b, (lo, hi)) in b.iter().zip(self.lo.iter().zip(&self.hi)) {
            let d = (s * b * t).clamp(*lo, *hi);
            g += s * b * d;
            l += d * d;
        }
        (g, l.sqrt())
    }

    /// The scale beyond which `along` no longer changes.
    fn saturation(&self, b: &[f64]) -> f64 {
        (0..b.len())
            .filter(|&n| b[n] != 0.0)
            .map(|n| self.lo[n].abs().max(self.hi[n].abs()) / b[n].abs())
            .fold(0.0, f64::max)
    }

    /// The scale of the most gain along `s b` within length `r` (the length grows with t).
    fn furthest(&self, b: &[f64], s: f64, r: f64) -> f64 {
        let t_max = self.saturation(b);
        root(0.0, t_max, |t| self.gain_and_length(b, s, t).1 - r)
    }

    /// The scale of the shortest `along` step of gain `goal` (the gain grows with t).
    fn reaching(&self, b: &[f64], s: f64, goal: f64) -> f64 {
        root(0.0, self.saturation(b), |t| {
            self.gain_and_length(b, s, t).0 - goal
        })
    }
}

/// A root of the monotone `f` on [a, b], or the end nearer to one where `f` keeps its sign
/// there. The Illinois variant of false position: the functions here are piecewise linear, a
/// few dozen evaluations reach 1e-12 where bisection needs far more.
fn root(mut a: f64, mut b: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (mut fa, mut fb) = (f(a), f(b));
    if fa == 0.0 || fb == 0.0 || (fa > 0.0) == (fb > 0.0) {
        return if fa.abs() <= fb.abs() { a } else { b };
    }
    let tolerance = 1e-12 * fa.abs().max(fb.abs());
    let mut last = 0;
    let mut x = a;
    for _ in 0..200 {
        x = (a * fb - b * fa) / (fb - fa);
        let fx = f(x);
        if fx.abs() <= tolerance || (b - a).abs() <= 1e-15 * (a.abs() + b.abs()) {
            break;
        }
        if (fx > 0.0) == (fb > 0.0) {
            (b, fb) = (x, fx);
            if last == -1 {
                fa *= 0.5;
            }
            last = -1;
        } else {
            (a, fa) = (x, fx);
            if last == 1 {
                fb *= 0.5;
            }
            last = 1;
        }
    }
    x
}

/// The step from `x` for original `x0`, boundary normal `b` and wanted change `c` within
/// trust region `r` (see the module doc).
pub fn step(norm: Norm, x0: &[f64], x: &[f64], b: &[f64], c: f64, r: f64) -> Vec<f64> {
    let s = if c >= 0.0 { 1.0 } else { -1.0 };
    let goal = c.abs();
    let image = Bounds::image(x);
    // Can the boundary be reached at all within the box, and within the trust region?
    let reachable = image.gain_and_length(b, s, image.saturation(b)).0 >= goal
        && image.gain_and_length(b, s, image.reaching(b, s, goal)).1 <= r;
    if !reachable {
        return image.along(b, s, image.furthest(b, s, r));
    }
    match norm {
        Norm::Linf => linf_step(x0, x, b, s, goal, r),
        _ => l2_step(x0, x, b, c, r, &image),
    }
}

/// L2: minimise `||x + delta - x0||^2 + lambda (b . delta - c) + mu (||delta||^2 - r^2)`; for
/// fixed multipliers `delta = clip((x0 - x - lambda b / 2) / (1 + mu))`. For each mu the lambda
/// meeting `b . delta = c` (b . delta falls as lambda grows), then the smallest mu >= 0 whose
/// delta is inside the trust region (the length falls as mu grows).
fn l2_step(x0: &[f64], x: &[f64], b: &[f64], c: f64, r: f64, image: &Bounds) -> Vec<f64> {
    let d: Vec<f64> = x0.iter().zip(x).map(|(a, v)| a - v).collect();
    let pixel = |n: usize, lambda: f64, mu: f64| {
        ((d[n] - 0.5 * lambda * b[n]) / (1.0 + mu)).clamp(image.lo[n], image.hi[n])
    };
    // b . delta and ||delta|| without building delta.
    let dot = |lambda: f64, mu: f64| {
        (0..d.len())
            .map(|n| b[n] * pixel(n, lambda, mu))
            .sum::<f64>()
    };
    let length = |lambda: f64, mu: f64| {
        (0..d.len())
            .map(|n| pixel(n, lambda, mu).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let lambda_at = |mu: f64| -> f64 {
        let mut span = 1.0;
        while (dot(-span, mu) < c || dot(span, mu) > c) && span < 1e30 {
            span *= 2.0;
        }
        root(-span, span, |l| dot(l, mu) - c)
    };
    let delta = |mu: f64| -> Vec<f64> {
        let lambda = lambda_at(mu);
        (0..d.len()).map(|n| pixel(n, lambda, mu)).collect()
    };
    let excess = |mu: f64| length(lambda_at(mu), mu) - r;
    if excess(0.0) <= 0.0 {
        return delta(0.0);
    }
    let mut span = 1.0;
    while excess(span) > 0.0 && span < 1e30 {
        span *= 2.0;
    }
    delta(root(0.0, span, excess))
}

/// Linf: the smallest eps for which the box of x0 +- eps (within [0, 1]) holds a step of gain
/// `goal` within the trust region (the most gain per length there is `Bounds::furthest`), by
/// bisection, then the shortest such step.
fn linf_step(x0: &[f64], x: &[f64], b: &[f64], s: f64, goal: f64, r: f64) -> Vec<f64> {
    let feasible = |eps: f64| {
        let bounds = Bounds::linf(x0, x, eps);
        bounds.gain_and_length(b, s, 0.0).1 <= r
            && bounds.gain_and_length(b, s, bounds.furthest(b, s, r)).0 >= goal
    };
    // Feasible at eps = 1 (the whole box), as the caller checked.
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if feasible(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let bounds = Bounds::linf(x0, x, hi);
    bounds.along(b, s, bounds.reaching(b, s, goal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l2(v: &[f64]) -> f64 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    #[test]
    fn an_unconstrained_l2_step_is_the_projection_onto_the_boundary() {
        // From x on the boundary side, the closest point to x0 with b . delta = c: x0's
        // projection onto the plane b . (y - x) = c.
        let x0 = [0.5, 0.5];
        let x = [0.6, 0.5];
        let b = [1.0, 1.0];
        let c = -0.2; // the plane y1 + y2 = 1.1 - 0.2 = 0.9
        let delta = step(Norm::L2, &x0, &x, &b, c, 10.0);
        let y = [x[0] + delta[0], x[1] + delta[1]];
        assert!(
            (y[0] - 0.45).abs() < 1e-9 && (y[1] - 0.45).abs() < 1e-9,
            "{y:?}"
        );
        // A trust region of 0.1 cannot reach the boundary (0.2 / sqrt 2 = 0.141 away): the
        // largest progress, along -b.
        let delta = step(Norm::L2, &x0, &x, &b, c, 0.1);
        let len = l2(&delta);
        assert!((len - 0.1).abs() < 1e-9 && (delta[0] - delta[1]).abs() < 1e-12);
    }

    #[test]
    fn a_linf_step_reaches_the_boundary_at_the_least_linf_distance() {
        // The plane y1 + 3 y2 = 2.6 (x = (0.5, 0.5) moved by c = 0.6); from x0 = (0.5, 0.5)
        // the least Linf distance to it is 0.6 / (1 + 3) = 0.15: y = (0.65, 0.65).
        let x0 = [0.5, 0.5];
        let b = [1.0, 3.0];
        let delta = step(Norm::Linf, &x0, &x0, &b, 0.6, 10.0);
        for v in &delta {
            assert!((v - 0.15).abs() < 1e-6, "{delta:?}");
        }
        let moved: f64 = b.iter().zip(&delta).map(|(b, d)| b * d).sum();
        assert!((moved - 0.6).abs() < 1e-6);
    }

    #[test]
    fn the_box_limits_the_step() {
        // Reaching y1 + y2 = 1.9 from (0.5, 0.5) in L2 needs (0.95, 0.95); with x0 = (1, 0.5)
        // the nearest point is (1, 0.9), the box stopping the first pixel.
        let delta = step(Norm::L2, &[1.0, 0.5], &[0.5, 0.5], &[1.0, 1.0], 0.9, 10.0);
        assert!(
            (delta[0] - 0.5).abs() < 1e-9 && (delta[1] - 0.4).abs() < 1e-9,
            "{delta:?}"
        );
        // Beyond the box: y1 + y2 = 2.5 cannot be reached; the step goes to the corner.
        let delta = step(Norm::L2, &[0.5, 0.5], &[0.5, 0.5], &[1.0, 1.0], 1.5, 10.0);
        assert_eq!(delta, vec![0.5, 0.5]);
    }
}
