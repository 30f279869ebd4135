//! Lp balls for the attacks: projection of per-sample perturbations onto a
//! ball of per-sample radius, normalisation of gradients, and the largest
//! perturbation [0, 1] images allow. L0 and L1 are hand-written on the host
//! (a sort per row; candle has no per-row sort or top-k).

use candle_core::{Tensor, D};

use crate::error::Result;
use crate::eval::attacks::{norms, per_sample, Norm};

/// Each row of `t` (B, ...) divided by its L2 norm (rows of zeros stay zero).
pub fn l2_normalised(t: &Tensor) -> Result<Tensor> {
    let b = t.dim(0)?;
    let n = t
        .flatten_from(1)?
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?
        .reshape((b, 1, 1, 1))?;
    Ok(t.broadcast_div(&n)?)
}

/// Projects each row of `delta` (B, ...) onto the `norm` ball of radius `eps[i]` (Euclidean
/// projection; for L0 the `eps[i]` largest entries are kept).
pub fn project(delta: &Tensor, eps: &[f32], norm: Norm) -> Result<Tensor> {
    let eps_t = per_sample(eps, delta)?;
    Ok(match norm {
        Norm::Linf => delta
            .broadcast_minimum(&eps_t)?
            .broadcast_maximum(&eps_t.neg()?)?,
        Norm::L2 => {
            let n = per_sample(&norms(delta, Norm::L2)?, delta)?;
            let factor = eps_t
                .broadcast_div(&n.clamp(1e-12f32, f32::MAX)?)?
                .clamp(0f32, 1f32)?;
            delta.broadcast_mul(&factor)?
        }
        Norm::L1 | Norm::L0 => {
            let rows = delta.flatten_from(1)?.to_vec2::<f32>()?;
            let projected: Vec<f32> = rows
                .into_iter()
                .zip(eps)
                .flat_map(|(mut row, &e)| {
                    if norm == Norm::L1 {
                        project_l1(&mut row, e);
                    } else {
                        keep_largest(&mut row, e.max(0.0).floor() as usize);
                    }
                    row
                })
                .collect();
            Tensor::from_vec(projected, delta.shape(), delta.device())?
        }
    })
}

/// Euclidean projection of `v` onto the L1 ball of radius `eps` (Duchi et al. 2008): soft
/// thresholding at the `theta` that brings the L1 norm down to `eps`.
fn project_l1(v: &mut [f32], eps: f32) {
    let l1: f32 = v.iter().map(|x| x.abs()).sum();
    if l1 <= eps {
        return;
    }
    if eps <= 0.0 {
        v.fill(0.0);
        return;
    }
    let mut mu: Vec<f32> = v.iter().map(|x| x.abs()).collect();
    mu.sort_by(|a, b| b.total_cmp(a));
    let (mut cumsum, mut theta) = (0.0f32, 0.0f32);
    for (j, &m) in mu.iter().enumerate() {
        cumsum += m;
        let t = (cumsum - eps) / (j + 1) as f32;
        if m > t {
            theta = t;
        } else {
            break;
        }
    }
    for x in v.iter_mut() {
        *x = x.signum() * (x.abs() - theta).max(0.0);
    }
}

/// Zeroes all but the `k` entries of largest magnitude.
fn keep_largest(v: &mut [f32], k: usize) {
    if k >= v.len() {
        return;
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()));
    for &i in &order[k..] {
        v[i] = 0.0;
    }
}

/// The largest distance an image on [0, 1] can be moved in `norm`: the norm of
/// `max(x, 1 - x)` (for L0: the number of pixels).
pub fn worst_norm(images: &Tensor, norm: Norm) -> Result<Vec<f32>> {
    let far = images.maximum(&(1.0 - images)?)?;
    if norm == Norm::L0 {
        let pixels = images.elem_count() / images.dim(0)?.max(1);
        return Ok(vec![pixels as f32; images.dim(0)?]);
    }
    norms(&far, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.flatten_from(1).unwrap().to_vec2::<f32>().unwrap()
    }

    #[test]
    fn projections_by_hand() {
        let d = Tensor::new(
            &[[3.0f32, -1.0, 0.5, 0.0], [0.1, 0.1, -0.1, 0.0]],
            &Device::Cpu,
        )
        .unwrap()
        .reshape((2, 1, 1, 4))
        .unwrap();
        // L1 radius 2: theta = 1 gives |2| + |0| + ... = 2 for the first row; the second row is inside.
        let p = rows(&project(&d, &[2.0, 2.0], Norm::L1).unwrap());
        assert_eq!(p[0], vec![2.0, 0.0, 0.0, 0.0]);
        assert_eq!(p[1], vec![0.1, 0.1, -0.1, 0.0]);
        // L1 radius 3.5: theta = (3 + 1 + 0.5 - 3.5) / 3 = 1/3 over the three largest.
        let p = rows(&project(&d, &[3.5, 0.2], Norm::L1).unwrap());
        let third = 1.0 / 3.0;
        for (got, want) in p[0]
            .iter()
            .zip([3.0 - third, third - 1.0, 0.5 - third, 0.0])
        {
            assert!((got - want).abs() < 1e-6, "{:?}", p[0]);
        }
        let s: f32 = p[1].iter().map(|x| x.abs()).sum();
        assert!((s - 0.2).abs() < 1e-6, "{s}");
        // L0: keep the largest entries.
        let p = rows(&project(&d, &[2.0, 0.0], Norm::L0).unwrap());
        assert_eq!(p[0], vec![3.0, -1.0, 0.0, 0.0]);
        assert_eq!(p[1], vec![0.0; 4]);
        // L2 radius 1 scales the first row to unit length; Linf clips.
        let p = rows(&project(&d, &[1.0, 1.0], Norm::L2).unwrap());
        let n: f32 = p[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-6 && (p[0][0] / p[0][1] + 3.0).abs() < 1e-5);
        let p = rows(&project(&d, &[0.5, 0.05], Norm::Linf).unwrap());
        assert_eq!(p[0], vec![0.5, -0.5, 0.5, 0.0]);
        assert_eq!(p[1], vec![0.05, 0.05, -0.05, 0.0]);
    }

    #[test]
    fn worst_norms_of_an_image() {
        let x = Tensor::new(&[0.0f32, 0.25, 1.0, 0.5], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 2))
            .unwrap();
        // max(x, 1 - x) = (1, 0.75, 1, 0.5)
        assert_eq!(worst_norm(&x, Norm::Linf).unwrap(), vec![1.0]);
        assert_eq!(worst_norm(&x, Norm::L1).unwrap(), vec![3.25]);
        assert_eq!(worst_norm(&x, Norm::L0).unwrap(), vec![4.0]);
        let l2 = worst_norm(&x, Norm::L2).unwrap()[0];
        assert!((l2 - (1.0f32 + 0.5625 + 1.0 + 0.25).sqrt()).abs() < 1e-6);
    }
}
