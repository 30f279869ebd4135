//! Benchmark of the attacks (docs/method.md section 8): gradient steps per second on ResNet18
//! (evaluation mode, the cross-entropy's gradient with respect to a batch of
//! 1 x 32 x 32 images, the step every gradient attack repeats), against the
//! same network and step in PyTorch (`scripts/resnet_torch.py --attack`) in the
//! same run when python3 with torch is present. Then, where foolbox is
//! installed, each attack on the same weights and samples in neureg and in
//! foolbox (`scripts/foolbox_attack.py`): times and medians side by side.
//! Prints figures; never fails.
//!
//! Run: `cargo bench --bench attacks` (`NEUREG_BENCH_RUN=runs/<run>` compares on
//! that run; otherwise a small run is trained first, about a minute).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use neureg::atomic::write_atomic;
use neureg::data::npy::encode;
use neureg::eval::attacks::{input_gradient, Model, Norm};
use neureg::eval::minimal::{attack_run, median, AttackConfig, AttackName};
use neureg::eval::noise::evaluation_images;
use neureg::nn::kernels::batch_norm::BnMode;
use neureg::nn::models::resnet::{Depth, ResNet, ResNetConfig};
use neureg::nn::seeded_init::seeded_var_builder;
use neureg::progress::Silent;
use neureg::runs::classifier::load_classifier;
use neureg::runs::RunConfig;
use neureg::train::classifier::train_run;

/// The network in evaluation mode as an attack sees it.
struct Net(ResNet);

impl Model for Net {
    fn logits(&self, images: &Tensor) -> neureg::Result<Tensor> {
        self.0.logits(images, BnMode::Eval)
    }
}

/// Gradient steps per second in neureg.
fn neureg(width: f64, batch: usize, steps: usize) -> neureg::Result<f64> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let config = ResNetConfig {
        depth: Depth::Resnet18,
        width,
        classes: 10,
        taps: vec![17],
        blur: None,
    };
    ResNet::new(&config, seeded_var_builder(&varmap, 0, &dev))?;
    // Frozen, as `load_classifier` gives it to the attacks: gradients reach the images only.
    let tensors = varmap
        .data()
        .lock()
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
                .collect()
        })
        .unwrap_or_default();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &dev);
    let net = Net(ResNet::new(&config, vb)?);
    let x = Tensor::rand(0f32, 1., (batch, 1, 32, 32), &dev)?;
    let y = Tensor::zeros(batch, DType::U32, &dev)?;
    input_gradient(&net, &x, &y)?;
    let start = Instant::now();
    for _ in 0..steps {
        input_gradient(&net, &x, &y)?;
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

/// The same in PyTorch, if present.
fn torch(width: f64, batch: usize, steps: usize) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/resnet_torch.py");
    let out = Command::new("python3")
        .args([script, "--attack"])
        .args([width.to_string(), batch.to_string(), steps.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A trained run to attack in `dir`: a copy of `NEUREG_BENCH_RUN` (so that its stored results
/// stay as they are), or a small one trained there.
fn bench_run(dir: &Path) -> neureg::Result<PathBuf> {
    let run = dir.join("run");
    if let Ok(source) = std::env::var("NEUREG_BENCH_RUN") {
        let copy = |name: &str| {
            let (from, to) = (Path::new(&source).join(name), run.join(name));
            std::fs::create_dir_all(to.parent().unwrap_or(&run))
                .and_then(|_| std::fs::copy(&from, &to))
                .map_err(|e| neureg::Error::file(from.display(), e.to_string()))
        };
        copy("config.json")?;
        copy("checkpoints/last.safetensors")?;
        return Ok(run);
    }
    let config = RunConfig {
        data: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sample_data/fashion-mnist"
        )),
        epochs: 2,
        ..RunConfig::default()
    };
    train_run(&run, &config, &Device::Cpu, &Silent)?;
    Ok(run)
}

/// foolbox's per-sample distances, the logits of the first image and its seconds, if foolbox
/// is installed.
fn foolbox(
    run: &Path,
    samples: &Path,
    config: &AttackConfig,
) -> Option<(Vec<Option<f32>>, Vec<f32>, f64)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/foolbox_attack.py");
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let out = Command::new("python3")
        .arg(script)
        .arg(run)
        .arg(samples.join("images.npy"))
        .arg(samples.join("labels.npy"))
        .arg(name(serde_json::to_value(config.attack).ok()?))
        .arg(name(serde_json::to_value(config.norm).ok()?))
        .arg(config.steps.to_string())
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last()?).ok()?;
    let distances = v["distances"]
        .as_array()?
        .iter()
        .map(|d| d.as_f64().map(|d| d as f32))
        .collect();
    let logits = v["logits"]
        .as_array()?
        .iter()
        .filter_map(|l| l.as_f64().map(|l| l as f32))
        .collect();
    Some((distances, logits, v["seconds"].as_f64()?))
}

