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
}
