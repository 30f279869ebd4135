//! When each image was shown: a presentation table (a TimeIntervals under `intervals/`, or the
//! trials table) with `start_time`, `stop_time` and an image-index column.

use super::file::NwbFile;
use crate::error::Result;

/// The image-index columns recognised by name, in order of preference (the Allen Brain
/// Observatory's is `frame`).
pub const INDEX_COLUMNS: [&str; 3] = ["frame", "image_index", "image_id"];

/// Columns of a TimeIntervals table that are never the image index.
const NOT_INDEX: [&str; 5] = ["start_time", "stop_time", "id", "tags", "timeseries"];

/// The presentations: one row per showing.
pub struct Presentations {
    /// Where they were read: `intervals/<table>/<column>`.
    pub source: String,
    /// Start of each showing, seconds.
    pub start: Vec<f64>,
    /// Its end.
    pub stop: Vec<f64>,
    /// The index of the image shown (negative: a blank).
    pub image: Vec<i64>,
}

/// The tables under `intervals/`.
fn tables(f: &NwbFile) -> Result<Vec<String>> {
    if !f.exists("intervals") {
        return Err(f.error(
            "intervals",
            "missing: an NWB scan needs a presentation table (a TimeIntervals under intervals/, \
             or trials) with start_time, stop_time and an image-index column",
        ));
    }
    Ok(f.children("intervals")?.0)
}

/// The image-index column of the table at `path`: `wanted`, else the first of
/// [`INDEX_COLUMNS`] it has, else its only numeric column; an error lists the candidates.
fn index_column(f: &NwbFile, path: &str, wanted: Option<&str>) -> Result<String> {
    let (_, columns) = f.children(path)?;
    if let Some(c) = wanted {
        return if columns.iter().any(|x| x == c) {
            Ok(c.to_string())
        } else {
            Err(f.error(
                path,
                format!(
                    "has no column {c:?}; its columns are {}",
                    columns.join(", ")
                ),
            ))
        };
    }
    if let Some(c) = INDEX_COLUMNS
        .iter()
        .find(|c| columns.iter().any(|x| x == *c))
    {
        return Ok(c.to_string());
    }
    // A ragged column X comes with its index X_index; neither is an image index.
    let ragged = |c: &str| {
        c.strip_suffix("_index")
            .is_some_and(|x| columns.iter().any(|o| o == x))
            || columns.iter().any(|o| *o == format!("{c}_index"))
    };
    let numeric: Vec<&String> = columns
        .iter()
        .filter(|c| !NOT_INDEX.contains(&c.as_str()) && !ragged(c))
        .filter(|c| f.f64s(&format!("{path}/{c}")).is_ok())
        .collect();
    match numeric.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(f.error(
            path,
            format!(
                "has no image-index column named {}; its numeric columns are {}: name the one \
                 with --nwb-column",
                INDEX_COLUMNS.join(", "),
                if numeric.is_empty() {
                    "none".to_string()
                } else {
                    numeric
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        )),
    }
}

/// Reads the presentations: from `intervals/<table>` when named, else the one table with an
/// image-index column (an error lists them when several have one).
pub fn read(f: &NwbFile, table: Option<&str>, column: Option<&str>) -> Result<Presentations> {
    let path = match table {
        Some(t) => {
            let path = format!("intervals/{t}");
            if !f.exists(&path) {
                return Err(f.error(
                    "intervals",
                    format!("has no table {t:?}; it has {}", tables(f)?.join(", ")),
                ));
            }
            path
        }
        None => {
            let all = tables(f)?;
            let with_index: Vec<&String> = all
                .iter()
                .filter(|t| index_column(f, &format!("intervals/{t}"), column).is_ok())
                .collect();
            match with_index.as_slice() {
                [one] => format!("intervals/{one}"),
                [] => {
                    // Why the first table does not qualify.
                    let first = all
                        .first()
                        .ok_or_else(|| f.error("intervals", "is empty"))?;
                    let why = index_column(f, &format!("intervals/{first}"), column).err();
                    return Err(why.unwrap_or_else(|| {
                        f.error("intervals", "no table has an image-index column")
                    }));
                }
                several => {
                    return Err(f.error(
                        "intervals",
                        format!(
                            "has several presentation tables ({}): name one with --nwb-table",
                            several
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            }
        }
    };
    let column = index_column(f, &path, column)?;
    let start = f.f64s(&format!("{path}/start_time"))?.values;
    let stop = f.f64s(&format!("{path}/stop_time"))?.values;
    let image: Vec<i64> = f
        .f64s(&format!("{path}/{column}"))?
        .values
        .iter()
        .map(|&v| if v.is_finite() { v as i64 } else { -1 })
        .collect();
    if start.len() != stop.len() || start.len() != image.len() {
        return Err(f.error(
            &path,
            format!(
                "its columns differ in length: start_time {}, stop_time {}, {column} {}",
                start.len(),
                stop.len(),
                image.len()
            ),
        ));
    }
    if let Some(k) = (0..start.len())
        .find(|&k| stop[k].partial_cmp(&start[k]) != Some(std::cmp::Ordering::Greater))
    {
        return Err(f.error(
            &path,
            format!(
                "row {k} stops ({}) before it starts ({})",
                stop[k], start[k]
            ),
        ));
    }
    Ok(Presentations {
        source: format!("{path}/{column}"),
        start,
        stop,
        image,
    })
}
