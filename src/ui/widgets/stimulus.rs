//! Stimulus images as textures with nearest-neighbour magnification.

use std::collections::HashMap;

use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};

/// Grayscale pixels to an image: values in 0..=255 are shown as they are,
/// other ranges are stretched from their minimum to their maximum.
pub fn gray_image(pixels: &[f32], (h, w): (usize, usize)) -> ColorImage {
    let (lo, hi) = pixels
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo >= 0.0 && hi <= 255.0 {
        (0.0, 255.0)
    } else {
        (lo, hi.max(lo + 1e-6))
    };
    ColorImage::new(
        [w, h],
        pixels
            .iter()
            .map(|&v| Color32::from_gray(((v - lo) / (hi - lo) * 255.0).round() as u8))
            .collect(),
    )
}

/// Textures of stimuli by image id, made on first use.
#[derive(Default)]
pub struct StimulusTextures {
    cache: HashMap<i64, TextureHandle>,
}

impl StimulusTextures {
    /// Forgets every texture (when the loaded scans change).
    pub fn clear(&mut self) {
        self.cache.clear();
    }

    /// The texture of image `id`, made from `pixels` the first time.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        id: i64,
        pixels: &[f32],
        shape: (usize, usize),
    ) -> TextureHandle {
        self.cache
            .entry(id)
            .or_insert_with(|| {
                ctx.load_texture(
                    format!("stimulus-{id}"),
                    gray_image(pixels, shape),
                    TextureOptions::NEAREST,
                )
            })
            .clone()
    }
}
