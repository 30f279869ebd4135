//! What a scan showed, apart from what it recorded: each trial's image id and the images. A
//! Neural (model) target needs no more of a scan (see `scan_read::load_stimuli`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::scan::Scan;

/// Distinct images by id, each H x W row-major.
pub type ImagesById = BTreeMap<i64, Vec<f32>>;

/// The images a recording showed, trial by trial.
pub trait Shown {
    /// The recording's name.
    fn name(&self) -> &str;
    /// Where it was read from.
    fn source(&self) -> &Path;
    /// Per trial: the id of the image shown.
    fn image_ids(&self) -> &[i64];
    /// Image height and width in pixels.
    fn image_shape(&self) -> (usize, usize);
    /// The distinct images by id, each H x W row-major.
    fn images(&self) -> &ImagesById;
}

/// A scan's stimuli read without its responses.
#[derive(Debug, Clone, PartialEq)]
pub struct Stimuli {
    /// The scan's name.
    pub name: String,
    /// Where it was read from.
    pub source: PathBuf,
    /// Per trial: the id of the image shown.
    pub image_ids: Vec<i64>,
    /// Image height and width in pixels.
    pub image_shape: (usize, usize),
    /// The distinct images by id.
    pub images: ImagesById,
}

impl Stimuli {
    /// The stimuli of a scan read whole.
    pub fn of(scan: &Scan) -> Self {
        Stimuli {
            name: scan.name.clone(),
            source: scan.source.clone(),
            image_ids: scan.image_ids.clone(),
            image_shape: scan.image_shape,
            images: scan.images.clone(),
        }
    }
}

/// [`Shown`] read from fields of the same names (a scan's and its stimuli's).
macro_rules! shown_by_fields {
    ($($t:ty),*) => {$(
        impl Shown for $t {
            fn name(&self) -> &str {
                &self.name
            }
            fn source(&self) -> &Path {
                &self.source
            }
            fn image_ids(&self) -> &[i64] {
                &self.image_ids
            }
            fn image_shape(&self) -> (usize, usize) {
                self.image_shape
            }
            fn images(&self) -> &ImagesById {
                &self.images
            }
        }
    )*};
}

shown_by_fields!(Scan, Stimuli);
