//! Building a regularisation target (docs/method.md sections 5-6): Neural (model) from predictors, or Neural (data)
//! from their scans' responses, on a chosen image set; saved as `.npy` with its JSON sidecar.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::data::image_file::is_image_folder;
use crate::data::{load_stimuli, LoadOptions, Scan, Shown};
use crate::error::{Error, Result};
use crate::pipeline::predictors::{open_predictors, predictors_stimuli, ScanSource};
use crate::progress::Progress;
use crate::runs::predictor::load_predictor;
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
    if request.predictors.is_empty() {
        return Err(Error::Config(
            "a target needs at least one predictor".into(),
        ));
    }
    let options = scans.read.cloned().unwrap_or_default();
    let (target, images) = if request.data {
        let paired = open_predictors(&request.predictors, scans, device, progress)?;
        let refs: Vec<&Scan> = paired.iter().map(|p| p.scan.as_ref()).collect();
        let shown: Vec<&dyn Shown> = refs.iter().map(|&s| s as &dyn Shown).collect();
        let images = image_set(
            &request.images,
            &shown,
            refs[0].image_shape,
            true,
            options,
            progress,
        )?;
        (data_target(&refs, &images.ids, device)?, images)
    } else {
        // Of the scans, a model target needs only the images: a paper-size scan's responses
        // would be most of its time.
        let predictors = request
            .predictors
            .iter()
            .map(|dir| load_predictor(dir, device))
            .collect::<Result<Vec<_>>>()?;
        let shape = (
            predictors[0].meta.shape.height,
            predictors[0].meta.shape.width,
        );
        let images = match request.images {
            TargetImages::Common => {
                let stimuli = predictors_stimuli(&predictors, scans, progress)?;
                common_single_images(&stimuli.iter().collect::<Vec<_>>())?
            }
            _ => {
                let loaded: Vec<&dyn Shown> = scans
                    .loaded
                    .iter()
                    .map(|s| s.as_ref() as &dyn Shown)
                    .collect();
                image_set(&request.images, &loaded, shape, false, options, progress)?
            }
        };
        let target = model_target(&predictors, &images, request.weighting, device, progress)?;
        (target, images)
    };
    if let Some(parent) = request.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    // The file is written while the pixel baseline and the order are computed.
    let (saved, pixel_baseline, order) = std::thread::scope(|s| {
        let saved = s.spawn(|| save_target(&request.out, &target));
        let pixels: Vec<&[f32]> = images.pixels.iter().map(Vec::as_slice).collect();
        let baseline = pixel_baseline(&target.matrix, &pixels, images.shape, RESAMPLES, 0, device);
        let order = spectral_order(&target.matrix);
        (saved.join(), baseline, order)
    });
    saved.map_err(|_| Error::Config(format!("saving {} failed", request.out.display())))??;
    Ok(BuiltTarget {
        order,
        target,
        path: request.out.clone(),
        pixel_baseline: pixel_baseline?,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The image set `images` names, for targets over `scans` (of images of `shape`); a scan not
/// among them is read for its images only.
fn image_set(
    images: &TargetImages,
    scans: &[&dyn Shown],
    shape: (usize, usize),
    data: bool,
    options: LoadOptions,
    progress: &dyn Progress,
) -> Result<ImageSet> {
    match images {
        TargetImages::Common => common_single_images(scans),
        // A scan open already is not read again (at paper size a read is seconds).
        TargetImages::Scan(path)
            if let Some(scan) = scans.iter().find(|s| same_file(s.source(), path)) =>
        {
            Ok(single_shown_images(*scan))
        }
        TargetImages::Scan(path) => {
            let scan = load_stimuli(path, options, progress).map_err(|e| match path.is_dir() {
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
        TargetImages::Folder(path) => folder_images(path, shape),
    }
}
