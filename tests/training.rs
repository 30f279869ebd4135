//! Regularised classifier training (docs/method.md section 7) end to end: the classification
//! readers on real files, the joint loss, resuming a killed run, NaN stops and
//! the errors a user can cause.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use neureg::data::augment::{augment, pad_to_32};
use neureg::data::load_classification_set;
use neureg::data::{load_scan, LoadOptions};
use neureg::nn::kernels::batch_norm::BnMode;
use neureg::nn::models::resnet::{Depth, ResNet, ResNetConfig};
use neureg::nn::optim::sgd::Sgd;
use neureg::nn::seeded_init::seeded_var_builder;
use neureg::progress::{Progress, Silent};
use neureg::runs::RunDir;
use neureg::runs::{BnStatistics, Condition, MetricEvent, RunConfig, RunStatus};
use neureg::similarity::target::{data_target, save_target, single_shown_images};
use neureg::train::classifier::train_run;
use neureg::train::similarity_loss::{atanh_clamped, similarity_loss};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The 20 real CIFAR-10 test images: (label, RGB pixels) from `cifar10_<index>_<label>.png`.
fn cifar_fixtures() -> Vec<(u8, Vec<u8>)> {
    let dir = root().join("tests/fixtures/cifar10");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            let label: u8 = stem.rsplit('_').next().unwrap().parse().unwrap();
            let rgb = image::open(f).unwrap().to_rgb8();
            (label, rgb.into_raw())
        })
        .collect()
}

/// CIFAR-10 binary records (label, then the red, green and blue planes).
fn cifar_records(images: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (label, rgb) in images {
        out.push(*label);
        for c in 0..3 {
            out.extend(rgb.chunks_exact(3).map(|p| p[c]));
        }
    }
    out
}

