//! Exports from the window: matrices to .npy and PNG, histograms to CSV,
//! figures to PNG (cropped from a screenshot of the window).

use std::path::{Path, PathBuf};

use eframe::egui;

use super::shared::Shared;
use super::widgets::colour_map::matrix_image;
use crate::atomic::write_atomic;
use crate::data::npy::encode;
use crate::similarity::SimilarityMatrix;

/// A file name made safe from a label.
fn file_name(label: &str, extension: &str) -> String {
    let stem: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.{extension}")
}

fn report(shared: &mut Shared, result: crate::Result<PathBuf>) {
    match result {
        Ok(path) => shared.notices.push(format!("Saved {}", path.display())),
        Err(e) => shared.errors.push(e.to_string()),
    }
}

/// Writes `matrix` as `<label>.npy` into the export folder.
pub fn matrix_npy(shared: &mut Shared, label: &str, matrix: &SimilarityMatrix) {
    let path = shared.export_dir.join(file_name(label, "npy"));
    let result = write_atomic(&path, &encode(&[matrix.n, matrix.n], &matrix.values)).map(|_| path);
    report(shared, result);
}

/// Writes `matrix` as a PNG in the window's colour map, each cell a square of pixels.
pub fn matrix_png(shared: &mut Shared, label: &str, matrix: &SimilarityMatrix, vmax: f32) {
    let path = shared.export_dir.join(file_name(label, "png"));
    let result = write_png(
        &path,
        &upscale(&matrix_image(matrix, vmax), (512 / matrix.n.max(1)).max(1)),
    )
    .map(|_| path);
    report(shared, result);
}

/// Writes `text` as `<label>.csv` into the export folder.
pub fn csv(shared: &mut Shared, label: &str, text: &str) {
    let path = shared.export_dir.join(file_name(label, "csv"));
    let result = write_atomic(&path, text.as_bytes()).map(|_| path);
    report(shared, result);
}

/// Saves the part `rect` of the window as `<label>.png`, once the next frame is rendered.
pub fn figure_png(shared: &mut Shared, ctx: &egui::Context, label: &str, rect: egui::Rect) {
    let path = shared.export_dir.join(file_name(label, "png"));
    let ppp = ctx.pixels_per_point();
    let (repaint, later) = (ctx.clone(), shared.later.clone());
    ctx.request_screenshot(move |image| {
        let crop = image.region(&rect, Some(ppp));
        let message = match write_png(&path, &crop) {
            Ok(()) => format!("Saved {}", path.display()),
            Err(e) => format!("Could not save the figure: {e}"),
        };
        if let Ok(mut m) = later.lock() {
            m.push(message);
        }
        repaint.request_repaint();
    });
}

fn upscale(img: &egui::ColorImage, k: usize) -> egui::ColorImage {
    let [w, h] = img.size;
    let pixels = (0..h * k)
        .flat_map(|y| (0..w * k).map(move |x| (y / k) * w + x / k))
        .map(|i| img.pixels[i])
        .collect();
    egui::ColorImage::new([w * k, h * k], pixels)
}

fn write_png(path: &Path, img: &egui::ColorImage) -> crate::Result<()> {
    let [w, h] = img.size;
    let rgba: Vec<u8> = img
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let mut bytes = Vec::new();
    image::RgbaImage::from_raw(w as u32, h as u32, rgba)
        .ok_or_else(|| crate::Error::file(path.display(), "image size does not match its pixels"))?
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| crate::Error::file(path.display(), format!("cannot encode PNG: {e}")))?;
    write_atomic(path, &bytes)
}
