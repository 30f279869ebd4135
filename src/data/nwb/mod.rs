//! NWB 2 files as scans (the format DANDI and the Allen Brain Observatory publish two-photon
//! data in), read without any system library.
//!
//! The mapping (also in the README, "Bringing your own data"):
//! - responses: a RoiResponseSeries in `processing/ophys` (the first under a `DfOverF`
//!   container, else `Fluorescence`; another by `--nwb-series`), time x ROIs, timed by
//!   `timestamps` or `starting_time` and `rate`;
//! - trials: the rows of a presentation table (a TimeIntervals under `intervals/`, or
//!   `trials`; another by `--nwb-table`) with `start_time`, `stop_time` and an image-index column
//!   (`frame`, `image_index` or `image_id`, another by `--nwb-column`); rows with a negative
//!   index are blanks and are left out;
//! - a trial's response: each ROI's mean over the samples whose times lie in
//!   `[start + offset, stop + offset)`, or `[start + offset, start + offset + window)` with
//!   `--nwb-window` (the Allen Institute averages dF/F over the 0.5 s after each 250 ms flash:
//!   `--nwb-window 0.5`);
//! - images: `stimulus/templates` (see `templates.rs`), ids their indices;
//! - tiers: the trials of images shown more than once are the test tier (the oracle images);
//!   of the images shown once, every seventh in id order is validation, the rest train (a session
//!   whose every image is repeated, as the Allen natural scenes, has no training tier);
//! - behaviour from `processing/behavior` when present (`behavior.rs`), with a notice for what
//!   is missing.

mod behavior;
pub mod file;
mod presentations;
mod responses;
mod series;
mod templates;

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::scan::{NeuronMeta, Scan, Tier};
use crate::error::Result;
use crate::progress::Progress;

use file::NwbFile;
use series::Series;

/// How to read an NWB file (the `--nwb-*` flags); the defaults follow the mapping above.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct NwbOptions {
    /// NWB files: the response series, NAME or CONTAINER/NAME under processing/ophys (default:
    /// the first under DfOverF, else Fluorescence).
    #[arg(long = "nwb-series", global = true, value_name = "NAME")]
    pub series: Option<String>,
    /// NWB files: the presentation table under intervals/ (default: the one with an image-index
    /// column).
    #[arg(long = "nwb-table", global = true, value_name = "NAME")]
    pub table: Option<String>,
    /// NWB files: the table's image-index column (default: frame, image_index or image_id).
    #[arg(long = "nwb-column", global = true, value_name = "NAME")]
    pub column: Option<String>,
    /// NWB files: seconds added to each presentation's start and stop before averaging.
    #[arg(
        long = "nwb-offset",
        global = true,
        default_value_t = 0.0,
        value_name = "SECONDS"
    )]
    pub offset: f64,
    /// NWB files: average this many seconds from each start (plus offset) instead of to its
    /// stop (the Allen Institute's convention: 0.5).
    #[arg(long = "nwb-window", global = true, value_name = "SECONDS")]
    pub window: Option<f64>,
}

/// Whether `path` names an NWB file (by its extension).
pub fn is_nwb(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("nwb"))
}

