//! Reading and writing: scans (Sensorium file tree, folder or zip; NWB 2 files), classification
//! sets (CIFAR binary, IDX, image folders) and the synthetic scan generator.

pub mod augment;
pub mod cifar;
pub mod classification;
pub mod classification_read;
pub mod downsample;
pub mod idx;
pub mod image_file;
pub mod image_folder;
pub mod npy;
pub mod nwb;
pub mod photos;
pub mod scan;
pub mod scan_read;
pub mod scan_write;
pub mod source;
pub mod stimuli;
pub mod synth;

pub use classification::{ClassificationSet, LabelledImages};
pub use classification_read::load_classification_set;
pub use scan::{Scan, Tier};
pub use scan_read::{load_scan, load_stimuli, LoadOptions};
pub use scan_write::write_scan;
pub use stimuli::{Shown, Stimuli};
