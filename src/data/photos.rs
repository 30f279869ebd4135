//! The copyright-free photographs embedded in the binary (`assets/photos`),
//! from which the synthetic scans cut their stimuli.

use crate::error::{Error, Result};

/// A grayscale photograph, luminance in 0..=255.
pub struct Photo {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Row-major luminance.
    pub pixels: Vec<f32>,
}

impl Photo {
    /// Bilinear sample at (y, x) in pixel units, clamped to the border.
    pub fn sample(&self, y: f32, x: f32) -> f32 {
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let (y0, x0) = (y.floor() as usize, x.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(self.height - 1), (x0 + 1).min(self.width - 1));
        let (fy, fx) = (y - y0 as f32, x - x0 as f32);
        let p = |yy: usize, xx: usize| self.pixels[yy * self.width + xx];
        let top = p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx;
        let bottom = p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// The embedded photographs: (file name, encoded bytes).
const EMBEDDED: [(&str, &[u8]); 8] = [
    (
        "camera.png",
        include_bytes!("../../assets/photos/camera.png"),
    ),
    ("brick.png", include_bytes!("../../assets/photos/brick.png")),
    (
        "chelsea.png",
        include_bytes!("../../assets/photos/chelsea.png"),
    ),
    (
        "clock_motion.png",
        include_bytes!("../../assets/photos/clock_motion.png"),
    ),
    ("grass.png", include_bytes!("../../assets/photos/grass.png")),
    (
        "gravel.png",
        include_bytes!("../../assets/photos/gravel.png"),
    ),
    (
        "rocket.jpg",
        include_bytes!("../../assets/photos/rocket.jpg"),
    ),
    (
        "coffee.png",
        include_bytes!("../../assets/photos/coffee.png"),
    ),
];

/// Decodes the embedded photographs to grayscale (luminance, ITU-R 601 weights).
pub fn photos() -> Result<Vec<Photo>> {
    EMBEDDED
        .iter()
        .map(|(name, bytes)| {
            let img = image::load_from_memory(bytes)
                .map_err(|e| Error::file(format!("assets/photos/{name}"), e.to_string()))?
                .to_luma8();
            Ok(Photo {
                height: img.height() as usize,
                width: img.width() as usize,
                pixels: img.into_raw().into_iter().map(f32::from).collect(),
            })
        })
        .collect()
}
