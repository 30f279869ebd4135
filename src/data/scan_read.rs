//! Reading a scan from the Sensorium / neuralpredictors file tree.

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::downsample::area_average;
use crate::data::npy::{read_f32, read_i64, read_strings, NpyArray};
use crate::data::nwb::{is_nwb, load_nwb, NwbOptions};
use crate::data::scan::{NeuronMeta, Scan, Tier};
use crate::data::source::ScanSource;
use crate::data::stimuli::{ImagesById, Stimuli};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// How to read a scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Downsample images to (height, width) by area averaging (e.g. 144 x 256 to the paper's 36 x 64).
    pub downsample_to: Option<(usize, usize)>,
    /// How to read an NWB file.
    pub nwb: NwbOptions,
}

/// Reads a scan from a folder or a `.zip` in the Sensorium layout, or from an NWB file.
pub fn load_scan(path: &Path, options: LoadOptions, progress: &dyn Progress) -> Result<Scan> {
    let mut scan = if is_nwb(path) {
        load_nwb(path, &options.nwb, progress)?
    } else {
        load_sensorium(path, progress)?
    };
    scan.image_shape = downsampled(path, &mut scan.images, scan.image_shape, &options)?;
    Ok(scan)
}

/// Reads only what a scan showed (its trials' image ids and its images), as [`load_scan`] would
/// read them: at paper size a tenth of the file, all a Neural (model) target needs of a scan.
pub fn load_stimuli(path: &Path, options: LoadOptions, progress: &dyn Progress) -> Result<Stimuli> {
    if is_nwb(path) {
        // An NWB file's trials come from matching presentation times to response timestamps,
        // so its stimuli are read with the rest.
        return Ok(Stimuli::of(&load_scan(path, options, progress)?));
    }
    let mut src = ScanSource::open(path)?;
    let image_ids = nonempty_ids(&mut src, IDS_FILE, "trials")?;
    let name = scan_name(path);
    let (mut images, shape) = read_images(&mut src, &name, &image_ids, progress)?;
    let image_shape = downsampled(path, &mut images, shape, &options)?;
    Ok(Stimuli {
        name,
        source: path.to_path_buf(),
        image_ids,
        image_shape,
        images,
    })
}

/// `images` (of `shape`) downsampled as `options` ask; their shape after.
fn downsampled(
    path: &Path,
    images: &mut ImagesById,
    shape: (usize, usize),
    options: &LoadOptions,
) -> Result<(usize, usize)> {
    let Some(to) = options.downsample_to else {
        return Ok(shape);
    };
    for img in images.values_mut() {
        *img =
            area_average(img, shape, to).map_err(|problem| Error::file(path.display(), problem))?;
    }
    Ok(to)
}

/// A scan's name: its folder's or file's, without extension.
fn scan_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Each trial's image id.
const IDS_FILE: &str = "meta/trials/frame_image_id.npy";

/// The per-trial folders and whether each is required.
const TRIAL_FOLDERS: [(&str, bool); 4] = [
    ("data/images", true),
    ("data/responses", true),
    ("data/behavior", false),
    ("data/pupil_center", false),
];

