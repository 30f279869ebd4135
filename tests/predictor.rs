//! The predictive model end to end on tiny synthetic scans: fitting, resuming
//! a killed fit, quality files, targets, and the errors a user can cause.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use neureg::data::synth::{synthesize, SynthConfig};
use neureg::data::Scan;
use neureg::nn::models::predictor::PredictorConfig;
use neureg::progress::{Progress, Silent};
use neureg::runs::predictor::{load_predictor, read_metrics, EpochMetrics, FitConfig};
use neureg::similarity::denoising::targets_vs_truth;
use neureg::similarity::quality::stored_quality;
use neureg::similarity::target::{
    common_single_images, data_target, folder_images, load_target, model_target, save_target,
    Weighting,
};
use neureg::train::predictor::{fit_predictor, FitReport};

fn synth_scans(images: usize, seed: u64) -> Vec<Scan> {
    let c = SynthConfig {
        scans: 2,
        images,
        oracle: 6,
        repeats: 4,
        neurons: 16,
        seed,
        ..Default::default()
    };
    synthesize(&c, &Silent).unwrap()
}

fn small_model() -> PredictorConfig {
    PredictorConfig {
        channels: 4,
        layers: 2,
        input_kernel: 5,
        hidden_kernel: 3,
        ..Default::default()
    }
}

fn short_fit(epochs: usize) -> FitConfig {
    FitConfig {
        max_epochs: epochs,
        batch_size: 16,
        ..Default::default()
    }
}

/// Cancels once `after` epochs have finished.
struct StopAfter {
    after: u64,
    done: AtomicU64,
}

impl Progress for StopAfter {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
    fn is_cancelled(&self) -> bool {
        self.done.load(Ordering::Relaxed) >= self.after
    }
}

