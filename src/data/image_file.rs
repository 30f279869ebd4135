//! PNG and JPEG files as grayscale pixel arrays.

use std::path::{Path, PathBuf};

use crate::data::classification::luminance;
use crate::error::{Error, Result};

/// The PNG and JPEG files directly in `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Whether `path` is a folder of images (PNG or JPEG files directly in it) rather than a scan:
/// the one rule wherever a path may be either.
pub fn is_image_folder(path: &Path) -> bool {
    path.is_dir() && image_files(path).is_ok_and(|files| !files.is_empty())
}

/// Reads `path` as luminance on [0, 255] (BT.601, as the classification sets),
/// resized to `shape` (height, width) when given; returns its shape and pixels.
pub fn read_gray(path: &Path, shape: Option<(usize, usize)>) -> Result<((usize, usize), Vec<f32>)> {
    let mut img = image::open(path)
        .map_err(|e| Error::file(path.display(), format!("not a readable image: {e}")))?
        .to_rgb8();
    if let Some((h, w)) = shape {
        if (img.height() as usize, img.width() as usize) != (h, w) {
            img = image::imageops::resize(
                &img,
                w as u32,
                h as u32,
                image::imageops::FilterType::Triangle,
            );
        }
    }
    let pixels = img
        .pixels()
        .map(|p| luminance(p.0[0] as f32, p.0[1] as f32, p.0[2] as f32))
        .collect();
    Ok(((img.height() as usize, img.width() as usize), pixels))
}
