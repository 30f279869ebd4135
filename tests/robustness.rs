//! Robustness evaluation (SPEC 8): attacks on a linear classifier against the
//! closed-form minimal distances, noise curves and attacks on a trained run,
//! and the errors a user can cause.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use neureg::eval::attacks::deepfool::{deepfool, DeepFoolConfig};
use neureg::eval::attacks::fgsm::fgsm;
use neureg::eval::attacks::pgd::{pgd_candidates, PgdConfig};
use neureg::eval::attacks::{epsilon_search, misclassified, verify_best, Model, Norm};
use neureg::eval::minimal::{attack_run, AttackConfig, AttackName};
use neureg::eval::noise::{noise_curve, NoiseKind};
use neureg::progress::Silent;
use neureg::runs::{Condition, RunConfig};
use neureg::train::classifier::{load_classifier, train_run};
use rand::{Rng, SeedableRng};

/// `logits = x W^T + b` on flattened images.
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Model for Linear {
    fn logits(&self, images: &Tensor) -> neureg::Result<Tensor> {
        let x = images.flatten_from(1)?;
        Ok(x.matmul(&self.w.t()?)?.broadcast_add(&self.b)?)
    }
}

/// A two-class linear model on 8 x 8 images and images near 0.5 it classifies as class 0 or 1,
/// with the exact minimal L2 and Linf distances to its boundary: |z0 - z1| / ||w0 - w1|| in the
/// dual norm (the box [0, 1] is never reached: the images stay within 0.5 +- 0.1 and the
/// distances are small).
fn linear_case() -> (Linear, Tensor, Vec<u32>, Vec<f32>, Vec<f32>) {
    let dev = Device::Cpu;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let d = 64;
    let w: Vec<f32> = (0..2 * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let model = Linear {
        w: Tensor::from_vec(w.clone(), (2, d), &dev).unwrap(),
        b: Tensor::new(&[0.0f32, 0.0], &dev).unwrap(),
    };
    let diff: Vec<f32> = (0..d).map(|k| w[k] - w[d + k]).collect();
    let l1: f32 = diff.iter().map(|v| v.abs()).sum();
    let l2: f32 = diff.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mut pixels = Vec::new();
    let (mut labels, mut dist_l2, mut dist_linf) = (Vec::new(), Vec::new(), Vec::new());
    while labels.len() < 12 {
        let x: Vec<f32> = (0..d)
            .map(|_| 0.5 + rng.random_range(-0.1f32..0.1))
            .collect();
        let margin: f32 = x.iter().zip(&diff).map(|(a, b)| a * b).sum();
        if margin.abs() < 0.05 {
            continue;
        }
        labels.push(if margin > 0.0 { 0 } else { 1 });
        dist_l2.push(margin.abs() / l2);
        dist_linf.push(margin.abs() / l1);
        pixels.extend(x);
    }
    let images = Tensor::from_vec(pixels, (12, 1, 8, 8), &dev).unwrap();
    (model, images, labels, dist_l2, dist_linf)
}

#[test]
fn the_attacks_find_the_closed_form_minimal_distances_of_a_linear_classifier() {
    let (model, images, labels, dist_l2, dist_linf) = linear_case();
    assert!(!misclassified(&model, &images, &labels)
        .unwrap()
        .iter()
        .any(|&m| m));
    let y = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    for (norm, truth, max_eps) in [(Norm::Linf, &dist_linf, 0.5f32), (Norm::L2, &dist_l2, 4.0)] {
        let config = PgdConfig::foolbox(norm);
        let found = epsilon_search(&model, &images, &labels, norm, max_eps, 14, &mut |eps| {
            pgd_candidates(&model, &images, &y, eps, &config)
        })
        .unwrap();
        for (i, (&f, &t)) in found.distance.iter().zip(truth.iter()).enumerate() {
            assert!(
                f >= t * 0.999,
                "{norm:?} sample {i}: {f} below the minimum {t}"
            );
            assert!(
                f <= t * 1.03,
                "{norm:?} sample {i}: {f} against the minimum {t}"
            );
        }
        // Every reported adversarial is misclassified.
        assert!(misclassified(&model, &found.adversarial, &labels)
            .unwrap()
            .iter()
            .all(|&m| m));
    }
    // DeepFool reaches the minimum in one linearisation, times its overshoot of 2%.
    for (norm, truth) in [(Norm::L2, &dist_l2), (Norm::Linf, &dist_linf)] {
        let adv = deepfool(&model, &images, &labels, &DeepFoolConfig::foolbox(norm)).unwrap();
        let found = verify_best(&model, &images, &[adv], &labels, norm).unwrap();
        for (&f, &t) in found.distance.iter().zip(truth.iter()) {
            assert!(
                f >= t * 0.999 && f <= t * 1.03,
                "DeepFool {norm:?}: {f} against {t}"
            );
        }
    }
    // FGSM is one step: for a linear two-class model its Linf minimum is the truth too.
    let found = epsilon_search(&model, &images, &labels, Norm::Linf, 0.5, 14, &mut |eps| {
        Ok(vec![fgsm(&model, &images, &y, eps)?])
    })
    .unwrap();
    for (&f, &t) in found.distance.iter().zip(&dist_linf) {
        assert!(f >= t * 0.999 && f <= t * 1.03, "FGSM {f} against {t}");
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tiny trained run on the sample Fashion-MNIST images.
fn tiny_run(dir: &Path) -> PathBuf {
    let config = RunConfig {
        data: root().join("sample_data/fashion-mnist"),
        train_limit: 512,
        test_limit: 64,
        width: 0.125,
        epochs: 3,
        batch: 32,
        lr: 0.05,
        condition: Condition::None,
        ..RunConfig::default()
    };
    let run = dir.join("run");
    train_run(&run, &config, &Device::Cpu, &Silent).unwrap();
    run
}

/// Why evaluating `run` at noise level 0 on 10 images fails.
fn one_level(run: &Path) -> neureg::Error {
    noise_curve(
        run,
        NoiseKind::Gaussian,
        &[0.0],
        10,
        0,
        &Device::Cpu,
        &Silent,
        &mut |_, _| {},
    )
    .unwrap_err()
}

#[test]
fn noise_curves_and_attacks_on_a_trained_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_run(dir.path());
    let mut heard = Vec::new();
    let curve = noise_curve(
        &run,
        NoiseKind::Gaussian,
        &[0.0, 0.05, 0.5],
        100,
        0,
        &Device::Cpu,
        &Silent,
        &mut |k, a| heard.push((k, a)),
    )
    .unwrap();
    assert_eq!(heard.len(), 3, "each level reported as it finishes");
    assert_eq!(curve.samples, 100);
    // Level 0 is the clean accuracy of the same images, computed independently here.
    let model = load_classifier(&run, &Device::Cpu).unwrap();
    let set = neureg::eval::noise::evaluation_images(&RunConfig::load(&run).unwrap(), 100).unwrap();
    let x = Tensor::from_vec(set.pixels.clone(), (100, 1, 32, 32), &Device::Cpu).unwrap();
    let predicted = model.predict(&x).unwrap();
    let clean = predicted
        .iter()
        .zip(&set.labels)
        .filter(|(p, l)| p == l)
        .count() as f64
        / 100.0;
    assert_eq!(curve.accuracy[0], clean);
    assert!(
        clean > 0.2,
        "the tiny run is better than chance (0.1): {clean}"
    );
    // The same draws every time, stored in the run folder.
    let again = noise_curve(
        &run,
        NoiseKind::Gaussian,
        &[0.0, 0.05, 0.5],
        100,
        0,
        &Device::Cpu,
        &Silent,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(again, curve);
    assert!(run.join("results/noise_gaussian.json").is_file());

    // PGD on the trained network: every reported adversarial is misclassified.
    let x = x.narrow(0, 0, 8).unwrap();
    let labels = &set.labels[..8];
    let y = Tensor::new(labels, &Device::Cpu).unwrap();
    // Fewer steps than foolbox's 40 keep the test short; the linear test checks the defaults.
    let config = PgdConfig {
        steps: 10,
        ..PgdConfig::foolbox(Norm::Linf)
    };
    let found = epsilon_search(&model, &x, labels, Norm::Linf, 0.3, 3, &mut |eps| {
        pgd_candidates(&model, &x, &y, eps, &config)
    })
    .unwrap();
    let fooled = misclassified(&model, &found.adversarial, labels).unwrap();
    for (i, &d) in found.distance.iter().enumerate() {
        if d.is_finite() {
            assert!(
                fooled[i],
                "sample {i} reported at {d} but classified correctly"
            );
        }
    }

    // Bad input: more samples than the test set, a run without a checkpoint.
    let e = noise_curve(
        &run,
        NoiseKind::Gaussian,
        &[0.0],
        5000,
        0,
        &Device::Cpu,
        &Silent,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("has 1000"), "{e}");
    let bad = AttackConfig {
        attack: AttackName::Fgsm,
        norm: Norm::L2,
        samples: 4,
        batch: 4,
        rounds: 2,
        steps: 0,
        seed: 0,
    };
    let e = attack_run(&run, &bad, &Device::Cpu, &Silent, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("has no L2 version"), "{e}");
    // A checkpoint of another architecture: the run's config now says another width.
    let config_path = run.join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        original.replace("\"width\": 0.125", "\"width\": 0.25"),
    )
    .unwrap();
    let e = one_level(&run);
    assert!(e.to_string().contains("another architecture"), "{e}");
    std::fs::write(&config_path, original).unwrap();
    std::fs::remove_file(run.join("checkpoints/last.safetensors")).unwrap();
    let e = one_level(&run);
    assert!(e.to_string().contains("missing checkpoint"), "{e}");
}
