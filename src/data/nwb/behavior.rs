//! Behaviour per trial from `processing/behavior`: running speed (a series whose name mentions
//! running or speed), pupil size (a `PupilTracking` series) and pupil position (an `EyeTracking`
//! series with x and y), each averaged over the trial's window.

use super::file::NwbFile;
use super::series::Series;
use crate::error::Result;

const BEHAVIOR: &str = "processing/behavior";

/// What a session says about the animal, per trial.
pub struct Behaviour {
    /// Pupil size, its change since the previous trial, running speed (the Sensorium order).
    pub behavior: Option<Vec<[f32; 3]>>,
    /// Pupil centre (x, y).
    pub pupil_center: Option<Vec<[f32; 2]>>,
    /// What was missing.
    pub notices: Vec<String>,
}

/// The series paths under `processing/behavior`, with their container's neurodata_type.
fn series(f: &NwbFile) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for container in f.children(BEHAVIOR)?.0 {
        let path = format!("{BEHAVIOR}/{container}");
        let kind = f.neurodata_type(&path);
        if f.exists(&format!("{path}/data")) {
            out.push((path, kind)); // a series directly in the module
            continue;
        }
        for s in f.children(&path)?.0 {
            out.push((format!("{path}/{s}"), kind.clone()));
        }
    }
    Ok(out)
}

/// Each column's mean over the window, or the value of the sample nearest it when the window
/// holds none (slow behavioural sampling).
fn at(s: &Series, (from, to): (f64, f64)) -> Vec<f32> {
    s.window_mean(from, to).unwrap_or_else(|| {
        let k = s
            .times
            .partition_point(|&t| t < from)
            .min(s.times.len() - 1);
        let k = if k > 0 && (from - s.times[k - 1]).abs() < (s.times[k] - from).abs() {
            k - 1
        } else {
            k
        };
        s.data[k * s.columns..][..s.columns].to_vec()
    })
}

/// The behaviour over each trial window.
pub fn read(f: &NwbFile, windows: &[(f64, f64)]) -> Result<Behaviour> {
    let mut notices = Vec::new();
    if !f.exists(BEHAVIOR) {
        notices.push(format!(
            "no {BEHAVIOR}: the scan has no behaviour or pupil (a predictor fits without them)"
        ));
        return Ok(Behaviour {
            behavior: None,
            pupil_center: None,
            notices,
        });
    }
    let all = series(f)?;
    let read_first = |pick: &dyn Fn(&str, Option<&str>) -> bool| -> Result<Option<Series>> {
        match all.iter().find(|(p, k)| pick(p, k.as_deref())) {
            Some((p, _)) => Series::read(f, p).map(Some),
            None => Ok(None),
        }
    };
    let name_of = |p: &str| p.rsplit('/').next().unwrap_or("").to_lowercase();
    let running = read_first(&|p, _| {
        let n = name_of(p);
        n.contains("running") || n.contains("speed")
    })?;
    let pupil = read_first(&|_, k| k == Some("PupilTracking"))?;
    let eye = read_first(&|_, k| k == Some("EyeTracking"))?.filter(|s| s.columns >= 2);
    if running.is_none() && pupil.is_none() && eye.is_none() {
        notices.push(format!(
            "{BEHAVIOR} has no running speed, pupil size or pupil position: the scan has no \
             behaviour"
        ));
        return Ok(Behaviour {
            behavior: None,
            pupil_center: None,
            notices,
        });
    }
    for (s, what) in [(&running, "running speed"), (&pupil, "pupil size")] {
        match s {
            Some(s) => notices.push(format!("{what} from {}", s.path)),
            None => notices.push(format!("no {what} in {BEHAVIOR}: it is 0 on every trial")),
        }
    }
    let mut last_pupil = None;
    let behavior = windows
        .iter()
        .map(|&w| {
            let size = pupil.as_ref().map_or(0.0, |s| at(s, w)[0]);
            let change = last_pupil.map_or(0.0, |p| size - p);
            last_pupil = Some(size);
            [size, change, running.as_ref().map_or(0.0, |s| at(s, w)[0])]
        })
        .collect();
    let pupil_center = eye.map(|s| {
        windows
            .iter()
            .map(|&w| {
                let v = at(&s, w);
                [v[0], v[1]]
            })
            .collect()
    });
    Ok(Behaviour {
        behavior: Some(behavior),
        pupil_center,
        notices,
    })
}