/// Reads a scan in the Sensorium layout from a folder or a `.zip`.
fn load_sensorium(path: &Path, progress: &dyn Progress) -> Result<Scan> {
    let mut src = ScanSource::open(path)?;
    let name = scan_name(path);
    let image_ids = nonempty_ids(&mut src, IDS_FILE, "trials")?;
    let t_count = image_ids.len();
    let tiers_file = "meta/trials/tiers.npy";
    let tier_names = vector(&mut src, tiers_file, read_strings)?;
    expect_len(&src, tiers_file, tier_names.len(), t_count, "trials")?;
    let tiers = tier_names
        .iter()
        .enumerate()
        .map(|(t, s)| {
            Tier::parse(s).ok_or_else(|| {
                Error::file(
                    src.describe(tiers_file),
                    format!("trial {t} has unknown tier {s:?} (expected train, validation, test or final_test)"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let unit_ids = nonempty_ids(&mut src, "meta/neurons/unit_ids.npy", "neurons")?;
    let n = unit_ids.len();

    let mut present = BTreeMap::new();
    for (folder, required) in TRIAL_FOLDERS {
        let names = src.list(folder)?;
        if names.is_empty() {
            if required {
                return Err(Error::file(
                    src.describe(folder),
                    "missing (no trial files)",
                ));
            }
            continue;
        }
        if names.len() != t_count {
            return Err(Error::file(
                src.describe(folder),
                format!(
                    "holds {} trial files but {IDS_FILE} lists {t_count} trials: trial counts differ between folders",
                    names.len()
                ),
            ));
        }
        present.insert(folder, ());
    }

    let (images, (h, w)) = read_images(&mut src, &name, &image_ids, progress)?;
    progress.stage(&format!("reading the responses of {name}"), t_count as u64);
    let mut responses = Vec::with_capacity(t_count * n);
    let mut behavior = present.contains_key("data/behavior").then(Vec::new);
    let mut pupil_center = present.contains_key("data/pupil_center").then(Vec::new);
    for t in 0..t_count {
        progress.check()?;
        let rel = format!("data/responses/{t}.npy");
        let r = read_f32(&src.read(&rel)?, &src.describe(&rel))?;
        expect_shape(
            &src,
            &rel,
            &r.shape,
            &[n],
            "(N) with N the number of unit ids",
        )?;
        if let Some(i) = r.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::file(
                src.describe(&rel),
                format!(
                    "response of neuron {i} is {} (responses must be finite)",
                    r.data[i]
                ),
            ));
        }
        responses.extend_from_slice(&r.data);

        if let Some(b) = behavior.as_mut() {
            b.push(fixed::<3>(&mut src, &format!("data/behavior/{t}.npy"))?);
        }
        if let Some(p) = pupil_center.as_mut() {
            p.push(fixed::<2>(&mut src, &format!("data/pupil_center/{t}.npy"))?);
        }
        progress.advance(1);
    }
    let ground_truth = optional_matrix(&mut src, "meta/ground_truth/responses.npy", t_count, n)?;
    let neurons = NeuronMeta {
        cell_motor_coordinates: optional_rows::<3>(
            &mut src,
            "meta/neurons/cell_motor_coordinates.npy",
            n,
        )?,
        area: optional_strings(&mut src, "meta/neurons/area.npy", n)?,
    };
    Ok(Scan {
        name,
        source: path.to_path_buf(),
        image_ids,
        tiers,
        unit_ids,
        responses,
        behavior,
        pupil_center,
        image_shape: (h, w),
        images,
        neurons,
        ground_truth,
        notices: Vec::new(),
    })
}

/// The distinct images of the trials `image_ids` (each trial's `data/images/<t>.npy`, the first
/// trial of an id read for it), checked finite and of one shape; with that shape.
fn read_images(
    src: &mut ScanSource,
    name: &str,
    image_ids: &[i64],
    progress: &dyn Progress,
) -> Result<(ImagesById, (usize, usize))> {
    progress.stage(
        &format!("reading the images of {name}"),
        image_ids.len() as u64,
    );
    let mut images = ImagesById::new();
    let mut image_shape = None;
    for (t, &id) in image_ids.iter().enumerate() {
        progress.check()?;
        let rel = format!("data/images/{t}.npy");
        let img = read_f32(&src.read(&rel)?, &src.describe(&rel))?;
        let (h, w) = match img.shape.as_slice() {
            [1, h, w] | [h, w] => (*h, *w),
            s => {
                return Err(Error::file(
                    src.describe(&rel),
                    format!("image has shape {s:?}, expected (1, H, W)"),
                ))
            }
        };
        if img.data.iter().any(|v| !v.is_finite()) {
            return Err(Error::file(
                src.describe(&rel),
                "image holds NaN or infinity",
            ));
        }
        let first = *image_shape.get_or_insert((h, w));
        if first != (h, w) {
            return Err(Error::file(
                src.describe(&rel),
                format!(
                    "image is {h} x {w} but earlier images are {} x {}",
                    first.0, first.1
                ),
            ));
        }
        images.entry(id).or_insert(img.data);
        progress.advance(1);
    }
    Ok((images, image_shape.unwrap_or((0, 0))))
}

/// Reads the one-dimensional array `rel` with `read` (one of the `.npy` readers).
fn vector<T>(
    src: &mut ScanSource,
    rel: &str,
    read: fn(&[u8], &str) -> Result<NpyArray<T>>,
) -> Result<Vec<T>> {
    let a = read(&src.read(rel)?, &src.describe(rel))?;
    if a.shape.len() != 1 {
        return Err(Error::file(
            src.describe(rel),
            format!("has shape {:?}, expected one dimension", a.shape),
        ));
    }
    Ok(a.data)
}

/// Reads a non-empty vector of ids (one per `what`).
fn nonempty_ids(src: &mut ScanSource, rel: &str, what: &str) -> Result<Vec<i64>> {
    let ids = vector(src, rel, read_i64)?;
    if ids.is_empty() {
        return Err(Error::file(
            src.describe(rel),
            format!("the scan has no {what}"),
        ));
    }
    Ok(ids)
}

fn expect_len(src: &ScanSource, rel: &str, got: usize, want: usize, what: &str) -> Result<()> {
    if got != want {
        return Err(Error::file(
            src.describe(rel),
            format!("has {got} entries, expected {want} (one per {what})"),
        ));
    }
    Ok(())
}

fn expect_shape(
    src: &ScanSource,
    rel: &str,
    got: &[usize],
    want: &[usize],
    spelled: &str,
) -> Result<()> {
    if got != want {
        return Err(Error::file(
            src.describe(rel),
            format!("has shape {got:?}, expected {want:?}: {spelled}"),
        ));
    }
    Ok(())
}

/// Reads a file of exactly `K` finite numbers.
fn fixed<const K: usize>(src: &mut ScanSource, rel: &str) -> Result<[f32; K]> {
    let a = read_f32(&src.read(rel)?, &src.describe(rel))?;
    expect_shape(src, rel, &a.shape, &[K], "one value per component")?;
    if a.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::file(src.describe(rel), "holds NaN or infinity"));
    }
    let mut out = [0.0; K];
    out.copy_from_slice(&a.data);
    Ok(out)
}

fn optional_matrix(
    src: &mut ScanSource,
    rel: &str,
    rows: usize,
    cols: usize,
) -> Result<Option<Vec<f32>>> {
    if !src.contains(rel) {
        return Ok(None);
    }
    let a = read_f32(&src.read(rel)?, &src.describe(rel))?;
    expect_shape(src, rel, &a.shape, &[rows, cols], "(trials, neurons)")?;
    Ok(Some(a.data))
}

fn optional_rows<const K: usize>(
    src: &mut ScanSource,
    rel: &str,
    rows: usize,
) -> Result<Option<Vec<[f32; K]>>> {
    if !src.contains(rel) {
        return Ok(None);
    }
    let a = read_f32(&src.read(rel)?, &src.describe(rel))?;
    expect_shape(src, rel, &a.shape, &[rows, K], "one row per neuron")?;
    Ok(Some(
        a.data
            .chunks_exact(K)
            .map(|c| {
                let mut row = [0.0; K];
                row.copy_from_slice(c);
                row
            })
            .collect(),
    ))
}

fn optional_strings(src: &mut ScanSource, rel: &str, rows: usize) -> Result<Option<Vec<String>>> {
    if !src.contains(rel) {
        return Ok(None);
    }
    let a = vector(src, rel, read_strings)?;
    expect_len(src, rel, a.len(), rows, "neuron")?;
    Ok(Some(a))
}
