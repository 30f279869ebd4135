//! The `neureg` binary end to end on small synthetic scans, its numbers
//! checked against a naive double-precision reimplementation of docs/method.md sections 2-5.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use neureg::data::npy::{read_f32, read_i64};
use neureg::data::{load_scan, LoadOptions, Scan};
use neureg::progress::Silent;

mod common;
use common::{neureg, ok};

fn synth(dir: &Path) -> Vec<PathBuf> {
    let out = dir.join("scans");
    let text = ok(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--scans",
        "2",
        "--images",
        "40",
        "--oracle",
        "6",
        "--repeats",
        "4",
        "--neurons",
        "30",
        "--seed",
        "1",
    ]);
    text.lines().map(PathBuf::from).collect()
}

fn npy_f32(path: &Path) -> Vec<f32> {
    read_f32(&std::fs::read(path).unwrap(), "test")
        .unwrap()
        .data
}

/// Eq. 1 in f64, straight from the definition.
fn naive_weights(scan: &Scan) -> Vec<f64> {
    let oracle = scan.oracle_trials();
    (0..scan.n_neurons())
        .map(|i| {
            let r = |t: usize| scan.response(t)[i] as f64;
            let means: Vec<f64> = oracle
                .values()
                .map(|ts| ts.iter().map(|&t| r(t)).sum::<f64>() / ts.len() as f64)
                .collect();
            let var = |v: &[f64]| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
            };
            let noise = oracle
                .values()
                .map(|ts| var(&ts.iter().map(|&t| r(t)).collect::<Vec<_>>()))
                .sum::<f64>()
                / oracle.len() as f64;
            let signal = var(&means);
            if signal == 0.0 || noise == 0.0 {
                0.0
            } else {
                (signal / noise).sqrt()
            }
        })
        .collect()
}

/// Eq. 2 and 3 in f64, straight from the definition.
fn naive_oracle(scan: &Scan, ids: &[i64]) -> Vec<f64> {
    let w = naive_weights(scan);
    let oracle = scan.oracle_trials();
    let trials: Vec<(usize, usize)> = ids
        .iter()
        .enumerate()
        .flat_map(|(a, id)| oracle[id].iter().map(move |&t| (a, t)))
        .collect();
    let x: Vec<Vec<f64>> = trials
        .iter()
        .map(|&(_, t)| {
            scan.response(t)
                .iter()
                .zip(&w)
                .map(|(&r, w)| r as f64 * w)
                .collect()
        })
        .collect();
    let n = scan.n_neurons();
    let mean: Vec<f64> = (0..n)
        .map(|i| x.iter().map(|row| row[i]).sum::<f64>() / x.len() as f64)
        .collect();
    let e: Vec<Vec<f64>> = x
        .iter()
        .map(|row| {
            let c: Vec<f64> = row.iter().zip(&mean).map(|(a, b)| a - b).collect();
            let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
            c.iter().map(|v| v / norm).collect()
        })
        .collect();
    let k = ids.len();
    let mut sums = vec![0.0; k * k];
    let mut counts = vec![0.0; k * k];
    for (p, &(a, _)) in trials.iter().enumerate() {
        for (q, &(b, _)) in trials.iter().enumerate() {
            if p != q {
                sums[a * k + b] += e[p].iter().zip(&e[q]).map(|(u, v)| u * v).sum::<f64>();
                counts[a * k + b] += 1.0;
            }
        }
    }
    sums.iter().zip(&counts).map(|(s, c)| s / c).collect()
}