/// Reads the NWB file at `path` as a scan.
pub fn load_nwb(path: &Path, options: &NwbOptions, progress: &dyn Progress) -> Result<Scan> {
    progress.stage("reading the NWB file", 4);
    let f = NwbFile::open(path)?;
    let mut notices = Vec::new();
    let (series_path, notice) = responses::choose(&f, options.series.as_deref())?;
    notices.extend(notice);
    let responses = Series::read(&f, &series_path)?;
    progress.advance(1);
    let shown = presentations::read(&f, options.table.as_deref(), options.column.as_deref())?;
    let blanks = shown.image.iter().filter(|&&i| i < 0).count();
    if blanks > 0 {
        notices.push(format!(
            "{blanks} blank presentations (negative index) left out"
        ));
    }
    let highest = shown.image.iter().copied().max().unwrap_or(-1);
    let (templates, more) = templates::read(&f, highest)?;
    notices.extend(more);
    progress.advance(1);
    let mut trials = Vec::new();
    for (row, &image) in shown.image.iter().enumerate() {
        if image < 0 {
            continue;
        }
        if image as usize >= templates.images.len() {
            return Err(f.error(
                &shown.source,
                format!(
                    "row {row} shows image {image}, but {} holds {} images",
                    templates.source,
                    templates.images.len()
                ),
            ));
        }
        let from = shown.start[row] + options.offset;
        let to = match options.window {
            Some(w) => from + w,
            None => shown.stop[row] + options.offset,
        };
        trials.push((row, image, (from, to)));
    }
    if trials.is_empty() {
        return Err(f.error(&shown.source, "shows no image (every row is a blank)"));
    }
    let n = responses.columns;
    let mut values = Vec::with_capacity(trials.len() * n);
    for &(row, _, (from, to)) in &trials {
        let mean = responses.window_mean(from, to).ok_or_else(|| {
            f.error(
                &series_path,
                format!(
                    "has no sample in [{from}, {to}) s, the window of {} row {row}",
                    shown.source
                ),
            )
        })?;
        if let Some(k) = mean.iter().position(|v| !v.is_finite()) {
            return Err(f.error(
                &series_path,
                format!(
                    "ROI {k} is not a number in [{from}, {to}) s, the window of {} row {row}",
                    shown.source
                ),
            ));
        }
        values.extend(mean);
    }
    progress.advance(1);
    let windows: Vec<(f64, f64)> = trials.iter().map(|t| t.2).collect();
    let behaviour = behavior::read(&f, &windows)?;
    notices.extend(behaviour.notices);
    progress.advance(1);
    let image_ids: Vec<i64> = trials.iter().map(|t| t.1).collect();
    let used: std::collections::BTreeSet<i64> = image_ids.iter().copied().collect();
    let images: BTreeMap<i64, Vec<f32>> = used
        .iter()
        .map(|&id| (id, templates.images[id as usize].clone()))
        .collect();
    Ok(Scan {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        source: path.to_path_buf(),
        tiers: tiers(&image_ids),
        unit_ids: responses::unit_ids(&f, &series_path, n)?,
        responses: values,
        behavior: behaviour.behavior,
        pupil_center: behaviour.pupil_center,
        image_shape: templates.shape,
        images,
        neurons: NeuronMeta::default(),
        ground_truth: None,
        notices,
        image_ids,
    })
}

/// The tiers by the documented rule: repeated images' trials are the test tier; of the images
/// shown once, every seventh in id order is validation, the rest train.
fn tiers(image_ids: &[i64]) -> Vec<Tier> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for &id in image_ids {
        *counts.entry(id).or_default() += 1;
    }
    let single: Vec<i64> = counts
        .iter()
        .filter(|(_, &c)| c == 1)
        .map(|(&id, _)| id)
        .collect();
    let validation: std::collections::BTreeSet<i64> = single.iter().copied().step_by(7).collect();
    image_ids
        .iter()
        .map(|id| {
            if counts[id] > 1 {
                Tier::Test
            } else if validation.contains(id) {
                Tier::Validation
            } else {
                Tier::Train
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_images_are_the_test_tier_and_every_seventh_single_one_validation() {
        let ids = [5, 1, 5, 2, 3, 4, 6, 7, 8, 9, 10];
        let t = tiers(&ids);
        assert_eq!((t[0], t[2]), (Tier::Test, Tier::Test));
        // Single-shown in id order: 1, 2, 3, 4, 6, 7, 8, 9, 10; the 1st and the 8th validation.
        assert_eq!(t[1], Tier::Validation);
        assert_eq!(t[9], Tier::Validation);
        assert_eq!(t.iter().filter(|&&x| x == Tier::Train).count(), 7);
    }
}
