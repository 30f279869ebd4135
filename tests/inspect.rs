//! `neureg inspect` and `neureg agreement` on the shipped lecture runs and sample scans: the
//! files it writes, its numbers equal to the library's (which the Inspect tab shows), and the
//! properties every inspection must have.

mod common;

use std::path::PathBuf;

use neureg::data::{load_scan, LoadOptions, Scan};
use neureg::inspect::layers::LayerChoice;
use neureg::inspect::neural::oracle_reference;
use neureg::inspect::{inspect, InspectRequest};
use neureg::progress::Silent;

fn lecture_runs() -> Vec<PathBuf> {
    [
        "none-a0-seed0",
        "neural-model-a20-seed0",
        "shuffle-a20-seed0",
    ]
    .iter()
    .map(|r| {
        common::root()
            .join("sample_data/experiments/lecture/runs")
            .join(r)
    })
    .collect()
}

fn sample_scans() -> Vec<Scan> {
    (1..=4)
        .map(|k| {
            let p = common::root().join(format!("sample_data/scans/scan_{k}.zip"));
            load_scan(&p, LoadOptions::default(), &Silent).unwrap()
        })
        .collect()
}

#[test]
fn the_command_writes_what_the_library_computes() {
    let out = tempfile::tempdir().unwrap();
    let runs = lecture_runs();
    let mut args: Vec<String> = vec!["inspect".into()];
    args.extend(runs.iter().map(|r| r.display().to_string()));
    let scans: Vec<String> = (1..=4)
        .map(|k| {
            common::root()
                .join(format!("sample_data/scans/scan_{k}.zip"))
                .display()
                .to_string()
        })
        .collect();
    args.extend([
        "--images".into(),
        scans.join(","),
        "--layers".into(),
        "all".into(),
        "--resamples".into(),
        "50".into(),
        "--out".into(),
        out.path().display().to_string(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = common::ok(&refs);
    assert!(printed.contains("ceiling (split-half)"), "{printed}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("inspection.json")).unwrap())
            .unwrap();
    for f in [
        "neural.npy",
        "pixels.npy",
        "image_ids.npy",
        "agreement.csv",
        "depth_cka_debiased.png",
    ] {
        assert!(out.path().join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(out.path().join("agreement.csv")).unwrap();
    // pixels + 3 runs x 17 layers, 4 measures each, then 5 ceiling lines and the header.
    assert_eq!(csv.lines().count(), 1 + (1 + 3 * 17) * 4 + 5, "{csv}");

    let scans = sample_scans();
    let refs: Vec<&Scan> = scans.iter().collect();
    let neural = oracle_reference(&refs, &candle_core::Device::Cpu).unwrap();
    let request = InspectRequest {
        runs: runs.clone(),
        layers: LayerChoice::All,
        resamples: 50,
        seed: 0,
    };
    let ours = inspect(neural, &request, &candle_core::Device::Cpu, &Silent).unwrap();
    for (r, jr) in ours.runs.iter().zip(json["runs"].as_array().unwrap()) {
        assert_eq!(r.layers.len(), 17);
        for (l, jl) in r.layers.iter().zip(jr["layers"].as_array().unwrap()) {
            // Equal but for the last digit that a JSON round trip may change.
            let got: neureg::inspect::agreement::Estimate =
                serde_json::from_value(jl["agreement"].clone()).unwrap();
            for (x, y) in got.triples().iter().zip(l.estimate.triples()) {
                for (p, q) in [(x.0, y.0), (x.1, y.1), (x.2, y.2)] {
                    assert!((p - q).abs() < 1e-12, "{} layer {}", r.run, l.layer.layer);
                }
            }
            // Eq. 9 has ones on its diagonal (no image's features equal the batch mean).
            let m = &l.layer.matrix;
            assert!((0..m.n).all(|i| (m.get(i, i) - 1.0).abs() < 1e-4));
            for (v, lo, hi) in l.estimate.triples() {
                assert!(v.is_finite() && lo <= hi && (-1.0..=1.0 + 1e-9).contains(&v));
            }
        }
        // gamma is a distribution over the run's taps.
        if let Some(g) = &r.gamma {
            assert_eq!(g.len(), r.taps.len());
            assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        }
    }
    let c = ours
        .neural
        .ceiling
        .expect("ten repeats per image: a split-half ceiling");
    assert!(c.split_half.rsa_pearson > 0.0 && c.split_half.rsa_pearson < c.rsa_pearson_full);
}

#[test]
fn agreement_of_a_matrix_with_itself_is_one_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::root().join("sample_data/targets/neural_model.npy");
    let out = common::ok(&[
        "agreement",
        &a.display().to_string(),
        &a.display().to_string(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for k in ["rsa_pearson", "rsa_spearman", "cka", "cka_debiased"] {
        assert!((v[k].as_f64().unwrap() - 1.0).abs() < 1e-6, "{k}: {out}");
    }
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, b"not an npy file").unwrap();
    let o = common::neureg(&[
        "agreement",
        &a.display().to_string(),
        &bad.display().to_string(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.npy"), "{err}");
}