#[test]
fn synth_info_snr_oracle_variability() {
    let dir = tempfile::tempdir().unwrap();
    let paths = synth(dir.path());
    assert_eq!(paths.len(), 2);
    let scans: Vec<Scan> = paths
        .iter()
        .map(|p| load_scan(p, LoadOptions::default(), &Silent).unwrap())
        .collect();

    let info = ok(&["info", paths[0].to_str().unwrap()]);
    assert!(info.contains("trials: 64\n"), "{info}");
    assert!(
        info.contains(&format!("neurons: {}\n", scans[0].n_neurons())),
        "{info}"
    );
    assert!(info.contains("oracle images: 6 (repeats 4)"), "{info}");
    assert!(
        info.contains("tiers: train") && info.contains("running speed:"),
        "{info}"
    );

    let snr = dir.path().join("w.npy");
    ok(&[
        "snr",
        paths[0].to_str().unwrap(),
        "--out",
        snr.to_str().unwrap(),
    ]);
    let w = npy_f32(&snr);
    for (a, b) in w.iter().zip(naive_weights(&scans[0])) {
        assert!((*a as f64 - b).abs() < 1e-4 * b.max(1.0), "{a} vs {b}");
    }

    let out = dir.path().join("oracle");
    ok(&[
        "oracle",
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let ids = read_i64(&std::fs::read(out.join("image_ids.npy")).unwrap(), "ids")
        .unwrap()
        .data;
    let want_ids: Vec<i64> = scans[0].oracle_trials().into_keys().collect();
    assert_eq!(ids, want_ids);
    for scan in &scans {
        let m = npy_f32(&out.join(format!("{}.npy", scan.name)));
        let k = ids.len();
        assert_eq!(m.len(), k * k);
        for (a, b) in m.iter().zip(naive_oracle(scan, &ids)) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
        for a in 0..k {
            assert!(m[a * k + a] < 1.0);
            for b in 0..k {
                assert_eq!(m[a * k + b], m[b * k + a]);
                assert!((-1.0..=1.0).contains(&m[a * k + b]));
            }
        }
    }

    let json = dir.path().join("v.json");
    ok(&[
        "variability",
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["delta_scan"]["count"], 2 * 15);
    assert_eq!(v["delta_repeat"]["count"], 2 * 15 * 16);
    let counts = |key: &str| {
        v[key]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(counts("delta_scan_histogram"), 30);
    assert_eq!(counts("delta_repeat_histogram"), 480);
    assert!(v["delta_scan"]["std"].as_f64().unwrap() < v["delta_repeat"]["std"].as_f64().unwrap());
}

#[test]
fn errors_name_the_file_and_exit_non_zero() {
    let out = neureg(&["info", "/no/such/scan.zip"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/scan.zip"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.zip");
    std::fs::write(&bad, b"PK junk").unwrap();
    let out = neureg(&[
        "oracle",
        bad.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.zip"));

    let out = neureg(&["--device", "tpu", "info", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device"));
}

#[test]
fn oracle_uses_the_images_common_to_all_scans() {
    let dir = tempfile::tempdir().unwrap();
    let paths = synth(dir.path());
    // Drop one oracle image's repeats from the second scan: show it once only.
    let mut scan = load_scan(&paths[1], LoadOptions::default(), &Silent).unwrap();
    let oracle: BTreeMap<i64, Vec<usize>> = scan.oracle_trials();
    let (&dropped, trials) = oracle.iter().next().unwrap();
    let keep: Vec<usize> = (0..scan.n_trials())
        .filter(|t| !trials[1..].contains(t))
        .collect();
    let n = scan.n_neurons();
    scan.responses = keep
        .iter()
        .flat_map(|&t| scan.response(t).to_vec())
        .collect::<Vec<_>>();
    scan.image_ids = keep.iter().map(|&t| scan.image_ids[t]).collect();
    scan.tiers = keep.iter().map(|&t| scan.tiers[t]).collect();
    scan.behavior = scan.behavior.map(|b| keep.iter().map(|&t| b[t]).collect());
    scan.pupil_center = scan
        .pupil_center
        .map(|b| keep.iter().map(|&t| b[t]).collect());
    scan.ground_truth = scan.ground_truth.map(|g| {
        keep.iter()
            .flat_map(|&t| g[t * n..(t + 1) * n].to_vec())
            .collect()
    });
    let edited = dir.path().join("edited.zip");
    neureg::data::write_scan(&scan, &edited).unwrap();
    let out_dir = dir.path().join("o");
    let out = neureg(&[
        "oracle",
        paths[0].to_str().unwrap(),
        edited.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("scan_1: 1 oracle images not repeated in every scan are left out"));
    let ids = read_i64(
        &std::fs::read(out_dir.join("image_ids.npy")).unwrap(),
        "ids",
    )
    .unwrap()
    .data;
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&dropped));
}

#[test]
fn train_writes_run_folders_for_a_sweep_and_resumes_a_finished_run_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let runs = dir.path().join("runs");
    let args = [
        "train",
        "--data",
        &format!("{root}/sample_data/fashion-mnist"),
        "--images",
        &format!("{root}/sample_data/scans/scan_1.zip"),
        "--condition",
        "shuffle",
        "--target",
        &format!("{root}/sample_data/targets/neural_model.npy"),
        "--train-limit",
        "32",
        "--test-limit",
        "16",
        "--width",
        "0.0625",
        "--batch",
        "16",
        "--epochs",
        "1",
        "--log-every",
        "1",
        "--seeds",
        "0,1",
        "--out",
        runs.to_str().unwrap(),
    ];
    let text = ok(&args);
    assert!(text.contains("Finished"), "{text}");
    for seed in [0, 1] {
        let run = runs.join(format!("shuffle-a20-seed{seed}"));
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["seed"], seed);
        assert_eq!(config["condition"], "shuffle");
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        assert_eq!(
            metrics.lines().count(),
            2 + 1 + 1,
            "2 steps, an epoch, the end"
        );
        assert!(run.join("checkpoints/last.safetensors").is_file());
    }
    // The same command again finds the finished runs and leaves them as they are.
    let before = std::fs::read(runs.join("shuffle-a20-seed0/metrics.jsonl")).unwrap();
    ok(&args);
    assert_eq!(
        std::fs::read(runs.join("shuffle-a20-seed0/metrics.jsonl")).unwrap(),
        before
    );
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 2);

    // Robustness of a trained run from the command line.
    let run = runs.join("shuffle-a20-seed0");
    let noise = dir.path().join("noise.json");
    let text = ok(&[
        "eval-noise",
        run.to_str().unwrap(),
        "--samples",
        "20",
        "--levels",
        "0,0.1",
        "--out",
        noise.to_str().unwrap(),
    ]);
    assert!(
        text.contains("Shuffle (a = 20, 1 run): accuracy at 0.10"),
        "{text}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&noise).unwrap()).unwrap();
    assert_eq!(
        summary["conditions"][0]["levels"],
        serde_json::json!([0.0, 0.1])
    );
    let adv = dir.path().join("adv");
    let text = ok(&[
        "attack",
        run.to_str().unwrap(),
        "--attack",
        "deepfool",
        "--norm",
        "l2",
        "--samples",
        "4",
        "--out",
        adv.to_str().unwrap(),
    ]);
    assert!(text.contains("DeepFool L2 on 4 samples"), "{text}");
    assert!(
        text.contains("robustness score (L2, best of the stored DeepFool): median"),
        "{text}"
    );
    assert!(adv.join("result.json").is_file());
    assert!(run.join("results/attack_deepfool_l2.json").is_file());
    // Fig. 5: the median against the iteration budget.
    let text = ok(&[
        "attack",
        run.to_str().unwrap(),
        "--attack",
        "deepfool",
        "--samples",
        "4",
        "--budgets",
        "1,3",
        "--out",
        adv.to_str().unwrap(),
    ]);
    assert!(
        text.contains("    1 steps: median") && text.contains("    3 steps: median"),
        "{text}"
    );
    assert!(run.join("results/budget_deepfool_linf.json").is_file());
    // The sweep's shortened attacks are not stored as the run's attack result.
    assert!(!run.join("results/attack_deepfool_linf.json").exists());
    let out = neureg(&[
        "attack",
        run.to_str().unwrap(),
        "--attack",
        "fgsm",
        "--norm",
        "l2",
        "--out",
        adv.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no L2 version"));
    let out = neureg(&[
        "attack",
        run.to_str().unwrap(),
        "--attack",
        "boundary",
        "--out",
        adv.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'boundary'"));

    // Bad input: an unknown data set path and a bad tap are clear errors, and leave no folder.
    let out = neureg(&[
        "train",
        "--data",
        "/nonexistent/set",
        "--out",
        runs.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/set"));
    let out = neureg(&["train", "--taps", "1,40", "--out", runs.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 17"));
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 2);
}
