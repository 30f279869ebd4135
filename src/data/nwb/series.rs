//! An NWB TimeSeries (responses, running speed, the pupil): its data, time by rows, and the
//! times of its samples, from `timestamps` or from `starting_time` and its `rate`.

use super::file::NwbFile;
use crate::error::Result;

/// A time series read whole.
pub struct Series {
    /// Its group's path in the file.
    pub path: String,
    /// Samples x columns, row-major.
    pub data: Vec<f32>,
    /// Columns (1 for a vector).
    pub columns: usize,
    /// The time of each sample, seconds, non-decreasing.
    pub times: Vec<f64>,
}

impl Series {
    /// Reads the TimeSeries group at `path`.
    pub fn read(f: &NwbFile, path: &str) -> Result<Series> {
        let data_path = format!("{path}/data");
        let data = f.f32s(&data_path)?;
        let (samples, columns) = match data.shape.as_slice() {
            [t] => (*t, 1),
            [t, c] => (*t, *c),
            other => {
                return Err(f.error(
                    &data_path,
                    format!("has shape {other:?}; a series is time x columns"),
                ))
            }
        };
        let times = if f.exists(&format!("{path}/timestamps")) {
            let t = f.f64s(&format!("{path}/timestamps"))?.values;
            if t.len() != samples {
                return Err(f.error(
                    &format!("{path}/timestamps"),
                    format!(
                        "has {} entries but {data_path} has {samples} samples",
                        t.len()
                    ),
                ));
            }
            t
        } else {
            let start_path = format!("{path}/starting_time");
            let start = *f
                .f64s(&start_path)
                .map_err(|_| f.error(path, "has neither timestamps nor starting_time with a rate"))?
                .values
                .first()
                .ok_or_else(|| f.error(&start_path, "is empty"))?;
            let rate = f.dataset_attribute(&start_path, "rate")?;
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(f.error(&start_path, format!("has rate {rate}; it must be positive")));
            }
            (0..samples).map(|i| start + i as f64 / rate).collect()
        };
        if let Some(k) = times.windows(2).position(|w| {
            w[1].partial_cmp(&w[0])
                .is_none_or(|o| o == std::cmp::Ordering::Less)
        }) {
            return Err(f.error(
                &format!("{path}/timestamps"),
                format!(
                    "times are not in order at sample {} ({} then {})",
                    k + 1,
                    times[k],
                    times[k + 1]
                ),
            ));
        }
        Ok(Series {
            path: path.to_string(),
            data: data.values,
            columns,
            times,
        })
    }

    /// The samples with times in `[from, to)`, as a range of rows.
    pub fn rows_in(&self, from: f64, to: f64) -> std::ops::Range<usize> {
        let lo = self.times.partition_point(|&t| t < from);
        let hi = self.times.partition_point(|&t| t < to);
        lo..hi.max(lo)
    }

    /// Each column's mean over the samples with times in `[from, to)`; None when there are none.
    pub fn window_mean(&self, from: f64, to: f64) -> Option<Vec<f32>> {
        let rows = self.rows_in(from, to);
        if rows.is_empty() {
            return None;
        }
        let mut sums = vec![0f64; self.columns];
        for r in rows.clone() {
            for (s, v) in sums
                .iter_mut()
                .zip(&self.data[r * self.columns..][..self.columns])
            {
                *s += *v as f64;
            }
        }
        let n = rows.len() as f64;
        Some(sums.into_iter().map(|s| (s / n) as f32).collect())
    }
}
