//! The command line: each subcommand is a thin wrapper over one library call.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Tensor};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::atomic::write_atomic;
use crate::data::npy::encode;
use crate::data::synth::{write_synthetic, SynthConfig};
use crate::data::{load_scan, LoadOptions, Scan, Tier};
use crate::eval::minimal::{attack_run, budget_curve, AttackConfig};
use crate::eval::noise::{save_noisy_images, NoiseKind};
use crate::eval::results::{robustness_score, stored_attacks};
use crate::experiment::report::{write_report, Report};
use crate::experiment::slurm::{submit, write_array, SlurmOptions, PAUSED_EXIT};
use crate::experiment::unit::{run_all, run_unit, statuses};
use crate::experiment::{Experiment, Plan, Preset};
use crate::nn::predictor::PredictorConfig;
use crate::pipeline::noise::{evaluate_noise, NoiseEvent, NoiseRequest};
use crate::progress::Progress;
use crate::runs::store::run_dir;
use crate::runs::{MetricEvent, RunConfig, Workspace};
use crate::samples::find_sample;
use crate::similarity::analysis::analyse_oracles;
use crate::similarity::denoising::{denoising, model_vs_data};
use crate::similarity::target::{
    common_single_images, data_target, folder_images, model_target, save_target,
    single_shown_images, Weighting,
};
use crate::similarity::weights::snr_weights;
use crate::train::classifier::train_run;
use crate::train::predictor::{fit_predictor, load_predictor, FitConfig, LoadedPredictor};

