//! Fitted predictors opened with the scans they were fitted to, on one rule for both the window
//! (which has scans loaded) and the command line (which reads them from where the fit found them).

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Device;

use crate::data::{load_scan, load_stimuli, LoadOptions, Scan, Stimuli};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::runs::predictor::{load_predictor, LoadedPredictor};

/// The scan of `loaded` a predictor was fitted to: its scan's name and neurons, passing
/// [`LoadedPredictor::check_scan`].
fn loaded_scan<'a>(predictor: &LoadedPredictor, loaded: &'a [Arc<Scan>]) -> Option<&'a Arc<Scan>> {
    let meta = &predictor.meta;
    loaded.iter().find(|s| {
        s.name == meta.scan && s.unit_ids == meta.unit_ids && predictor.check_scan(s).is_ok()
    })
}

/// The error for a predictor whose scan is not loaded where nothing may be read.
fn not_loaded(predictor: &LoadedPredictor) -> Error {
    let meta = &predictor.meta;
    Error::file(
        predictor.dir.display(),
        format!(
            "was fitted to {} ({}), which is not loaded (a scan of that name with other responses \
             is another recording); load it first",
            meta.scan,
            meta.scan_path.display()
        ),
    )
}

/// What each predictor's scan showed, found as [`open_predictors`] finds the scan, except that
/// a scan read from its recorded path is read without its responses ([`load_stimuli`]; a Neural
/// (model) target needs only its images), so it is not compared with the fit's.
pub fn predictors_stimuli(
    predictors: &[LoadedPredictor],
    scans: ScanSource,
    progress: &dyn Progress,
) -> Result<Vec<Stimuli>> {
    predictors
        .iter()
        .map(|p| match (loaded_scan(p, scans.loaded), scans.read) {
            (Some(scan), _) => Ok(Stimuli::of(scan)),
            (None, Some(options)) => load_stimuli(&p.meta.scan_path, options.clone(), progress),
            (None, None) => Err(not_loaded(p)),
        })
        .collect()
}

/// A predictor and its scan.
pub struct Paired {
    /// The predictor (best weights).
    pub predictor: LoadedPredictor,
    /// The recording it was fitted to.
    pub scan: Arc<Scan>,
}

/// Where the scans of the predictors come from.
#[derive(Clone, Copy)]
pub struct ScanSource<'a> {
    /// Scans already open.
    pub loaded: &'a [Arc<Scan>],
    /// Read a predictor's scan from its `meta.json` path when none of `loaded` is it (with these
    /// options); `None`: such a predictor is an error asking to load its scan.
    pub read: Option<&'a LoadOptions>,
}

/// The predictors in `dirs`, each with its scan: a scan of `scans.loaded` with the predictor's scan
/// name and neurons that passes [`LoadedPredictor::check_scan`], else the scan read from the path
/// its fit recorded (checked the same way), where `scans.read` allows.
pub fn open_predictors(
    dirs: &[PathBuf],
    scans: ScanSource,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Vec<Paired>> {
    let mut paired = Vec::with_capacity(dirs.len());
    for dir in dirs {
        progress.check()?;
        let predictor = load_predictor(dir, device)?;
        let scan = match (loaded_scan(&predictor, scans.loaded), scans.read) {
            (Some(scan), _) => scan.clone(),
            (None, Some(options)) => {
                let scan = load_scan(&predictor.meta.scan_path, options.clone(), progress)?;
                predictor.check_scan(&scan)?;
                Arc::new(scan)
            }
            (None, None) => return Err(not_loaded(&predictor)),
        };
        paired.push(Paired { predictor, scan });
    }
    Ok(paired)
}
