//! Which RoiResponseSeries of `processing/ophys` is a scan's responses: the first under a
//! `DfOverF` container, else under `Fluorescence`, or the one named.

use super::file::NwbFile;
use crate::error::Result;

/// The ophys module.
const OPHYS: &str = "processing/ophys";

/// The response series in the order they are offered: every series of every `DfOverF`
/// container (by name), then of every `Fluorescence` container, as `container/series` paths
/// relative to [`OPHYS`].
pub fn candidates(f: &NwbFile) -> Result<Vec<String>> {
    if !f.exists(OPHYS) {
        return Err(f.error(
            OPHYS,
            "missing: an NWB scan needs its responses as a RoiResponseSeries in processing/ophys",
        ));
    }
    let (containers, _) = f.children(OPHYS)?;
    let mut out = Vec::new();
    for kind in ["DfOverF", "Fluorescence"] {
        for c in &containers {
            let path = format!("{OPHYS}/{c}");
            if f.neurodata_type(&path).as_deref() != Some(kind) {
                continue;
            }
            let (series, _) = f.children(&path)?;
            out.extend(series.iter().map(|s| format!("{c}/{s}")));
        }
    }
    if out.is_empty() {
        return Err(f.error(
            OPHYS,
            format!(
                "holds no DfOverF or Fluorescence series (it holds {})",
                if containers.is_empty() {
                    "nothing".to_string()
                } else {
                    containers.join(", ")
                }
            ),
        ));
    }
    Ok(out)
}

/// The path of the series `wanted` names (`series` or `container/series`), else the first
/// candidate; with a notice when there were others to choose from.
pub fn choose(f: &NwbFile, wanted: Option<&str>) -> Result<(String, Option<String>)> {
    let all = candidates(f)?;
    let chosen = match wanted {
        Some(name) => all
            .iter()
            .find(|c| c.as_str() == name || c.rsplit('/').next() == Some(name))
            .cloned()
            .ok_or_else(|| {
                f.error(
                    OPHYS,
                    format!("has no response series {name:?}; it has {}", all.join(", ")),
                )
            })?,
        None => all[0].clone(),
    };
    let notice = (wanted.is_none() && all.len() > 1).then(|| {
        format!(
            "responses from {OPHYS}/{chosen}; the file also has {} (choose with --nwb-series)",
            all.iter()
                .filter(|c| **c != chosen)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    Ok((format!("{OPHYS}/{chosen}"), notice))
}

/// The ROIs' ids: the rows of the segmentation table the series' `rois` region lists, else
/// their positions.
pub fn unit_ids(f: &NwbFile, series: &str, count: usize) -> Result<Vec<i64>> {
    let rois = format!("{series}/rois");
    if !f.exists(&rois) {
        return Ok((0..count as i64).collect());
    }
    let ids: Vec<i64> = f.f64s(&rois)?.values.iter().map(|&v| v as i64).collect();
    if ids.len() != count {
        return Err(f.error(
            &rois,
            format!(
                "lists {} ROIs but the series has {count} columns",
                ids.len()
            ),
        ));
    }
    Ok(ids)
}
