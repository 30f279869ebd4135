//! Writing a scan in the Sensorium file tree (folder or zip), the format it is read from.

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::npy::{encode, encode_strings};
use crate::data::scan::Scan;
use crate::data::source::write_tree;
use crate::error::Result;

/// The files of `scan` in the Sensorium layout: relative path -> `.npy` bytes.
///
/// Images are written as uint8 when every pixel is a whole number in 0..=255,
/// as float32 otherwise.
pub fn scan_files(scan: &Scan) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let (h, w) = scan.image_shape;
    for (t, id) in scan.image_ids.iter().enumerate() {
        let img = &scan.images[id];
        let as_u8 = img
            .iter()
            .all(|&v| v.fract() == 0.0 && (0.0..=255.0).contains(&v));
        let bytes = if as_u8 {
            encode(
                &[1, h, w],
                &img.iter().map(|&v| v as u8).collect::<Vec<_>>(),
            )
        } else {
            encode(&[1, h, w], img)
        };
        files.insert(format!("data/images/{t}.npy"), bytes);
        files.insert(
            format!("data/responses/{t}.npy"),
            encode(&[scan.n_neurons()], scan.response(t)),
        );
        if let Some(b) = &scan.behavior {
            files.insert(format!("data/behavior/{t}.npy"), encode(&[3], &b[t]));
        }
        if let Some(p) = &scan.pupil_center {
            files.insert(format!("data/pupil_center/{t}.npy"), encode(&[2], &p[t]));
        }
    }
    let t_count = scan.n_trials();
    let n = scan.n_neurons();
    files.insert(
        "meta/trials/frame_image_id.npy".into(),
        encode(&[t_count], &scan.image_ids),
    );
    let tiers: Vec<String> = scan.tiers.iter().map(|t| t.name().to_string()).collect();
    files.insert(
        "meta/trials/tiers.npy".into(),
        encode_strings(&[t_count], &tiers),
    );
    files.insert(
        "meta/neurons/unit_ids.npy".into(),
        encode(&[n], &scan.unit_ids),
    );
    if let Some(c) = &scan.neurons.cell_motor_coordinates {
        files.insert(
            "meta/neurons/cell_motor_coordinates.npy".into(),
            encode(&[n, 3], &c.concat()),
        );
    }
    if let Some(a) = &scan.neurons.area {
        files.insert("meta/neurons/area.npy".into(), encode_strings(&[n], a));
    }
    if let Some(g) = &scan.ground_truth {
        files.insert(
            "meta/ground_truth/responses.npy".into(),
            encode(&[t_count, n], g),
        );
    }
    files
}

/// Writes `scan` to a folder, or to a zip when `path` ends in `.zip`.
pub fn write_scan(scan: &Scan, path: &Path) -> Result<()> {
    write_tree(path, &scan_files(scan))
}
