//! `neureg eval-noise` and `attack`: robustness of trained runs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::progress_bar::Bar;
use super::Context;
use crate::atomic::write_atomic;
use crate::eval::minimal::{budget_curve, AttackConfig};
use crate::eval::noise::{save_noisy_images, NoiseConfig, NoiseKind};
use crate::eval::results::{robustness_score, stored_attacks};
use crate::pipeline::attack::{attack as attack_run, AttackEvent, AttackRequest, Example};
use crate::pipeline::noise::{evaluate_noise, NoiseEvent, NoiseRequest};
use crate::runs::RunConfig;

/// PNGs of examples `neureg attack` writes.
const EXAMPLES: usize = 8;

/// `neureg eval-noise`.
#[derive(Debug, clap::Args)]
pub struct NoiseArgs {
    /// Run folders (from train).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Summary JSON file: every run's curve and the per-condition mean and SEM.
    #[arg(long)]
    out: PathBuf,
    /// The noise.
    #[arg(long, value_enum, default_value = "gaussian")]
    kind: NoiseKind,
    /// Levels, test images and seed.
    #[command(flatten)]
    noise: NoiseConfig,
    /// Also write the noisy test images (of the first run's data set) to this folder as
    /// .npy, for other tools (scripts/eval_torch.py).
    #[arg(long)]
    save_images: Option<PathBuf>,
}

/// `neureg attack`.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    /// Run folder (from train).
    run: PathBuf,
    /// The attack and its settings.
    #[command(flatten)]
    config: AttackConfig,
    /// Repeat the attack with each of these step budgets and write the median against the
    /// budget (Fig. 5), e.g. 5,10,20,40.
    #[arg(long, value_delimiter = ',')]
    budgets: Vec<usize>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

/// Evaluates the runs, printing each run's curve and each condition's last level.
pub fn eval_noise(a: NoiseArgs, cx: &Context) -> anyhow::Result<()> {
    let request = NoiseRequest {
        runs: a.runs,
        kind: a.kind,
        noise: a.noise,
    };
    if let Some(dir) = &a.save_images {
        let config = RunConfig::load(&request.runs[0])?;
        save_noisy_images(&config, a.kind, &request.noise, dir)?;
    }
    let bar = Bar::new();
    let outcome = evaluate_noise(&request, cx.device, &bar, &mut |event| match event {
        NoiseEvent::RunStarted { index, notice, .. } => {
            if let Some(notice) = notice {
                bar.suspend(|| eprintln!("warning: {}: {notice}", request.runs[index].display()));
            }
        }
        NoiseEvent::RunDone { index, curve } => {
            let cells: Vec<String> = curve
                .levels
                .iter()
                .zip(&curve.accuracy)
                .map(|(l, a)| format!("{l:.2}: {a:.3}"))
                .collect();
            bar.suspend(|| {
                println!(
                    "{} ({}): {}",
                    request.runs[index].display(),
                    curve.condition.label(),
                    cells.join(", ")
                )
            });
        }
        NoiseEvent::Level { .. } => {}
    })?;
    drop(bar);
    for c in &outcome.summary {
        println!(
            "{}: accuracy at {:.2} = {:.3} ± {:.3}",
            c.label(),
            c.levels.last().copied().unwrap_or(0.0),
            c.mean.last().copied().unwrap_or(0.0),
            c.sem.last().copied().unwrap_or(0.0)
        );
    }
    let value = serde_json::json!({ "runs": outcome.curves, "conditions": outcome.summary });
    write_atomic(&a.out, value.to_string().as_bytes())?;
    Ok(())
}

/// Attacks the run (or draws its budget curve), printing the median and the run's robustness
/// score; writes the result and the first examples' PNGs to `--out`.
pub fn attack(a: AttackArgs, cx: &Context) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    if !a.budgets.is_empty() {
        let curve = budget_curve(&a.run, &a.config, &a.budgets, cx.device, &Bar::new())?;
        for (b, m) in curve.budgets.iter().zip(&curve.medians) {
            let m = m.map_or("infinite".into(), |m| format!("{m:.5}"));
            println!("{b:>5} steps: median distance {m}");
        }
        let text = serde_json::to_string_pretty(&curve)?;
        write_atomic(&a.out.join("budget.json"), text.as_bytes())?;
        return Ok(());
    }
    let request = AttackRequest {
        run: a.run.clone(),
        config: a.config.clone(),
        examples: EXAMPLES,
    };
    let bar = Bar::new();
    let result = attack_run(&request, cx.device, &bar, &mut |event| match event {
        AttackEvent::Started {
            notice: Some(notice),
        } => bar.suspend(|| eprintln!("warning: {}: {notice}", a.run.display())),
        AttackEvent::Started { notice: None } => {}
        AttackEvent::Example(e) => {
            let path = a.out.join(format!("example_{:04}.png", e.sample));
            if let Err(err) = write_example(&path, &e) {
                bar.suspend(|| eprintln!("warning: {err:#}"));
            }
        }
    })?;
    drop(bar);
    let broken = result.distances.iter().filter(|d| d.is_some()).count();
    let infinite = |m: Option<f32>| m.map_or("infinite".into(), |m| format!("{m:.5}"));
    println!(
        "{}: {} {:?} on {} samples: {} broken, median distance {}",
        a.run.display(),
        a.config.attack.label(),
        a.config.norm,
        result.labels.len(),
        broken,
        infinite(result.median)
    );
    let stored = stored_attacks(&a.run)?;
    let attacks: Vec<String> = stored
        .iter()
        .filter(|r| r.config.norm == a.config.norm)
        .map(|r| r.config.attack.label().to_string())
        .collect();
    println!(
        "robustness score ({:?}, best of the stored {}): median {}",
        a.config.norm,
        attacks.join(", "),
        infinite(robustness_score(&stored, a.config.norm))
    );
    let text = serde_json::to_string_pretty(&result)?;
    write_atomic(&a.out.join("result.json"), text.as_bytes())?;
    Ok(())
}

/// Writes `example` as a PNG, magnified 4x: original, perturbation (gray = 0, amplified to fill
/// the range) and adversarial side by side.
fn write_example(path: &Path, example: &Example) -> anyhow::Result<()> {
    let (a, b) = (&example.original, &example.adversarial);
    let (h, w) = example.shape;
    let delta: Vec<f32> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let scale = delta.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    let amplified: Vec<f32> = delta.iter().map(|d| 0.5 + 0.5 * d / scale).collect();
    let panels = [a, &amplified, b];
    let zoom = 4;
    let mut img = image::GrayImage::new((3 * w * zoom + 2 * zoom) as u32, (h * zoom) as u32);
    for (p, panel) in panels.iter().enumerate() {
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let v = (panel[(y / zoom) * w + x / zoom].clamp(0.0, 1.0) * 255.0).round() as u8;
                img.put_pixel(
                    (p * (w * zoom + zoom) + x) as u32,
                    y as u32,
                    image::Luma([v]),
                );
            }
        }
    }
    img.save(path).with_context(|| path.display().to_string())?;
    Ok(())
}
