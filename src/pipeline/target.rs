//! Building a regularisation target (docs/method.md sections 5-6): Neural (model) from predictors, or Neural (data)
//! from their scans' responses, on a chosen image set; saved as `.npy` with its JSON sidecar.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::data::image_file::is_image_folder;
use crate::data::{load_scan, LoadOptions, Scan};
use crate::error::{Error, Result};
use crate::pipeline::predictors::{open_predictors, ScanSource};
use crate::progress::Progress;
use crate::similarity::ordering::spectral_order;
use crate::similarity::pixels::{pixel_baseline, PixelBaseline, RESAMPLES};
use crate::similarity::target::{
    common_single_images, data_target, folder_images, model_target, save_target,
    single_shown_images, ImageSet, Target, Weighting,
};

/// The images a target's rows are.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetImages {
    /// The single-shown images the predictors' scans share (the paper's choice).
    Common,
    /// The single-shown images of the scan at this path.
    Scan(PathBuf),
    /// The PNG and JPEG files of a folder, resized to the scans' image size.
    Folder(PathBuf),
}

impl TargetImages {
    /// `--images PATH` read on [`is_image_folder`]'s rule; no path: [`TargetImages::Common`].
    pub fn from_path(path: Option<&Path>) -> Self {
        match path {
            Some(p) if is_image_folder(p) => TargetImages::Folder(p.to_path_buf()),
            Some(p) => TargetImages::Scan(p.to_path_buf()),
            None => TargetImages::Common,
        }
    }
}

/// What target to build and where to save it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRequest {
    /// Predictor folders.
    pub predictors: Vec<PathBuf>,
    /// The images.
    pub images: TargetImages,
    /// Neuron weights of Eq. 6.
    pub weighting: Weighting,
    /// Neural (data) (Eq. 2 on single trials) instead of Neural (model).
    pub data: bool,
    /// The `.npy` to write (its sidecar goes beside it).
    pub out: PathBuf,
}

/// A saved target with its display order.
pub struct BuiltTarget {
    /// The target.
    pub target: Target,
    /// Spectral order of its rows.
    pub order: Vec<usize>,
    /// Where it was saved.
    pub path: PathBuf,
    /// Its agreement with the pixel similarity of its images.
    pub pixel_baseline: PixelBaseline,
}

/// Builds, saves and orders the target of `request`, its predictors' scans taken from `scans`.
pub fn build_target(
    request: &TargetRequest,
    scans: ScanSource,
    device: &Device,
    progress: &dyn Progress,
) -> Result<BuiltTarget> {
    let paired = open_predictors(&request.predictors, scans, device, progress)?;
    let refs: Vec<&Scan> = paired.iter().map(|p| p.scan.as_ref()).collect();
    let options = scans.read.cloned().unwrap_or_default();
    let images = image_set(&request.images, &refs, request.data, options, progress)?;
    let target = if request.data {
        data_target(&refs, &images.ids, device)?
    } else {
        let predictors: Vec<_> = paired.into_iter().map(|p| p.predictor).collect();
        model_target(&predictors, &images, request.weighting, device, progress)?
    };
    if let Some(parent) = request.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    save_target(&request.out, &target)?;
    let pixels: Vec<&[f32]> = images.pixels.iter().map(Vec::as_slice).collect();
    let pixel_baseline =
        pixel_baseline(&target.matrix, &pixels, images.shape, RESAMPLES, 0, device)?;
    Ok(BuiltTarget {
        order: spectral_order(&target.matrix),
        target,
        path: request.out.clone(),
        pixel_baseline,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The image set `images` names, for targets over `scans`.
fn image_set(
    images: &TargetImages,
    scans: &[&Scan],
    data: bool,
    options: LoadOptions,
    progress: &dyn Progress,
) -> Result<ImageSet> {
    match images {
        TargetImages::Common => common_single_images(scans),
        // A predictor's own scan is loaded already (at paper size a load is seconds).
        TargetImages::Scan(path)
            if let Some(scan) = scans.iter().find(|s| same_file(&s.source, path)) =>
        {
            Ok(single_shown_images(scan))
        }
        TargetImages::Scan(path) => {
            let scan = load_scan(path, options, progress).map_err(|e| match path.is_dir() {
                // A folder that is not a scan may have been meant as a folder of images.
                true => Error::file(
                    path.display(),
                    format!("is neither a scan nor a folder of PNG or JPEG images ({e})"),
                ),
                false => e,
            })?;
            Ok(single_shown_images(&scan))
        }
        TargetImages::Folder(path) if data => Err(Error::Config(format!(
            "the Neural (data) target needs images the scans showed, not {}",
            path.display()
        ))),
        TargetImages::Folder(path) => {
            let first = scans
                .first()
                .ok_or_else(|| Error::Config("a target needs at least one predictor".into()))?;
            folder_images(path, first.image_shape)
        }
    }
}