/// Fits the small model for at most `epochs` epochs, reporting to `progress` and `on_epoch`.
fn fit_with(
    scan: &Scan,
    out: &Path,
    epochs: usize,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> neureg::Result<FitReport> {
    fit_predictor(
        scan,
        &small_model(),
        &short_fit(epochs),
        out,
        &common::device(),
        progress,
        on_epoch,
    )
}

fn fit(scan: &Scan, out: &Path, epochs: usize) {
    fit_with(scan, out, epochs, &Silent, &mut |_| {}).unwrap();
}

#[test]
fn a_killed_fit_resumes_without_losing_or_repeating_epochs() {
    let scans = synth_scans(40, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let stop = StopAfter {
        after: 1,
        done: AtomicU64::new(0),
    };
    let mut seen = Vec::new();
    fit_with(&scans[0], &out, 3, &stop, &mut |m| seen.push(m.epoch)).unwrap();
    assert_eq!(seen, vec![1]);
    assert!(out.join("best.safetensors").is_file() && out.join("last.safetensors").is_file());
    fit_with(&scans[0], &out, 3, &Silent, &mut |m| seen.push(m.epoch)).unwrap();
    assert_eq!(seen, vec![1, 2, 3]);
    let epochs: Vec<usize> = read_metrics(&out)
        .unwrap()
        .iter()
        .map(|m| m.epoch)
        .collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    assert!(read_metrics(&out)
        .unwrap()
        .iter()
        .all(|m| m.train_loss.is_finite()));

    let p = load_predictor(&out, &common::device()).unwrap();
    let q = stored_quality(&p).unwrap();
    assert_eq!(q.rho.len(), scans[0].n_neurons());
    assert!(q
        .rho
        .iter()
        .chain(&q.ceiling)
        .all(|r| (-1.0..=1.0).contains(r)));
    assert_eq!(p.snr_weights().unwrap().len(), scans[0].n_neurons());

    // Another configuration in the same folder is refused, not mixed in.
    let err = fit_predictor(
        &scans[0],
        &small_model(),
        &short_fit(5),
        &out,
        &common::device(),
        &Silent,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("holds a fit of another scan or with other settings"),
        "{err}"
    );
}

#[test]
fn targets_from_predictors_and_their_errors() {
    let scans = synth_scans(30, 2);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fit(&scans[0], &a, 1);
    fit(&scans[1], &b, 1);
    let predictors = vec![
        load_predictor(&a, &common::device()).unwrap(),
        load_predictor(&b, &common::device()).unwrap(),
    ];
    let refs: Vec<&Scan> = scans.iter().collect();
    let images = common_single_images(&refs).unwrap();
    assert_eq!(images.ids.len(), 30);
    let target = model_target(
        &predictors,
        &images,
        Weighting::Snr,
        &common::device(),
        &Silent,
    )
    .unwrap();
    let m = &target.matrix;
    assert_eq!(m.n, 30);
    for i in 0..m.n {
        assert!((m.get(i, i) - 1.0).abs() < 1e-4);
        for j in 0..m.n {
            assert!((m.get(i, j) - m.get(j, i)).abs() < 1e-5);
        }
    }
    let path = dir.path().join("target.npy");
    save_target(&path, &target).unwrap();
    let back = load_target(&path).unwrap();
    assert_eq!(
        back.meta.scans,
        vec!["scan_1".to_string(), "scan_2".to_string()]
    );
    assert_eq!(back.meta.image_ids, images.ids);
    let data = data_target(&refs, &images.ids, &common::device()).unwrap();
    assert_eq!(data.matrix.n, 30);

    // Against the truth: a scan whose single-shown images got their noise-free responses (the
    // repeated ones keep their noise, which the SNR weights need) gives r = 1; one without ground
    // truth gives none.
    let mut clean = scans[0].clone();
    let n = clean.n_neurons();
    let truth = clean.ground_truth.clone().unwrap();
    for t in 0..clean.n_trials() {
        if images.ids.contains(&clean.image_ids[t]) {
            clean.responses[t * n..(t + 1) * n].copy_from_slice(&truth[t * n..(t + 1) * n]);
        }
    }
    let clean_data = data_target(&[&clean], &images.ids, &common::device()).unwrap();
    let r = targets_vs_truth(
        &[&clean_data.matrix],
        &images.ids,
        &[&clean],
        &common::device(),
    )
    .unwrap()
    .unwrap()[0];
    assert!((r - 1.0).abs() < 1e-5, "{r}");
    let r = targets_vs_truth(&[&target.matrix], &images.ids, &refs, &common::device())
        .unwrap()
        .unwrap()[0];
    assert!((-1.0..=1.0).contains(&r));
    clean.ground_truth = None;
    assert!(
        targets_vs_truth(&[&data.matrix], &images.ids, &[&clean], &common::device())
            .unwrap()
            .is_none()
    );

    // A folder of images: PNG and JPEG of any size and colour, other files ignored.
    let folder = dir.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    image::RgbImage::from_fn(80, 50, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 7]))
        .save(folder.join("b.png"))
        .unwrap();
    image::GrayImage::from_fn(64, 36, |x, _| image::Luma([x as u8 * 4]))
        .save(folder.join("a.jpg"))
        .unwrap();
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    let set = folder_images(&folder, (36, 64)).unwrap();
    assert_eq!(set.ids, vec![0, 1]);
    assert!(set.source.contains("a.jpg, b.png"), "{}", set.source);
    assert!(set.pixels.iter().all(|p| p.len() == 36 * 64));
    let t = model_target(
        &predictors,
        &set,
        Weighting::SnrRho,
        &common::device(),
        &Silent,
    )
    .unwrap();
    assert_eq!(t.matrix.n, 2);
    std::fs::write(folder.join("c.png"), b"truncated").unwrap();
    let err = folder_images(&folder, (36, 64)).unwrap_err().to_string();
    assert!(
        err.contains("c.png") && err.contains("not a readable image"),
        "{err}"
    );

    // A predictor applied to a scan with another neuron count.
    let other = synthesize(
        &SynthConfig {
            scans: 1,
            images: 30,
            oracle: 6,
            repeats: 4,
            neurons: 40,
            seed: 2,
            ..Default::default()
        },
        &Silent,
    )
    .unwrap();
    let err = predictors[0].check_scan(&other[0]).unwrap_err().to_string();
    assert!(err.contains("neurons but the predictor"), "{err}");
    // Another recording of the same name and neurons: one response changed.
    let mut changed = scans[0].clone();
    changed.responses[0] += 1.0;
    let err = predictors[0].check_scan(&changed).unwrap_err().to_string();
    assert!(err.contains("is another recording than the one"), "{err}");
    predictors[0].check_scan(&scans[0]).unwrap();
    // Images of a size the core was not built for.
    let err = predictors[0]
        .predict_images(&[&[0.0; 100]], (10, 10), &common::device())
        .unwrap_err()
        .to_string();
    assert!(err.contains("takes 36 x 64 images, not 10 x 10"), "{err}");
    // Predictors whose image sets disagree.
    let fewer = synth_scans(20, 2);
    let err = common_single_images(&[&scans[0], &fewer[1]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("image sets disagree"), "{err}");
    // A checkpoint from another architecture.
    let meta_path = a.join("meta.json");
    let text = std::fs::read_to_string(&meta_path)
        .unwrap()
        .replace("\"channels\": 4", "\"channels\": 6");
    std::fs::write(&meta_path, text).unwrap();
    let err = load_predictor(&a, &common::device())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("checkpoint of another architecture"), "{err}");
}
