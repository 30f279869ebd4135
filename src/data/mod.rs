//! Reading and writing: scans (Sensorium file tree, folder or zip) and the synthetic scan generator.

pub mod downsample;
pub mod npy;
pub mod photos;
pub mod scan;
pub mod scan_read;
pub mod scan_write;
pub mod source;
pub mod synth;

pub use scan::{Scan, Tier};
pub use scan_read::{load_scan, LoadOptions};
pub use scan_write::write_scan;