/// Every attack and norm, neureg against foolbox on the same weights and samples.
fn compare_with_foolbox(samples: usize) -> neureg::Result<()> {
    let dir =
        tempfile::tempdir().map_err(|e| neureg::Error::file("temporary folder", e.to_string()))?;
    let run = bench_run(dir.path())?;
    let model = load_classifier(&run, &Device::Cpu)?;
    let set = evaluation_images(&RunConfig::load(&run)?, samples)?;
    let (h, w) = set.shape;
    write_atomic(
        &dir.path().join("images.npy"),
        &encode(&[set.len(), 1, h, w], &set.pixels),
    )?;
    let labels: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    write_atomic(
        &dir.path().join("labels.npy"),
        &encode(&[set.len()], &labels),
    )?;
    let first = Tensor::from_vec(set.image(0).to_vec(), (1, 1, h, w), &Device::Cpu)?;
    let ours_logits = model.logits(&first)?.flatten_all()?.to_vec1::<f32>()?;
    println!(
        "\n{} on {samples} test images, the same weights in neureg and foolbox:",
        run.display()
    );
    for (attack, norm, steps) in [
        (AttackName::Pgd, Norm::Linf, 0),
        (AttackName::Deepfool, Norm::L2, 0),
        (AttackName::Ddn, Norm::L2, 0),
        (AttackName::Fmn, Norm::L0, 0),
        (AttackName::Fmn, Norm::L1, 0),
        (AttackName::Fmn, Norm::L2, 0),
        (AttackName::Fmn, Norm::Linf, 0),
        (AttackName::Cw, Norm::L2, 100),
        (AttackName::BrendelBethge, Norm::L2, 200),
        (AttackName::BrendelBethge, Norm::Linf, 200),
    ] {
        let config = AttackConfig {
            attack,
            norm,
            samples,
            batch: samples,
            rounds: if attack == AttackName::Cw { 9 } else { 10 },
            steps,
            seed: 0,
        };
        let start = Instant::now();
        let ours = attack_run(&run, &config, &Device::Cpu, &Silent, &mut |_| {})?;
        let ours_s = start.elapsed().as_secs_f64();
        let show = |m: Option<f32>| m.map_or("inf".into(), |m| format!("{m:.4}"));
        let label = format!("{} {norm:?}", attack.label());
        match foolbox(&run, dir.path(), &config) {
            Some((theirs, logits, theirs_s)) => {
                let gap = logits
                    .iter()
                    .zip(&ours_logits)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                let inf = |d: &[Option<f32>]| -> Vec<f32> {
                    d.iter().map(|d| d.unwrap_or(f32::INFINITY)).collect()
                };
                println!(
                    "  {label:<22} median neureg {} foolbox {}; seconds neureg {ours_s:.1} foolbox {theirs_s:.1} (relative speed {:.2}); logits differ by {gap:.1e}",
                    show(ours.median),
                    show(median(&inf(&theirs))),
                    theirs_s / ours_s
                );
            }
            None => println!(
                "  {label:<22} median neureg {} in {ours_s:.1} s (foolbox not found)",
                show(ours.median)
            ),
        }
    }
    Ok(())
}

/// Rounds per width: neureg and PyTorch take turns, and each shows its best round, so that a
/// slow spell on a shared machine does not decide the comparison.
const ROUNDS: usize = 3;

fn main() {
    for (width, batch, steps) in [(1.0, 64, 5), (0.25, 64, 20)] {
        let label = format!(
            "ResNet18 width {width}, batch {batch}: attack gradient steps per second (best of {ROUNDS} rounds)"
        );
        let (mut ours, mut theirs) = (Ok(0f64), None::<f64>);
        for _ in 0..ROUNDS {
            match neureg(width, batch, steps) {
                Ok(rate) => ours = ours.map(|best| best.max(rate)),
                Err(e) => {
                    ours = Err(e);
                    break;
                }
            }
            if let Some(rate) = torch(width, batch, steps) {
                theirs = Some(theirs.unwrap_or(0.0).max(rate));
            }
        }
        match (ours, theirs) {
            (Ok(ours), Some(theirs)) => println!(
                "{label}: neureg {ours:.2}, PyTorch {theirs:.2}, relative {:.2}",
                ours / theirs
            ),
            (Ok(ours), None) => println!("{label}: neureg {ours:.2} (PyTorch not found)"),
            (Err(e), _) => println!("{label}: neureg failed: {e}"),
        }
    }
    let samples = std::env::var("NEUREG_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    if let Err(e) = compare_with_foolbox(samples) {
        println!("comparison with foolbox failed: {e}");
    }
}
