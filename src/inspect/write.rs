//! An inspection as files: every matrix as `.npy` (rows in the neural reference's image order,
//! ids in `image_ids.npy`; a network's layers in a folder named after it), every agreement
//! with its interval in `agreement.csv` and `inspection.json`, and one PNG per measure of the
//! agreement over depth for every network with the noise ceiling and the pixel baseline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::atomic::write_atomic;
use crate::data::npy::encode;
use crate::error::{Error, Result};
use crate::figures::{palette, render, Chart, Mark, Series};
use crate::inspect::neural::CEILING_METHOD;
use crate::inspect::{Inspection, LayerResult};
use crate::similarity::agreement::MEASURES;
use crate::similarity::matrix::SimilarityMatrix;

/// The measures' names in figures.
pub fn measure_title(measure: &str) -> &'static str {
    match measure {
        "rsa_pearson" => "RSA (Pearson r)",
        "rsa_spearman" => "RSA (Spearman rho)",
        "cka" => "linear CKA",
        _ => "debiased CKA",
    }
}

/// Writes `inspection` into `dir`; returns the files written.
pub fn write_inspection(inspection: &Inspection, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let mut put = |name: String, bytes: Vec<u8>| -> Result<()> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        write_atomic(&path, &bytes)?;
        written.push(path);
        Ok(())
    };
    let n = &inspection.neural;
    let npy = |m: &SimilarityMatrix| encode(&[m.n, m.n], &m.values);
    put(
        "image_ids.npy".into(),
        encode(&[n.image_ids.len()], &n.image_ids),
    )?;
    put("neural.npy".into(), npy(&n.matrix))?;
    put("pixels.npy".into(), npy(&inspection.pixels.layer.matrix))?;
    for net in &inspection.networks {
        for l in &net.layers {
            let name = format!(
                "{}/{:02}_{}.npy",
                net.about.name, l.layer.layer, l.layer.name
            );
            put(name, npy(&l.layer.matrix))?;
        }
    }
    put("agreement.csv".into(), csv(inspection).into_bytes())?;
    let json = serde_json::to_vec_pretty(&summary(inspection))
        .map_err(|e| Error::Config(format!("inspection as JSON: {e}")))?;
    put("inspection.json".into(), json)?;
    for (measure, _) in MEASURES {
        let name = format!("depth_{measure}.png");
        render(&depth_chart(inspection, measure), &dir.join(&name))?;
        written.push(dir.join(name));
    }
    Ok(written)
}

/// One row per (network, layer, measure), then the pixel baseline and the ceiling.
fn csv(inspection: &Inspection) -> String {
    let mut out = String::from("network,label,layer,name,measure,value,low,high\n");
    let mut row = |net: &str, label: &str, l: &LayerResult| {
        for ((measure, _), (v, lo, hi)) in MEASURES.iter().zip(l.estimate.triples()) {
            let _ = writeln!(
                out,
                "\"{net}\",\"{label}\",{},{},{measure},{v},{lo},{hi}",
                l.layer.layer, l.layer.name
            );
        }
    };
    row("pixels", "pixel baseline", &inspection.pixels);
    for n in &inspection.networks {
        for l in &n.layers {
            row(&n.about.name, &n.about.label, l);
        }
    }
    if let Some(c) = &inspection.neural.ceiling {
        for (measure, get) in MEASURES {
            let _ = writeln!(
                out,
                "ceiling,\"split-half\",,,{measure},{},,",
                get(&c.split_half)
            );
        }
        let _ = writeln!(
            out,
            "ceiling,\"Spearman-Brown\",,,rsa_pearson_full,{},,",
            c.rsa_pearson_full
        );
    }
    out
}

/// Everything but the matrices, for JSON.
fn summary(inspection: &Inspection) -> serde_json::Value {
    let layer = |l: &LayerResult| {
        json!({
            "layer": l.layer.layer,
            "name": l.layer.name,
            "size": [l.layer.size.0, l.layer.size.1, l.layer.size.2],
            "agreement": l.estimate,
        })
    };
    let n = &inspection.neural;
    json!({
        "images": n.source,
        "image_ids": n.image_ids,
        "neural": n.matrix_name,
        "layer_similarity": format!(
            "Eq. 9: cosine similarity of features centred over the images; {}",
            inspection.request.batch_norm.describe()
        ),
        "ceiling": n.ceiling.map(|c| json!({
            "method": CEILING_METHOD,
            "split_half": c.split_half,
            "rsa_pearson_full": c.rsa_pearson_full,
        })),
        "pixels": layer(&inspection.pixels),
        "intervals": format!(
            "95% bootstrap percentile intervals over {} resamplings of the images (seed {})",
            inspection.request.resamples, inspection.request.seed
        ),
        "networks": inspection.networks.iter().map(|r| json!({
            "network": r.about.name,
            "path": r.about.path,
            "label": r.about.label,
            "taps": r.about.taps,
            "gamma": r.about.gamma,
            "layers": r.layers.iter().map(layer).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The agreement over depth for each network (with its intervals), the ceiling and the
/// baseline.
pub fn depth_chart(inspection: &Inspection, measure: &str) -> Chart {
    let m = MEASURES
        .iter()
        .position(|(name, _)| *name == measure)
        .unwrap_or(0);
    let mut series: Vec<Series> = inspection
        .networks
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let triples: Vec<(f64, (f64, f64, f64))> = r
                .layers
                .iter()
                .map(|l| (l.layer.layer as f64, l.estimate.triples()[m]))
                .collect();
            Series {
                label: r.about.label.clone(),
                colour: palette(k),
                mark: Mark::Line {
                    points: triples.iter().map(|(x, t)| (*x, t.0)).collect(),
                    band: Some(triples.iter().map(|(_, t)| (t.1, t.2)).collect()),
                },
            }
        })
        .collect();
    let depth: Vec<f64> = inspection
        .networks
        .iter()
        .flat_map(|r| r.layers.iter().map(|l| l.layer.layer as f64))
        .collect();
    let (lo, hi) = depth
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let flat = |label: &str, value: f64, colour| Series {
        label: label.into(),
        colour,
        mark: Mark::Line {
            points: vec![(lo.min(hi), value), (hi.max(lo), value)],
            band: None,
        },
    };
    series.push(flat(
        "pixels",
        MEASURES[m].1(&inspection.pixels.estimate.value),
        [120, 120, 120],
    ));
    if let Some(c) = &inspection.neural.ceiling {
        series.push(flat(
            "ceiling (split-half)",
            MEASURES[m].1(&c.split_half),
            [0, 0, 0],
        ));
    }
    Chart {
        title: format!(
            "{} against {} over depth",
            measure_title(measure),
            inspection.request.reference.short()
        ),
        x_label: "conv layer".into(),
        y_label: measure_title(measure).into(),
        series,
        ..Chart::default()
    }
}
