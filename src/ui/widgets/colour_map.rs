//! The diverging colour map of every similarity matrix: blue (negative),
//! light gray (0), red (positive), after Moreland's "cool to warm".

use eframe::egui::{Color32, ColorImage};

use crate::similarity::SimilarityMatrix;

const STOPS: [(f32, [f32; 3]); 5] = [
    (-1.0, [59.0, 76.0, 192.0]),
    (-0.5, [141.0, 176.0, 254.0]),
    (0.0, [221.0, 221.0, 221.0]),
    (0.5, [244.0, 154.0, 123.0]),
    (1.0, [180.0, 4.0, 38.0]),
];

/// The colour of `value` on a scale from `-vmax` to `vmax` (clamped).
pub fn diverging(value: f32, vmax: f32) -> Color32 {
    let t = if vmax > 0.0 {
        (value / vmax).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let t = if t.is_nan() { 0.0 } else { t };
    let k = STOPS
        .windows(2)
        .position(|w| t <= w[1].0)
        .unwrap_or(STOPS.len() - 2);
    let ((t0, c0), (t1, c1)) = (STOPS[k], STOPS[k + 1]);
    let f = (t - t0) / (t1 - t0);
    let mix = |i: usize| (c0[i] + f * (c1[i] - c0[i])).round() as u8;
    Color32::from_rgb(mix(0), mix(1), mix(2))
}

/// The matrix as an image, one pixel per cell, rows top to bottom.
pub fn matrix_image(m: &SimilarityMatrix, vmax: f32) -> ColorImage {
    ColorImage::new(
        [m.n, m.n],
        m.values.iter().map(|&v| diverging(v, vmax)).collect(),
    )
}

/// The matrix as an image of at most `most` pixels a side: each pixel the mean of a block of
/// cells (one cell per pixel when the matrix is no larger). A 5000 x 5000 target shown in 300
/// points needs no 25-million-pixel texture.
pub fn matrix_picture(m: &SimilarityMatrix, vmax: f32, most: usize) -> ColorImage {
    let block = m.n.div_ceil(most.max(1)).max(1);
    if block == 1 {
        return matrix_image(m, vmax);
    }
    let side = m.n.div_ceil(block);
    let mut sums = vec![(0.0f32, 0u32); side * side];
    for r in 0..m.n {
        let row = &mut sums[(r / block) * side..][..side];
        for (c, &v) in m.values[r * m.n..][..m.n].iter().enumerate() {
            let s = &mut row[c / block];
            s.0 += v;
            s.1 += 1;
        }
    }
    ColorImage::new(
        [side, side],
        sums.iter()
            .map(|&(s, k)| diverging(s / k as f32, vmax))
            .collect(),
    )
}

/// The symmetric colour range covering every entry of `matrices`.
pub fn shared_range<'a>(matrices: impl IntoIterator<Item = &'a SimilarityMatrix>) -> f32 {
    matrices
        .into_iter()
        .flat_map(|m| m.values.iter())
        .fold(0.0f32, |a, &v| a.max(v.abs()))
        .max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_middle() {
        assert_eq!(diverging(0.0, 1.0), Color32::from_rgb(221, 221, 221));
        assert_eq!(diverging(-1.0, 1.0), Color32::from_rgb(59, 76, 192));
        assert_eq!(diverging(5.0, 1.0), Color32::from_rgb(180, 4, 38));
        assert_eq!(diverging(0.25, 0.5), Color32::from_rgb(244, 154, 123));
    }

    #[test]
    fn a_large_matrix_is_pictured_by_block_means() {
        // 5 x 5 in blocks of 3 (at most 2 pixels a side): blocks of 3 x 3, 3 x 2, 2 x 3, 2 x 2.
        let m = SimilarityMatrix {
            n: 5,
            values: (0..25)
                .map(|k| if k % 5 < 3 { 1.0 } else { -1.0 })
                .collect(),
        };
        let p = matrix_picture(&m, 1.0, 2);
        assert_eq!(p.size, [2, 2]);
        let (red, blue) = (diverging(1.0, 1.0), diverging(-1.0, 1.0));
        assert_eq!(p.pixels, vec![red, blue, red, blue]);
        assert_eq!(
            matrix_picture(&m, 1.0, 5).pixels,
            matrix_image(&m, 1.0).pixels
        );
    }
}