/// Writes a CIFAR-10 binary `.tar.gz` of the fixtures (4 per training batch, all 20 as test).
fn cifar_archive(path: &Path) {
    let images = cifar_fixtures();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), bytes)
            .unwrap();
    };
    for b in 0..5 {
        add(
            &format!("data_batch_{}.bin", b + 1),
            &cifar_records(&images[4 * b..4 * b + 4]),
        );
    }
    add("test_batch.bin", &cifar_records(&images));
    add(
        "batches.meta.txt",
        b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n",
    );
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn cifar_archive_and_image_folder_read_the_real_images_in_grayscale() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    cifar_archive(&archive);
    let set = load_classification_set(&archive).unwrap();
    let fixtures = cifar_fixtures();
    assert_eq!(set.classes[3], "cat");
    assert_eq!((set.train.len(), set.test.len()), (20, 20));
    assert_eq!(set.train.shape, (32, 32));
    for (i, (label, rgb)) in fixtures.iter().enumerate() {
        assert_eq!(set.test.labels[i], *label as u32);
        // Luminance, BT.601, computed here from the PNG's own pixels.
        for p in [0, 517, 1023] {
            let (r, g, b) = (
                rgb[3 * p] as f32,
                rgb[3 * p + 1] as f32,
                rgb[3 * p + 2] as f32,
            );
            let expected = (0.299 * r + 0.587 * g + 0.114 * b) / 255.0;
            assert!((set.test.image(i)[p] - expected).abs() < 1e-5);
        }
    }
    assert_eq!(set.test.labels[..4], [3, 8, 8, 0]);

    // The same images as an image folder, one subfolder per class.
    let folder = dir.path().join("folder");
    for (i, f) in std::fs::read_dir(root().join("tests/fixtures/cifar10"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .enumerate()
    {
        let label = f
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .rsplit('_')
            .next()
            .unwrap()
            .to_string();
        std::fs::create_dir_all(folder.join(&label)).unwrap();
        std::fs::copy(&f, folder.join(&label).join(format!("{i:02}.png"))).unwrap();
    }
    let set = load_classification_set(&folder).unwrap();
    assert_eq!(set.train.len() + set.test.len(), 20);
    assert!(set.classes.contains(&"8".to_string()));

    // A truncated archive names the file.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_classification_set(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.tar.gz"), "{e}");
}

#[test]
fn the_shipped_fashion_mnist_sample_loads_and_pads_to_32() {
    let set = load_classification_set(&root().join("sample_data/fashion-mnist")).unwrap();
    assert_eq!((set.train.len(), set.test.len()), (6000, 1000));
    assert_eq!(set.train.shape, (28, 28));
    assert_eq!(set.classes[9], "Ankle boot");
    let padded = pad_to_32(set.train);
    assert_eq!(padded.shape, (32, 32));
    assert_eq!(padded.image(0)[..64], [0.0; 64]);

    // A truncated gzip is an error that names the file.
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(root().join("sample_data/fashion-mnist")).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let labels = dir.path().join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() - 20]).unwrap();
    let e = load_classification_set(dir.path()).unwrap_err().to_string();
    assert!(e.contains("t10k-labels-idx1-ubyte.gz"), "{e}");
    let e = load_classification_set(&dir.path().join("nothing"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn one_step_lowers_the_joint_loss_and_theta_learns() {
    let dev = common::device();
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 1, &dev);
    let config = ResNetConfig {
        depth: Depth::Resnet18,
        width: 0.125,
        classes: 3,
        taps: vec![1, 5, 9, 13, 17],
        blur: None,
    };
    let net = ResNet::new(&config, vb.clone()).unwrap();
    let theta = vb
        .get_with_hints(5, "similarity.theta", candle_nn::Init::Const(0.0))
        .unwrap();
    let x = Tensor::randn(0f32, 1., (8, 1, 32, 32), &dev).unwrap();
    let y = Tensor::new(&[0u32, 1, 2, 0, 1, 2, 0, 1], &dev).unwrap();
    let sx = Tensor::randn(0f32, 1., (6, 1, 36, 64), &dev).unwrap();
    let target = Tensor::eye(6, DType::F32, &dev).unwrap();
    let target = atanh_clamped(&((target * 0.6).unwrap() + 0.2).unwrap()).unwrap();
    let joint = || {
        let logits = net.logits(&x, BnMode::Train).unwrap();
        let task = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
        let sim =
            similarity_loss(&net.taps(&sx, BnMode::BatchOnly).unwrap(), &theta, &target).unwrap();
        (task + (sim.loss * 2.0).unwrap()).unwrap()
    };
    let named = neureg::nn::named_vars(&varmap);
    let mut sgd = Sgd::new(named, 0.01, 0.9, 5e-4, vec![]);
    let before = joint();
    let grads = before.backward().unwrap();
    let g_theta = grads.get(&theta).expect("theta receives a gradient");
    assert!(
        g_theta
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 0.0
    );
    let theta_before = theta.to_vec1::<f32>().unwrap();
    sgd.apply(&grads).unwrap();
    let after = joint().to_scalar::<f32>().unwrap();
    let before = before.to_scalar::<f32>().unwrap();
    assert!(after < before, "joint loss {before} -> {after}");
    assert_ne!(theta.to_vec1::<f32>().unwrap(), theta_before);
}

/// Cancels when the named stage begins (a kill at a chosen moment).
struct KillAt(&'static str, AtomicBool);

impl Progress for KillAt {
    fn stage(&self, name: &str, _total: u64) {
        if name == self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
    fn advance(&self, _n: u64) {}
    fn is_cancelled(&self) -> bool {
        self.1.load(Ordering::SeqCst)
    }
}

/// Asks for a pause once `after` batches of the named stage are done (a cluster's signal).
struct PauseAt(&'static str, usize, std::sync::Mutex<(bool, usize)>);

impl Progress for PauseAt {
    fn stage(&self, name: &str, _total: u64) {
        *self.2.lock().unwrap() = (name == self.0, 0);
    }
    fn advance(&self, n: u64) {
        self.2.lock().unwrap().1 += n as usize;
    }
    fn pause_requested(&self) -> bool {
        let (in_stage, done) = *self.2.lock().unwrap();
        in_stage && done >= self.1
    }
}

/// A tiny regularised run on the shipped samples with the Neural (data) target of scan 1.
fn tiny_config(dir: &Path) -> RunConfig {
    let scan_path = root().join("sample_data/scans/scan_1.zip");
    let scan = load_scan(&scan_path, LoadOptions::default(), &Silent).unwrap();
    let ids = single_shown_images(&scan).ids;
    let target = data_target(&[&scan], &ids, &common::device()).unwrap();
    let target_path = dir.join("neural_data.npy");
    save_target(&target_path, &target).unwrap();
    RunConfig {
        data: root().join("sample_data/fashion-mnist"),
        train_limit: 96,
        test_limit: 40,
        depth: Depth::Resnet18,
        width: 0.125,
        taps: vec![],
        condition: Condition::NeuralData,
        target: Some(target_path),
        feature_tap: 9,
        feature_layer: "conv3_1".into(),
        images: scan_path,
        strength: 5.0,
        seed: 3,
        epochs: 2,
        batch: 16,
        lr: 0.05,
        schedule: neureg::nn::optim::schedule::Schedule::Paper,
        optimizer: neureg::runs::Optimizer::Sgd,
        momentum: 0.9,
        weight_decay: 5e-4,
        log_every: 2,
        bn_statistics: BnStatistics::Classification,
        // The rules for the running statistics are tested as they act between recomputations.
        precise_bn_batches: 0,
        similarity_batch: 0,
        pixel_threshold: 0.8,
        blur_sigma: 1.5,
        version: String::new(),
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_result_as_an_unbroken_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path());
    let unbroken = dir.path().join("unbroken");
    let info = train_run(&unbroken, &config, &common::device(), &Silent).unwrap();
    assert_eq!(info.status(), RunStatus::Finished);
    let epochs = info
        .events
        .iter()
        .filter(|e| matches!(e, MetricEvent::Epoch { .. }))
        .count();
    assert_eq!(epochs, 2);
    let steps: Vec<&MetricEvent> = info
        .events
        .iter()
        .filter(|e| matches!(e, MetricEvent::Step { .. }))
        .collect();
    assert_eq!(steps.len(), 6, "96 / 16 = 6 steps an epoch, a line every 2");
    if let MetricEvent::Step {
        sim_loss, gamma, ..
    } = steps[0]
    {
        assert!(*sim_loss > 0.0);
        assert!((gamma.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    }

    // Killed as epoch 2 starts, with a half-written metrics line after the checkpoint.
    let killed = dir.path().join("killed");
    let kill = KillAt("epoch 2/2", AtomicBool::new(false));
    assert!(train_run(&killed, &config, &common::device(), &kill).is_err());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(killed.join("metrics.jsonl"))
        .unwrap();
    f.write_all(b"{\"event\":\"step\",\"epoch\":1,\"step\":8,\"task_lo")
        .unwrap();
    drop(f);
    let resumed = train_run(&killed, &config, &common::device(), &Silent).unwrap();
    assert_eq!(
        resumed.events, info.events,
        "no metrics line lost or repeated"
    );
    let a = std::fs::read(RunDir(&unbroken).checkpoint()).unwrap();
    let b = std::fs::read(RunDir(&killed).checkpoint()).unwrap();
    assert!(
        a == b,
        "the resumed run ends with the unbroken run's weights"
    );

    // Paused mid-epoch (3 of 6 batches of epoch 2 done, between two metrics lines), resumed.
    let paused = dir.path().join("paused");
    let pause = PauseAt("epoch 2/2", 3, Default::default());
    let e = train_run(&paused, &config, &common::device(), &pause).unwrap_err();
    assert!(matches!(e, neureg::Error::Paused(_)), "{e}");
    let before = neureg::runs::store::RunInfo::read(&paused).unwrap();
    assert_eq!(before.status(), RunStatus::Incomplete);
    let resumed = train_run(&paused, &config, &common::device(), &Silent).unwrap();
    assert_eq!(resumed.events, info.events, "no line lost or repeated");
    assert!(std::fs::read(RunDir(&paused).checkpoint()).unwrap() == a);

    // The folder now holds that run: another configuration is refused.
    let other = RunConfig {
        seed: 4,
        ..config.clone()
    };
    let e = train_run(&killed, &other, &common::device(), &Silent).unwrap_err();
    assert!(e.to_string().contains("another configuration"), "{e}");
}

#[test]
fn a_nan_loss_stops_the_run_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        lr: 1e30,
        epochs: 1,
        ..tiny_config(dir.path())
    };
    let run = dir.path().join("run");
    let e = train_run(&run, &config, &common::device(), &Silent).unwrap_err();
    assert!(e.to_string().contains("not finite"), "{e}");
    let info = neureg::runs::store::RunInfo::read(&run).unwrap();
    assert!(matches!(info.status(), RunStatus::Stopped(r) if r.contains("not finite")));
}

#[test]
fn bad_targets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_config(dir.path());
    // A non-square custom matrix.
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, neureg::data::npy::encode(&[2, 3], &[0f32; 6])).unwrap();
    let config = RunConfig {
        condition: Condition::Custom,
        target: Some(bad),
        ..base.clone()
    };
    let e = train_run(&dir.path().join("r1"), &config, &common::device(), &Silent).unwrap_err();
    assert!(
        e.to_string().contains("bad.npy") && e.to_string().contains("square"),
        "{e}"
    );
    // A condition without a target.
    let config = RunConfig {
        condition: Condition::Shuffle,
        target: None,
        ..base
    };
    let e = train_run(&dir.path().join("r2"), &config, &common::device(), &Silent).unwrap_err();
    assert!(e.to_string().contains("needs --target"), "{e}");
}

#[test]
fn the_feature_control_takes_its_target_from_another_runs_network() {
    let dir = tempfile::tempdir().unwrap();
    let base = RunConfig {
        epochs: 1,
        ..tiny_config(dir.path())
    };
    let first = dir.path().join("first");
    train_run(
        &first,
        &RunConfig {
            condition: Condition::None,
            ..base.clone()
        },
        &common::device(),
        &Silent,
    )
    .unwrap();
    let config = RunConfig {
        condition: Condition::Feature,
        target: Some(first.clone()),
        feature_tap: 5,
        ..base
    };
    let target = neureg::train::targets::load_sim_target(&config, &common::device())
        .unwrap()
        .unwrap();
    let n = target.len();
    assert_eq!(n, 500, "the single-shown images of the sample scan");
    for a in [0, 7, 300] {
        assert!(
            (target.matrix[a * n + a] - 1.0).abs() < 1e-4,
            "cosine self-similarity is 1"
        );
        assert!((target.matrix[a * n + 11] - target.matrix[11 * n + a]).abs() < 1e-5);
    }
    let run = train_run(
        &dir.path().join("feature"),
        &config,
        &common::device(),
        &Silent,
    )
    .unwrap();
    assert_eq!(run.status(), RunStatus::Finished);
}

/// Every batch-norm running statistic of a run's checkpoint, by name.
fn running_statistics(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let tensors =
        candle_core::safetensors::load(RunDir(dir).checkpoint(), &common::device()).unwrap();
    let mut stats: Vec<(String, Vec<f32>)> = tensors
        .iter()
        .filter(|(k, _)| k.ends_with("running_mean") || k.ends_with("running_var"))
        .map(|(k, t)| (k.clone(), t.to_vec1::<f32>().unwrap()))
        .collect();
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    stats
}

#[test]
fn the_running_statistics_come_from_the_classification_batches_alone() {
    // A similarity loss of strength 1e-30 leaves the weights' trajectory that of the unregularised
    // run (its gradients vanish in rounding) while the similarity pass still goes through the
    // network every step: the running statistics must then be those of the None run.
    let dir = tempfile::tempdir().unwrap();
    let base = RunConfig {
        epochs: 1,
        ..tiny_config(dir.path())
    };
    let none = dir.path().join("none");
    let config = |condition, strength, bn_statistics| RunConfig {
        condition,
        strength,
        bn_statistics,
        ..base.clone()
    };
    train_run(
        &none,
        &config(Condition::None, 0.0, BnStatistics::Classification),
        &common::device(),
        &Silent,
    )
    .unwrap();
    let reference = running_statistics(&none);
    assert!(reference.len() > 30, "every batch norm is checked");
    let largest_gap = |dir: &Path| {
        running_statistics(dir)
            .iter()
            .zip(&reference)
            .flat_map(|((ka, a), (kb, b))| {
                assert_eq!(ka, kb);
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
            })
            .fold(0f32, f32::max)
    };
    for rule in [BnStatistics::Classification, BnStatistics::SimilarityEval] {
        let run = dir.path().join(format!("{rule:?}"));
        train_run(
            &run,
            &config(Condition::NeuralData, 1e-30, rule),
            &common::device(),
            &Silent,
        )
        .unwrap();
        let gap = largest_gap(&run);
        assert!(gap < 1e-4, "{rule:?}: running statistics differ by {gap}");
    }
    // The rule of the runs made before the fix mixes the scan images in: the check can fail.
    let mixed = dir.path().join("mixed");
    train_run(
        &mixed,
        &config(Condition::NeuralData, 1e-30, BnStatistics::Mixed),
        &common::device(),
        &Silent,
    )
    .unwrap();
    assert!(largest_gap(&mixed) > 0.05, "the mixed rule moves them");
}

/// Accuracy on the first `n` training images, augmented as in training (one fixed draw, so
/// both modes see the same images: the running statistics are those of augmented images), with
/// batch norm in `mode`.
fn training_accuracy(run: &Path, n: usize, mode: BnMode) -> f64 {
    let config = RunConfig::load(run).unwrap();
    let model = neureg::runs::classifier::load_classifier(run, &common::device()).unwrap();
    let train = pad_to_32(load_classification_set(&config.data).unwrap().train).truncated(n);
    let (h, w) = train.shape;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
    let pixels: Vec<f32> = (0..n)
        .flat_map(|i| augment(train.image(i), (h, w), &mut rng))
        .collect();
    let x = Tensor::from_vec(pixels, (n, 1, h, w), &common::device()).unwrap();
    let x = ((x - model.mean as f64).unwrap() / model.std as f64).unwrap();
    let logits = model.net.logits(&x, mode).unwrap();
    let predicted = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap();
    let correct = (0..n).filter(|&i| predicted[i] == train.labels[i]).count();
    correct as f64 / n as f64
}

#[test]
fn a_regularised_run_classifies_its_training_images_alike_in_evaluation_and_training_mode() {
    // The README's demo scenario that exposed the defect (Shuffle at strength 20), shortened.
    // The learning rate anneals to 0 (cosine), so that the last steps leave the weights where
    // the running statistics were gathered. Even so, after 60 steps on batches of 16 evaluation
    // mode stays below training mode, by an amount that changes with the seed and the last bit
    // of the arithmetic: measured 0.16, 0.16, 0.06 (seeds 0-2, mean 0.13) on augmented images,
    // 0.15, 0.10, 0.07 on plain ones, against 0.28, 0.31, 0.16 (mean 0.25) for the rule that
    // mixes the scan images in. So the gaps are averaged over three seeds and the fixed rule
    // must stay well below the defect's gap. The remaining gap is the running averages' lag
    // behind the weights: statistics recomputed at the final weights (200 training-mode passes
    // over augmented batches of 16, no steps) gave evaluation 0.50, 0.59, 0.59 against training
    // mode 0.52, 0.60, 0.57 (measured once, by hand, on these runs).
    let dir = tempfile::tempdir().unwrap();
    let accuracies = |rule, seed| {
        let run = dir.path().join(format!("{rule:?}-{seed}"));
        let c = RunConfig {
            train_limit: 320,
            epochs: 3,
            condition: Condition::Shuffle,
            strength: 20.0,
            seed,
            schedule: neureg::nn::optim::schedule::Schedule::Cosine,
            bn_statistics: rule,
            ..tiny_config(dir.path())
        };
        train_run(&run, &c, &common::device(), &Silent).unwrap();
        let n = 256;
        (
            training_accuracy(&run, n, BnMode::Eval),
            training_accuracy(&run, n, BnMode::BatchOnly),
        )
    };
    let seeds = [0, 1, 2];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mut gaps, mut trains, mut mixed_gaps) = (vec![], vec![], vec![]);
    for seed in seeds {
        let (eval, train) = accuracies(BnStatistics::Classification, seed);
        // The old rule: the same training trajectory, but evaluation normalises by statistics
        // mixed with the scan images, so the check can fail.
        let (mixed_eval, mixed_train) = accuracies(BnStatistics::Mixed, seed);
        eprintln!(
            "seed {seed}: classification rule {eval} (evaluation) against {train} (training \
             mode); mixed rule {mixed_eval} against {mixed_train}"
        );
        assert_eq!(
            mixed_train, train,
            "the rule changes the running statistics only"
        );
        gaps.push((eval - train).abs());
        mixed_gaps.push(train - mixed_eval);
        trains.push(train);
    }
    assert!(mean(&trains) > 0.3, "the runs learnt something: {trains:?}");
    assert!(
        mean(&gaps) < 0.15,
        "evaluation against training mode: gaps {gaps:?}"
    );
    assert!(
        mean(&mixed_gaps) > 1.5 * mean(&gaps),
        "mixed rule: gaps {mixed_gaps:?} against {gaps:?}"
    );
}

#[test]
fn precise_batch_norm_makes_evaluation_mode_classify_the_training_images_as_training_mode_does() {
    // A None run of 640 images for 2 epochs at the initial learning rate: its running statistics
    // trail the weights, so evaluation mode misclassifies training images that training mode
    // gets right. Recomputed over 50 batches before each checkpoint, the two agree.
    let dir = tempfile::tempdir().unwrap();
    let gap = |precise: usize, seed: u64| {
        let run = dir.path().join(format!("none-{precise}-{seed}"));
        let c = RunConfig {
            train_limit: 640,
            epochs: 2,
            batch: 32,
            lr: 0.1,
            condition: Condition::None,
            target: None,
            seed,
            precise_bn_batches: precise,
            ..tiny_config(dir.path())
        };
        train_run(&run, &c, &common::device(), &Silent).unwrap();
        let eval = training_accuracy(&run, 512, BnMode::Eval);
        let train = training_accuracy(&run, 512, BnMode::BatchOnly);
        eprintln!("precise {precise}, seed {seed}: evaluation {eval:.3}, training mode {train:.3}");
        (eval - train).abs()
    };
    let mean = |v: [f64; 2]| (v[0] + v[1]) / 2.0;
    let precise = mean([gap(50, 0), gap(50, 1)]);
    let lagging = mean([gap(0, 0), gap(0, 1)]);
    assert!(precise < 0.03, "with precise batch norm: gap {precise}");
    assert!(lagging > 0.1, "without: gap {lagging}");
}

#[test]
fn the_pixel_and_blur_controls_train_evaluate_and_are_attacked() {
    let dir = tempfile::tempdir().unwrap();
    let base = RunConfig {
        train_limit: 64,
        epochs: 1,
        target: None,
        precise_bn_batches: 2,
        similarity_batch: 8,
        ..tiny_config(dir.path())
    };
    for condition in [
        Condition::PixelThresholded,
        Condition::PixelCosine,
        Condition::Blur,
    ] {
        let run = dir.path().join(format!("{condition:?}"));
        let c = RunConfig {
            condition,
            ..base.clone()
        };
        let info = train_run(&run, &c, &common::device(), &Silent).unwrap();
        assert_eq!(info.status(), RunStatus::Finished, "{condition:?}");
        // The similarity loss is logged for the Pixel controls and absent for Blur.
        let sim: Vec<f64> = info
            .events
            .iter()
            .filter_map(|e| match e {
                MetricEvent::Step { sim_loss, .. } => Some(*sim_loss),
                _ => None,
            })
            .collect();
        assert!(!sim.is_empty());
        if condition == Condition::Blur {
            assert!(sim.iter().all(|&s| s == 0.0), "{sim:?}");
        } else {
            assert!(sim.iter().all(|&s| s > 0.0), "{sim:?}");
        }
        let noise = dir.path().join(format!("noise-{condition:?}.json"));
        let out = common::ok(&[
            "eval-noise",
            run.to_str().unwrap(),
            "--samples",
            "8",
            "--out",
            noise.to_str().unwrap(),
        ]);
        assert!(out.contains(condition.label()), "{out}");
        let adv = dir.path().join(format!("adv-{condition:?}"));
        common::ok(&[
            "attack",
            run.to_str().unwrap(),
            "--attack",
            "fmn",
            "--norm",
            "l2",
            "--samples",
            "4",
            "--out",
            adv.to_str().unwrap(),
        ]);
    }
    // The blur is part of the stored network, so evaluation and attacks go through it.
    let blur = dir.path().join("Blur");
    let model = neureg::runs::classifier::load_classifier(&blur, &common::device()).unwrap();
    assert_eq!(model.net.config().blur, Some(1.5));
}

/// The same seeded regularised run trained twice through the binary: with neureg's CPU kernels
/// and with `NEUREG_CANDLE_OPS=1`, the candle operations every other device (a GPU) runs.
/// Their logged losses and accuracies must agree: a check of the GPU's path on the CPU.
#[test]
fn the_path_other_devices_take_trains_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, candle_ops: bool| -> Vec<serde_json::Value> {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_neureg"));
        cmd.args([
            "--device",
            "cpu",
            "train",
            "--condition",
            "neural-model",
            "--target",
        ])
        .arg(root().join("sample_data/targets/neural_model.npy"))
        .args(["--train-limit", "96", "--test-limit", "48"])
        .args(common::TINY_RUN)
        .arg("--out")
        .arg(&out);
        if candle_ops {
            cmd.env("NEUREG_CANDLE_OPS", "1");
        } else {
            cmd.env_remove("NEUREG_CANDLE_OPS");
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (kernels, ops) = (run("kernels", false), run("ops", true));
    assert_eq!(kernels.len(), ops.len());
    let steps = |m: &[serde_json::Value]| -> Vec<(f64, f64)> {
        m.iter()
            .filter(|l| l["event"] == "step")
            .map(|l| {
                (
                    l["task_loss"].as_f64().unwrap(),
                    l["sim_loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (steps(&kernels), steps(&ops));
    assert_eq!(a.len(), 6);
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        // The first step's losses come from the same weights: equal but for rounding. Later
        // steps part: the candle path's batch-norm backward loses precision in f32 on
        // near-constant channels (its gradients were up to 3% from PyTorch's in float64 on this
        // network, the kernels' within 3e-6), and every SGD step carries that on; so only the
        // step after one update is held to 1%.
        if k > 1 {
            assert!(y.0.is_finite() && y.1.is_finite(), "step {}: {y:?}", k + 1);
            continue;
        }
        let tolerance = if k == 0 { 1e-4 } else { 1e-2 };
        let close = |p: f64, q: f64| (p - q).abs() <= tolerance * p.abs().max(q.abs()).max(1e-3);
        assert!(
            close(x.0, y.0) && close(x.1, y.1),
            "step {}: {x:?} vs {y:?}",
            k + 1
        );
    }
}