/// neureg: learning from brains how to regularise machines. Without a subcommand it opens the window.
#[derive(Debug, Parser)]
#[command(name = "neureg", version, about)]
pub struct Cli {
    /// Computing device: cpu, cuda or cuda:N (default: CUDA when built with it and present, else CPU).
    #[arg(long, global = true)]
    pub device: Option<String>,
    /// Downsample scan images on loading, e.g. 36x64 (area averaging; sizes must divide evenly).
    #[arg(long, global = true, value_parser = parse_size)]
    pub downsample: Option<(usize, usize)>,
    /// The workspace: where runs and experiments go by default (default: $NEUREG_WORKSPACE, else
    /// workspace/ in the platform's data directory, e.g. ~/.local/share/neureg/workspace).
    #[arg(long, global = true)]
    pub workspace: Option<PathBuf>,
    /// What to do; none opens the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate synthetic scans (simulated V1 responses to natural-image patches).
    Synth {
        /// Output folder; scans are written as DIR/scan_<k>.zip.
        #[arg(long)]
        out: PathBuf,
        /// What to simulate.
        #[command(flatten)]
        config: SynthConfig,
        /// Write folders instead of zips.
        #[arg(long)]
        folders: bool,
    },
    /// Print a scan's trials, neurons, tiers, oracle images and behaviour ranges.
    Info {
        /// Scan folder or zip.
        scan: PathBuf,
    },
    /// Write the signal-to-noise weights (Eq. 1), one per neuron in the scan's order.
    Snr {
        /// Scan folder or zip.
        scan: PathBuf,
        /// Output .npy file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write each scan's oracle similarity (Eq. 3) over the oracle images common to all.
    Oracle {
        /// Scan folders or zips.
        #[arg(required = true)]
        scans: Vec<PathBuf>,
        /// Output folder: <scan name>.npy per scan and image_ids.npy.
        #[arg(long)]
        out: PathBuf,
    },
    /// Fit the denoising predictive model (SPEC 6) to one scan; resumes a fit left in --out.
    FitPredictor {
        /// Scan folder or zip.
        scan: PathBuf,
        /// Predictor folder (meta.json, checkpoints, metrics.jsonl, quality.json).
        #[arg(long)]
        out: PathBuf,
        /// Architecture.
        #[command(flatten)]
        model: PredictorConfig,
        /// Fit settings.
        #[command(flatten)]
        fit: FitConfig,
    },
    /// Build a regularisation target (Eq. 6) from fitted predictors: .npy plus a .json sidecar.
    Target {
        /// Predictor folders (from fit-predictor).
        #[arg(long, required = true, num_args = 1..)]
        predictors: Vec<PathBuf>,
        /// A scan whose single-shown images to use, or a folder of PNG/JPEG images (resized to the
        /// predictors' input; ids in file-name order). Default: the single-shown images of the
        /// predictors' scans, which must agree.
        #[arg(long)]
        images: Option<PathBuf>,
        /// Neuron weighting of Eq. 6.
        #[arg(long, value_enum, default_value_t = Weighting::SnrRho)]
        weighting: Weighting,
        /// Build the Neural (data) target instead: single-trial similarity of the same images.
        #[arg(long)]
        data: bool,
        /// Output .npy file (the sidecar is written beside it as .json).
        #[arg(long)]
        out: PathBuf,
    },
    /// How well the predictors denoise (Fig. 1D): model and single-trial similarity against the
    /// oracle similarity and, on synthetic scans, against the noise-free similarity; also both
    /// targets of the single-shown images against the noise-free similarity.
    Denoising {
        /// Predictor folders (from fit-predictor).
        #[arg(long, required = true, num_args = 1..)]
        predictors: Vec<PathBuf>,
        /// Neuron weighting of Eq. 6.
        #[arg(long, value_enum, default_value_t = Weighting::SnrRho)]
        weighting: Weighting,
        /// Also write the scatters and correlations to this JSON file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Train a classifier with the similarity loss (SPEC 7) into run folders; a run left
    /// unfinished in its folder resumes from its last checkpoint.
    Train {
        /// Run folder (one run) or the folder to put the runs in (several seeds or strengths).
        /// Default: the workspace's runs/<condition>-a<strength>-seed<seed>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Take the configuration from this JSON file (a run's config.json) instead of the flags.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The paper's scale: width 1, 40 epochs, the paper's schedule, every image.
        #[arg(long)]
        paper: bool,
        /// One run per seed (a sweep; overrides --seed).
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
        /// One run per strength (a sweep; overrides --strength).
        #[arg(long, value_delimiter = ',')]
        strengths: Vec<f64>,
        /// The run's settings.
        #[command(flatten)]
        run: RunConfig,
    },
    /// Accuracy under noise (SPEC 8, Fig. 4) of trained runs, stored in each run's results/, and
    /// the mean and SEM over the seeds of each condition written to --out.
    EvalNoise {
        /// Run folders (from train).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Summary JSON file: every run's curve and the per-condition mean and SEM.
        #[arg(long)]
        out: PathBuf,
        /// The noise.
        #[arg(long, value_enum, default_value = "gaussian")]
        kind: NoiseKind,
        /// Noise levels, comma-separated (default 0, 0.01, ..., 0.1).
        #[arg(long, value_delimiter = ',')]
        levels: Vec<f64>,
        /// Test images (the first ones; 0: the whole test set).
        #[arg(long, default_value_t = 1000)]
        samples: usize,
        /// Seed of the noise draws (the same for every run).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write the noisy test images (of the first run's data set) to this folder as
        /// .npy, for other tools (scripts/eval_torch.py).
        #[arg(long)]
        save_images: Option<PathBuf>,
    },
    /// Minimal adversarial perturbations (SPEC 8) of a trained run: per sample the smallest
    /// verified distance, the median, stored in the run's results/; --out gets the result and
    /// PNGs of the first examples (original, perturbation amplified around gray, adversarial).
    Attack {
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
    },
    /// Run a whole comparison (conditions x strengths x seeds, trained, then noise and attacks,
    /// then a report) from a plan, a preset or an experiment folder; resumes what is unfinished.
    Experiment {
        /// A plan (.toml or .json) or an experiment folder (holding plan.json).
        source: Option<PathBuf>,
        /// Start from a preset plan instead.
        #[arg(long, value_enum)]
        preset: Option<Preset>,
        /// Experiment folder (default: the workspace's experiments/<plan name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Change a setting of the plan: key=value, e.g. training.epochs=10, seeds=[0,1],
        /// noise.samples=200 (repeatable).
        #[arg(long = "set")]
        overrides: Vec<String>,
        /// Run only this unit (a Slurm array task), then rebuild the report.
        #[arg(long)]
        unit: Option<usize>,
        /// Print each unit's state and what is missing, and run nothing.
        #[arg(long)]
        status: bool,
        /// Rebuild the report from what is there, and run nothing.
        #[arg(long)]
        report: bool,
        /// Write slurm/array.sbatch (one array task per unit) instead of running here.
        #[arg(long)]
        slurm: bool,
        /// Submit the array with sbatch (with --slurm).
        #[arg(long, requires = "slurm")]
        submit: bool,
        /// What the array asks of the cluster.
        #[command(flatten)]
        cluster: SlurmOptions,
    },
    /// Write delta_scan and delta_repeat (Eq. 4, 5): counts, standard deviations, histograms.
    Variability {
        /// Scan folders or zips.
        #[arg(required = true)]
        scans: Vec<PathBuf>,
        /// Output JSON file.
        #[arg(long)]
        json: PathBuf,
    },
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (h, w) = s.split_once(['x', 'X']).ok_or("expected HxW, e.g. 36x64")?;
    let h = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    let w = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    Ok((h, w))
}

/// A progress bar on standard error (hidden when it is not a terminal).
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        self.0.set_message(name.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Runs a subcommand.
pub fn run(
    command: Command,
    device: &Device,
    options: LoadOptions,
    workspace: &Workspace,
) -> anyhow::Result<()> {
    let load = |paths: &[PathBuf]| load_scans(paths, options);
    match command {
        Command::Synth {
            out,
            config,
            folders,
        } => {
            let paths = write_synthetic(&config, &out, !folders, &Bar::new())?;
            for p in paths {
                println!("{}", p.display());
            }
        }
        Command::Info { scan } => {
            let scan = load(&[scan])?.remove(0);
            print!("{}", describe_scan(&scan));
        }
        Command::Snr { scan, out } => {
            let scan = load(&[scan])?.remove(0);
            let w = snr_weights(&scan, &scan.oracle_trials())?;
            write_atomic(&out, &encode(&[w.weights.len()], &w.weights))?;
            if !w.zeroed.is_empty() {
                eprintln!(
                    "{} neurons have zero signal or zero noise and weight 0: {:?}",
                    w.zeroed.len(),
                    w.zeroed
                        .iter()
                        .map(|&i| scan.unit_ids[i])
                        .collect::<Vec<_>>()
                );
            }
            println!("{}: {} weights", out.display(), w.weights.len());
        }
        Command::Oracle { scans, out } => {
            let scans = load(&scans)?;
            let refs: Vec<&Scan> = scans.iter().collect();
            let analysis = analyse_oracles(&refs, device, &Bar::new())?;
            report_dropped(&analysis.dropped);
            let n = analysis.image_ids.len();
            write_atomic(
                &out.join("image_ids.npy"),
                &encode(&[n], &analysis.image_ids),
            )?;
            for o in &analysis.oracles {
                let path = out.join(format!("{}.npy", o.scan));
                write_atomic(&path, &encode(&[n, n], &o.matrix.values))?;
                println!("{}", path.display());
            }
        }
        Command::FitPredictor {
            scan,
            out,
            model,
            fit,
        } => {
            let scan = load(&[scan])?.remove(0);
            let bar = Bar::new();
            let report = fit_predictor(&scan, &model, &fit, &out, device, &bar, &mut |m| {
                let line = format!(
                    "epoch {:>3}: loss {:.4}, validation correlation {:.4}, lr {:.2e}",
                    m.epoch, m.train_loss, m.validation_correlation, m.lr
                );
                if bar.0.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.0.println(line);
                }
            })?;
            drop(bar);
            let q = &report.quality;
            println!(
                "best epoch {} (validation correlation {:.4}); test: mean rho {:.4}, mean oracle ceiling {:.4}, {} of {} neurons flagged (low explainable variance)",
                report.best_epoch,
                report.best_correlation,
                q.mean_rho(),
                q.mean_ceiling(),
                q.flagged.len(),
                q.rho.len()
            );
        }
        Command::Target {
            predictors,
            images,
            weighting,
            data,
            out,
        } => {
            let (loaded, scans) = predictors_and_scans(&predictors, options, device)?;
            let refs: Vec<&Scan> = scans.iter().collect();
            let image_set = match &images {
                // A folder without the scan layout is a folder of images.
                Some(path) if path.is_dir() && !path.join("data").is_dir() => {
                    if data {
                        anyhow::bail!(
                            "the Neural (data) target needs images the scans showed, not {}",
                            path.display()
                        );
                    }
                    folder_images(path, scans[0].image_shape)?
                }
                Some(path) => single_shown_images(&load(std::slice::from_ref(path))?.remove(0)),
                None => common_single_images(&refs)?,
            };
            let target = if data {
                data_target(&refs, &image_set.ids, device)?
            } else {
                model_target(&loaded, &image_set, weighting, device, &Bar::new())?
            };
            save_target(&out, &target)?;
            println!(
                "{}: {} x {} {} target from {}",
                out.display(),
                target.matrix.n,
                target.matrix.n,
                target.meta.kind,
                target.meta.scans.join(", ")
            );
        }
        Command::Denoising {
            predictors,
            weighting,
            json,
        } => {
            let (loaded, scans) = predictors_and_scans(&predictors, options, device)?;
            let mut figures = Vec::new();
            for (p, scan) in loaded.iter().zip(&scans) {
                let d = denoising(p, scan, weighting, device)?;
                let truth = match (&d.model_vs_truth, &d.single_vs_truth) {
                    (Some(m), Some(s)) => format!(
                        "; r(model, noise-free) = {:.3}, r(single trial, noise-free) = {:.3}",
                        m.r, s.r
                    ),
                    _ => String::new(),
                };
                println!(
                    "{} ({} oracle images): r(model, oracle) = {:.3}, r(single trial, oracle) = {:.3}{truth}",
                    d.scan, d.images, d.model_vs_oracle.r, d.single_vs_oracle.r
                );
                figures.push(d);
            }
            let refs: Vec<&Scan> = scans.iter().collect();
            let images = common_single_images(&refs)?;
            let model = model_target(&loaded, &images, weighting, device, &Bar::new())?;
            let data = data_target(&refs, &images.ids, device)?;
            let targets = model_vs_data(&model.matrix, &data.matrix, &images.ids, &refs, device)?;
            if let Some(t) = &targets {
                println!(
                    "targets ({} single-shown images): r(Neural (model), noise-free) = {:.3}, r(Neural (data), noise-free) = {:.3}, difference {:.3} +- {:.3} (bootstrap over images)",
                    t.images,
                    t.model_vs_truth,
                    t.data_vs_truth,
                    t.model_vs_truth - t.data_vs_truth,
                    t.difference_se
                );
            }
            if let Some(path) = json {
                let value = serde_json::json!({ "scans": figures, "targets": targets });
                write_atomic(&path, value.to_string().as_bytes())?;
            }
        }
        Command::Train {
            out,
            config,
            paper,
            seeds,
            strengths,
            run,
        } => {
            let mut base = match config {
                Some(path) => serde_json::from_str::<RunConfig>(
                    &std::fs::read_to_string(&path).with_context(|| path.display().to_string())?,
                )
                .with_context(|| format!("{}: not a run configuration", path.display()))?,
                None => run,
            };
            if paper {
                base = base.paper_scale();
            }
            let sweep = base
                .with_absolute_inputs(Some(&workspace.root))
                .sweep(&seeds, &strengths);
            let root = out.clone().unwrap_or_else(|| workspace.runs());
            for (k, config) in sweep.iter().enumerate() {
                let dir = match (&out, sweep.len()) {
                    (Some(dir), 1) => dir.clone(),
                    _ => run_dir(&root, config),
                };
                eprintln!("run {} of {}: {}", k + 1, sweep.len(), dir.display());
                warn_if_before_the_fix(&dir, config);
                let info = train_run(&dir, config, device, &Bar::new())?;
                for e in &info.events {
                    if let MetricEvent::Epoch {
                        epoch,
                        task_loss,
                        train_accuracy,
                        test_accuracy,
                        ..
                    } = e
                    {
                        println!(
                            "epoch {:>3}: task loss {task_loss:.4}, train accuracy {train_accuracy:.4}, test accuracy {test_accuracy:.4}",
                            epoch + 1
                        );
                    }
                }
                println!("{}: {:?}", dir.display(), info.status());
            }
        }
        Command::EvalNoise {
            runs,
            out,
            kind,
            levels,
            samples,
            seed,
            save_images,
        } => {
            let request = NoiseRequest {
                runs,
                kind,
                levels,
                samples,
                noise_seed: seed,
            };
            if let Some(dir) = &save_images {
                let config = RunConfig::load(&request.runs[0])?;
                save_noisy_images(&config, kind, &request.levels(), samples, seed, dir)?;
            }
            let bar = Bar::new();
            let outcome = evaluate_noise(&request, device, &bar, &mut |event| match event {
                NoiseEvent::RunStarted { index, notice, .. } => {
                    if let Some(notice) = notice {
                        bar.0.suspend(|| {
                            eprintln!("warning: {}: {notice}", request.runs[index].display())
                        });
                    }
                }
                NoiseEvent::RunDone { index, curve } => {
                    let cells: Vec<String> = curve
                        .levels
                        .iter()
                        .zip(&curve.accuracy)
                        .map(|(l, a)| format!("{l:.2}: {a:.3}"))
                        .collect();
                    bar.0.suspend(|| {
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
            let value =
                serde_json::json!({ "runs": outcome.curves, "conditions": outcome.summary });
            write_atomic(&out, value.to_string().as_bytes())?;
        }
        Command::Attack {
            run,
            config,
            budgets,
            out,
        } if !budgets.is_empty() => {
            let curve = budget_curve(&run, &config, &budgets, device, &Bar::new())?;
            for (b, m) in curve.budgets.iter().zip(&curve.medians) {
                let m = m.map_or("infinite".into(), |m| format!("{m:.5}"));
                println!("{b:>5} steps: median distance {m}");
            }
            std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
            let text = serde_json::to_string_pretty(&curve)?;
            write_atomic(&out.join("budget.json"), text.as_bytes())?;
        }
        Command::Attack {
            run, config, out, ..
        } => {
            warn_if_before_the_fix(&run, &RunConfig::load(&run)?);
            std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
            let mut examples = 0usize;
            let bar = Bar::new();
            let result = attack_run(&run, &config, device, &bar, &mut |batch| {
                let (first, x, found) = (batch.first, batch.images, batch.found);
                for (i, d) in found.distance.iter().enumerate() {
                    if examples < 8 && d.is_finite() && *d > 0.0 {
                        let path = out.join(format!("example_{:04}.png", first + i));
                        if write_example(&path, x, &found.adversarial, i).is_ok() {
                            examples += 1;
                        }
                    }
                }
            })?;
            drop(bar);
            let broken = result.distances.iter().filter(|d| d.is_some()).count();
            println!(
                "{}: {} {:?} on {} samples: {} broken, median distance {}",
                run.display(),
                config.attack.label(),
                config.norm,
                result.labels.len(),
                broken,
                result
                    .median
                    .map_or("infinite".into(), |m| format!("{m:.5}"))
            );
            let stored = stored_attacks(&run)?;
            let attacks: Vec<String> = stored
                .iter()
                .filter(|r| r.config.norm == config.norm)
                .map(|r| r.config.attack.label().to_string())
                .collect();
            println!(
                "robustness score ({:?}, best of the stored {}): median {}",
                config.norm,
                attacks.join(", "),
                robustness_score(&stored, config.norm)
                    .map_or("infinite".into(), |m| format!("{m:.5}"))
            );
            let text = serde_json::to_string_pretty(&result)?;
            write_atomic(&out.join("result.json"), text.as_bytes())?;
        }
        Command::Experiment {
            source,
            preset,
            out,
            overrides,
            unit,
            status,
            report,
            slurm,
            submit: submit_array,
            cluster,
        } => {
            let exp = open_experiment(source, preset, out, &overrides, workspace)?;
            if status {
                print_status(&exp);
            } else if report {
                print_report(&exp, &write_report(&exp)?);
            } else if slurm {
                let binary = std::env::current_exe().context("locating the neureg binary")?;
                let extra: Vec<String> = device_arguments(device);
                let script = write_array(&exp, &cluster, &binary, &extra)?;
                println!("{}", script.display());
                if submit_array {
                    let job = submit(&script)?;
                    println!(
                        "submitted job array {job}: {} tasks; `neureg experiment {} --status` shows them",
                        exp.units().len(),
                        exp.dir.display()
                    );
                }
            } else {
                let progress = Interruptible::new()?;
                let report = match unit {
                    Some(k) => {
                        let u = exp.unit(k)?;
                        eprintln!("unit {k}: {}", u.name);
                        run_unit(&exp, &u, device, &progress, &mut |stage| {
                            eprintln!("unit {k} ({}): {stage}", u.name)
                        })
                        .map(|state| eprintln!("unit {k} ({}): {state:?}", u.name))
                        .and_then(|()| Ok((write_report(&exp)?, Vec::new())))
                    }
                    None => run_all(&exp, device, &progress, &mut |u, what| {
                        eprintln!("unit {} ({}): {what}", u.index, u.name)
                    }),
                };
                let (report, failed) = match report {
                    Err(crate::Error::Paused(why)) => {
                        eprintln!("paused: {why}; run the same command again to resume");
                        drop(progress);
                        std::process::exit(PAUSED_EXIT);
                    }
                    other => other?,
                };
                print_report(&exp, &report);
                if !failed.is_empty() {
                    let why: Vec<String> = failed
                        .iter()
                        .map(|(u, e)| format!("{}: {e}", u.name))
                        .collect();
                    anyhow::bail!("{} units failed: {}", failed.len(), why.join("; "));
                }
            }
        }
        Command::Variability { scans, json } => {
            let scans = load(&scans)?;
            let refs: Vec<&Scan> = scans.iter().collect();
            let analysis = analyse_oracles(&refs, device, &Bar::new())?;
            report_dropped(&analysis.dropped);
            let v = &analysis.variability;
            let text = serde_json::to_string_pretty(v).context("encoding the report")?;
            write_atomic(&json, text.as_bytes())?;
            println!(
                "delta_scan: n = {}, std = {:.4}; delta_repeat: n = {}, std = {:.4}",
                v.delta_scan.count, v.delta_scan.std, v.delta_repeat.count, v.delta_repeat.std
            );
        }
    }
    Ok(())
}

/// The experiment of `source` (a plan file or an experiment folder) or of a preset, with the
/// overrides applied; a new one goes into the workspace unless `out` says where.
fn open_experiment(
    source: Option<PathBuf>,
    preset: Option<Preset>,
    out: Option<PathBuf>,
    overrides: &[String],
    workspace: &Workspace,
) -> anyhow::Result<Experiment> {
    let plan = match (&source, preset) {
        (Some(_), Some(_)) => anyhow::bail!("give a plan or a preset, not both"),
        (Some(dir), None) if Experiment::plan_path(dir).is_file() => {
            if !overrides.is_empty() {
                anyhow::bail!(
                    "{} is an experiment folder: its plan is fixed (start a new folder to change settings)",
                    dir.display()
                );
            }
            return Ok(Experiment::open(dir)?);
        }
        (Some(dir), None) if dir.is_dir() => anyhow::bail!(
            "{}: neither a plan file nor an experiment folder (no plan.json)",
            dir.display()
        ),
        (Some(path), None) => Plan::read(path)?,
        (None, Some(p)) => Plan::preset(p, &find_sample(Path::new(""), Some(&workspace.root))?),
        (None, None) => anyhow::bail!("give a plan file, an experiment folder or --preset"),
    };
    let plan = plan.with_overrides(overrides)?;
    let dir = out.unwrap_or_else(|| workspace.experiments().join(&plan.name));
    Ok(Experiment::create(&dir, &plan)?)
}

/// `--device` as the command line was given it, for the array tasks.
fn device_arguments(device: &Device) -> Vec<String> {
    match device {
        Device::Cpu => vec!["--device".into(), "cpu".into()],
        _ => vec!["--device".into(), "cuda".into()],
    }
}

/// `neureg experiment --status`.
fn print_status(exp: &Experiment) {
    let all = statuses(exp);
    let done = all
        .iter()
        .filter(|s| s.state == crate::experiment::unit::UnitState::Done)
        .count();
    println!("{}: {done} of {} units done", exp.dir.display(), all.len());
    for s in &all {
        println!(
            "{:>3} {:<28} {}",
            s.unit.index,
            s.unit.name,
            s.describe(exp.plan.training.epochs)
        );
    }
}

/// Prints a report's opening lines and where it is.
fn print_report(exp: &Experiment, report: &Report) {
    for line in &report.summary {
        println!("{line}");
    }
    println!("{}", exp.report_dir().join("report.md").display());
}

/// Progress on standard error that a cluster's USR1 or a TERM asks to pause (Slurm may send
/// TERM twice, to the batch shell and to the process; Ctrl-C still ends at once).
struct Interruptible {
    bar: Bar,
    pause: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Interruptible {
    fn new() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGTERM, SIGUSR1};
        let pause = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(SIGTERM, pause.clone())?;
        signal_hook::flag::register(SIGUSR1, pause.clone())?;
        Ok(Interruptible {
            bar: Bar::new(),
            pause,
        })
    }
}

impl Progress for Interruptible {
    fn stage(&self, name: &str, total: u64) {
        self.bar.stage(name, total)
    }
    fn advance(&self, n: u64) {
        self.bar.advance(n)
    }
    fn pause_requested(&self) -> bool {
        self.pause.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Warns on standard error when the run in `dir` predates the batch-norm fix.
fn warn_if_before_the_fix(dir: &Path, config: &RunConfig) {
    if let Some(notice) = config.notice() {
        eprintln!("warning: {}: {notice}", dir.display());
    }
}

/// Reads scans with a progress bar.
fn load_scans(paths: &[PathBuf], options: LoadOptions) -> anyhow::Result<Vec<Scan>> {
    let bar = Bar::new();
    paths
        .iter()
        .map(|p| Ok(load_scan(p, options, &bar)?))
        .collect()
}

/// The predictors in `dirs` and the scans they were fitted to, checked against each other.
fn predictors_and_scans(
    dirs: &[PathBuf],
    options: LoadOptions,
    device: &Device,
) -> anyhow::Result<(Vec<LoadedPredictor>, Vec<Scan>)> {
    let loaded = dirs
        .iter()
        .map(|p| load_predictor(p, device))
        .collect::<crate::Result<Vec<_>>>()?;
    let scan_paths: Vec<PathBuf> = loaded.iter().map(|p| p.meta.scan_path.clone()).collect();
    let scans = load_scans(&scan_paths, options)?;
    for (p, s) in loaded.iter().zip(&scans) {
        p.check_scan(s)?;
    }
    Ok((loaded, scans))
}

fn report_dropped(dropped: &[(String, usize)]) {
    for (scan, n) in dropped.iter().filter(|d| d.1 > 0) {
        eprintln!("{scan}: {n} oracle images not repeated in every scan are left out");
    }
}

/// The text of `neureg info`.
pub fn describe_scan(scan: &Scan) -> String {
    let oracle = scan.oracle_trials();
    let repeats: Vec<usize> = oracle.values().map(Vec::len).collect();
    let mut out = format!("scan {} ({})\n", scan.name, scan.source.display());
    out += &format!(
        "trials: {}\nneurons: {}\n",
        scan.n_trials(),
        scan.n_neurons()
    );
    out += &format!(
        "images: {} distinct, {} x {} pixels\n",
        scan.images.len(),
        scan.image_shape.0,
        scan.image_shape.1
    );
    let tiers: Vec<String> = Tier::ALL
        .iter()
        .zip(scan.tier_counts())
        .map(|(t, c)| format!("{} {c}", t.name()))
        .collect();
    out += &format!("tiers: {}\n", tiers.join(", "));
    out += &format!(
        "oracle images: {} (repeats {})\n",
        oracle.len(),
        match (repeats.iter().min(), repeats.iter().max()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a} to {b}"),
            _ => "none".into(),
        }
    );
    if let Some(b) = &scan.behavior {
        for (k, name) in ["pupil size", "pupil size derivative", "running speed"]
            .iter()
            .enumerate()
        {
            let (lo, hi) = range(b.iter().map(|r| r[k]));
            out += &format!("{name}: {lo:.3} to {hi:.3}\n");
        }
    }
    if let Some(p) = &scan.pupil_center {
        for (k, name) in ["pupil centre x", "pupil centre y"].iter().enumerate() {
            let (lo, hi) = range(p.iter().map(|r| r[k]));
            out += &format!("{name}: {lo:.3} to {hi:.3}\n");
        }
    }
    out += &format!(
        "ground truth: {}\n",
        if scan.ground_truth.is_some() {
            "yes"
        } else {
            "no"
        }
    );
    out
}

fn range(values: impl Iterator<Item = f32>) -> (f32, f32) {
    values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// The device named on the command line, or the default.
pub fn choose_device(spec: Option<&str>) -> crate::Result<Device> {
    match spec {
        Some(s) => crate::device::open(s),
        None => Ok(crate::device::default_device()),
    }
}

/// Writes sample `i` of `originals` and `adversarial` (B, 1, H, W) as a PNG, magnified 4x:
/// original, perturbation (gray = 0, amplified to fill the range) and adversarial side by side.
fn write_example(
    path: &Path,
    originals: &Tensor,
    adversarial: &Tensor,
    i: usize,
) -> anyhow::Result<()> {
    let a = originals.get(i)?.flatten_all()?.to_vec1::<f32>()?;
    let b = adversarial.get(i)?.flatten_all()?.to_vec1::<f32>()?;
    let (h, w) = (originals.dim(2)?, originals.dim(3)?);
    let delta: Vec<f32> = a.iter().zip(&b).map(|(x, y)| y - x).collect();
    let scale = delta.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
    let panels = [
        a.clone(),
        delta.iter().map(|d| 0.5 + 0.5 * d / scale).collect(),
        b.clone(),
    ];
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
