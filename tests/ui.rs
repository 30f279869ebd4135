//! The window driven headless with egui_kittest: loading, tabs, hover
//! read-out, pinning, bad paths, removing a scan.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use neureg::data::LoadOptions;
use neureg::runs::Workspace;
use neureg::ui::{NeuregApp, Tab};

fn sample(k: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join("scans")
        .join(format!("scan_{k}.zip"))
}

/// The window on `paths`, in a fresh workspace of its own (kept for the test process's life).
fn harness(paths: Vec<PathBuf>) -> Harness<'static, NeuregApp> {
    let workspace = Workspace::at(&tempfile::tempdir().unwrap().keep()).unwrap();
    let app = NeuregApp::new(Device::Cpu, LoadOptions::default(), paths, workspace);
    Harness::builder()
        .with_size(egui::vec2(1500.0, 1000.0))
        .build_ui_state(|ui, app: &mut NeuregApp| app.show(ui), app)
}

/// Steps the window until its jobs are done (they run on worker threads).
fn settle(h: &mut Harness<'static, NeuregApp>) {
    settle_within(h, 2000)
}

/// [`settle`] for jobs of up to `steps` x 10 ms.
fn settle_within(h: &mut Harness<'static, NeuregApp>, steps: usize) {
    for _ in 0..steps {
        h.step();
        if !h.state().is_busy() {
            h.run_steps(3);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("jobs did not finish");
}

use eframe::egui;

#[test]
fn scans_then_similarity_with_hover_and_pin() {
    let mut h = harness(vec![sample(1), sample(2)]);
    settle(&mut h);
    assert_eq!(h.state().shared.scans.len(), 2);
    h.get_by_label("scan_1");
    h.get_by_label("Remove scan_2");
    h.get_by_label_contains("Signal-to-noise weights of scan_1");

    h.get_by_label("Similarity").click();
    h.run_steps(3);
    assert_eq!(h.state().tab, Tab::Similarity);
    assert!(
        h.state().shared.analysis.is_some(),
        "{:?}",
        h.state().shared.analysis_error
    );
    let mean = h.get_by_label("Mean").rect();
    h.get_by_label_contains("δ_repeat (σ =");
    h.get_by_label_contains("δ_scan (σ =");

    // Hover a cell of the mean matrix: its two images and every matrix's value appear.
    let cell = egui::pos2(mean.left() + 30.0, mean.bottom() + 60.0);
    h.hover_at(cell);
    h.run_steps(2);
    h.get_by_label("Under the pointer");
    // The three neural matrices and the images' pixel similarity.
    assert_eq!(h.get_all_by_label_contains("S = ").count(), 4);
    let hovered = h.state().similarity_view_hovered();
    assert!(hovered.is_some());

    // Click pins the pair; it stays when the pointer leaves.
    h.hover_at(cell);
    h.run_steps(1);
    h.drag_at(cell);
    h.drop_at(cell);
    h.run_steps(2);
    h.hover_at(egui::pos2(5.0, 500.0));
    h.run_steps(2);
    h.get_by_label("Pinned");
    assert!(h.state().similarity_view_pinned().is_some());
    assert_eq!(h.state().similarity_view_pinned(), hovered);
}

#[test]
fn bad_path_shows_an_error_and_the_window_keeps_running() {
    let mut h = harness(vec![sample(1)]);
    settle(&mut h);
    h.get_by_label("Scan folder, zip or NWB file:");
    h.state_mut().open(PathBuf::from("/no/such/scan.zip"));
    settle(&mut h);
    h.get_by_label_contains("Error: /no/such/scan.zip");
    assert_eq!(h.state().shared.scans.len(), 1);
    h.get_by_label("Dismiss").click();
    h.run_steps(2);
    assert!(h.state().shared.errors.is_empty());
}

#[test]
fn typed_path_loads_a_scan() {
    let mut h = harness(Vec::new());
    settle(&mut h);
    h.get_by_label("No scans loaded.");
    h.get_by_label("Scan folder, zip or NWB file:").focus();
    h.get_by_label("Scan folder, zip or NWB file:")
        .type_text(sample(3).to_str().unwrap());
    h.run_steps(1);
    h.get_by_label("Load").click();
    h.run_steps(1);
    settle(&mut h);
    assert_eq!(h.state().shared.scans.len(), 1);
    h.get_by_label("Remove scan_3");
}

#[test]
fn removing_a_scan_recomputes_the_analysis() {
    let mut h = harness(vec![sample(1), sample(2)]);
    settle(&mut h);
    h.get_by_label("Remove scan_2").click();
    h.run_steps(1);
    settle(&mut h);
    assert_eq!(h.state().shared.scans.len(), 1);
    let a = h
        .state()
        .shared
        .analysis
        .as_ref()
        .expect("analysis of the remaining scan");
    assert_eq!(a.oracles.len(), 1);
    assert_eq!(a.variability.delta_scan.count, 0);
}

#[test]
fn predictor_tab_fits_shows_quality_and_builds_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let config = neureg::data::synth::SynthConfig {
        scans: 1,
        images: 40,
        oracle: 5,
        repeats: 3,
        neurons: 12,
        ..Default::default()
    };
    let paths =
        neureg::data::synth::write_synthetic(&config, dir.path(), true, &neureg::progress::Silent)
            .unwrap();
    let mut h = harness(paths);
    settle(&mut h);
    h.get_by_label("Predictor").click();
    h.run_steps(2);
    {
        let app = h.state_mut();
        let set = &mut app.predictor_view.settings;
        set.config.channels = 4;
        set.config.layers = 2;
        set.config.input_kernel = 5;
        set.config.hidden_kernel = 3;
        set.fit.max_epochs = 2;
        set.folder = dir.path().join("predictors").display().to_string();
        app.shared.export_dir = dir.path().join("exports");
    }
    h.get_by_label("Fit predictor").click();
    h.run_steps(1);
    settle(&mut h);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    assert_eq!(h.state().fitted_predictors().len(), 1);
    h.get_by_label_contains("scan_1: test correlation per neuron");
    h.get_by_label_contains("Fig. 1D: 5 oracle images of scan_1");
    h.get_by_label_contains("Against the noise-free similarity");
    h.get_by_label("Readout positions over a stimulus");

    h.get_by_label("Build target").click();
    h.run_steps(1);
    settle(&mut h);
    let target = h.state().shared.target.clone().expect("a target");
    assert_eq!(target.built.target.matrix.n, 40);
    assert!(target.built.path.is_file());
    // Pictured in the job: one pixel per cell at this size.
    assert_eq!(target.picture.size, [40, 40]);
    h.get_by_label("Similarity").click();
    h.run_steps(3);
    h.get_by_label_contains("Regularisation target: neural_model (40 images");
}

#[test]
fn predictor_tab_opens_the_sample_predictors_of_the_loaded_scans() {
    let mut h = harness(vec![sample(1), sample(3)]);
    settle(&mut h);
    h.get_by_label("Predictor").click();
    h.run_steps(2);
    h.get_by_label("Open sample predictors").click();
    h.run_steps(1);
    settle(&mut h);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    // One per loaded scan, each with the scan it was fitted to.
    let names: Vec<String> = h
        .state()
        .fitted_predictors()
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(names, ["scan_1", "scan_3"]);
    h.get_by_label_contains("scan_3: test correlation per neuron");
    h.get_by_label_contains("Fig. 1D: 20 oracle images of scan_3");
    h.get_by_label("Build target");
}

#[test]
fn training_tab_queues_a_run_and_its_curves_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(vec![]);
    h.get_by_label("Training").click();
    h.run_steps(2);
    {
        let app = h.state_mut();
        app.shared.runs.root = dir.path().display().to_string();
        let view = &mut app.training_view.settings;
        let f = &mut view.form;
        f.condition = neureg::runs::Condition::None;
        f.train_limit = 64;
        f.test_limit = 32;
        f.width = 0.125;
        f.epochs = 2;
        f.batch = 16;
        f.log_every = 1;
        view.seeds = "0, 1".into();
    }
    h.run_steps(2);
    h.get_by_label("Queue 2 runs").click();
    h.run_steps(1);
    // The curves grow while the runs train: more metrics lines are read over time.
    let mut seen = Vec::new();
    for _ in 0..3000 {
        h.step();
        let lines: usize = h
            .state()
            .shared
            .runs
            .runs
            .iter()
            .map(|r| r.events.len())
            .sum();
        if seen.last() != Some(&lines) {
            seen.push(lines);
        }
        if !h.state().is_busy() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    settle(&mut h);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    assert!(
        seen.len() >= 3,
        "metrics read as they were written: {seen:?}"
    );
    let runs = &h.state().shared.runs.runs;
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r.status() == neureg::runs::RunStatus::Finished));
    h.run_steps(3);
    h.get_by_label("Task loss (cross-entropy) per step");
    h.get_by_label_contains("Layer weights gamma");
    h.get_by_label("Per condition (finished runs)");
    assert_eq!(h.query_all_by_label("finished, 2 epochs").count(), 2);
}

#[test]
fn robustness_tab_evaluates_noise_and_shows_adversarials_as_they_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = neureg::runs::RunConfig {
        data: root.join("sample_data/fashion-mnist"),
        train_limit: 512,
        test_limit: 16,
        width: 0.0625,
        epochs: 3,
        batch: 32,
        lr: 0.05,
        ..Default::default()
    };
    let run = dir.path().join("none-a20-seed0");
    neureg::train::classifier::train_run(&run, &config, &Device::Cpu, &neureg::progress::Silent)
        .unwrap();
    let mut h = harness(vec![]);
    h.state_mut().shared.runs.root = dir.path().display().to_string();
    h.state_mut().shared.export_dir = dir.path().join("exports");
    h.get_by_label("Robustness").click();
    h.run_steps(3);
    h.state_mut().robustness_view.settings.noise.samples = 40;
    h.run_steps(1);
    h.get_by_label("Evaluate noise").click();
    h.run_steps(1);
    settle(&mut h);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    assert!(run.join("results/noise_gaussian.json").is_file());
    // None has no strength to show; it is named in the legend and the statistics.
    assert!(h.get_all_by_label_contains("None (1 run)").count() >= 1);
    h.get_by_label("Export noise CSV").click();
    h.run_steps(2);
    assert!(dir.path().join("exports/noise_curves.csv").is_file());

    {
        let a = &mut h.state_mut().robustness_view.settings.attack;
        a.samples = 12;
        a.batch = 6;
        a.rounds = 2;
        a.steps = 5;
    }
    h.run_steps(1);
    h.get_by_label("Attack none-a20-seed0").click();
    h.run_steps(1);
    settle(&mut h);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    assert!(run.join("results/attack_pgd_linf.json").is_file());
    let examples = h.state().robustness_view.gallery.lock().unwrap().len();
    assert!(examples > 0, "adversarial examples reach the gallery");
    h.run_steps(2);
    h.get_by_label_contains("Adversarial examples");
    h.get_by_label("Save gallery PNG");
    h.get_by_label("Save noise plot PNG");
    assert!(h.query_all_by_label_contains("distance").count() >= examples);
    h.get_by_label("Export medians CSV").click();
    h.run_steps(2);
    let csv = std::fs::read_to_string(dir.path().join("exports/attack_medians.csv")).unwrap();
    assert!(
        csv.contains("none-a20-seed0,None,20,0,Linf,PGD,12,") && csv.contains(",Linf,best,12,"),
        "{csv}"
    );
    // A result file broken on disk is reported once, naming it, when the runs are next re-read.
    std::fs::write(run.join("results/budget_fmn_l2.json"), "{").unwrap();
    for _ in 0..600 {
        h.step();
        if !h.state().shared.errors.is_empty() {
            break;
        }
    }
    h.run_steps(120);
    let errors = &h.state().shared.errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("budget_fmn_l2.json"), "{errors:?}");
    std::fs::remove_file(run.join("results/budget_fmn_l2.json")).unwrap();
    h.state_mut().shared.errors.clear();
    // Classes by name, from the data set's classes.txt.
    let names =
        std::fs::read_to_string(root.join("sample_data/fashion-mnist/classes.txt")).unwrap();
    let names: Vec<&str> = names.lines().collect();
    let first = h.state().robustness_view.gallery.lock().unwrap()[0]
        .classes
        .clone();
    assert!(
        names.contains(&first.0.as_str()) && names.contains(&first.1.as_str()),
        "{first:?}"
    );
    assert_ne!(first.0, first.1);

    // Fig. 5 from the tab: DDN at two budgets.
    {
        let v = &mut h.state_mut().robustness_view.settings;
        v.attack.attack = neureg::eval::minimal::AttackName::Ddn;
        v.budgets = "2,4".into();
    }
    h.run_steps(2);
    h.get_by_label("Budget curve (Fig. 5)").click();
    h.run_steps(1);
    settle(&mut h);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    assert!(run.join("results/budget_ddn_l2.json").is_file());
    h.run_steps(2);
    h.get_by_label_contains("Median distance against the iteration budget");
}

#[test]
fn experiment_tab_runs_a_plan_pauses_resumes_and_shows_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::tiny_plan(dir.path(), 96, 2);
    let mut h = harness(vec![]);
    h.get_by_label("Experiment").click();
    h.run_steps(2);
    {
        let v = &mut h.state_mut().experiment_view.settings;
        v.source = plan.display().to_string();
        v.folder = dir.path().join("exp").display().to_string();
    }
    h.get_by_label("Open").click();
    h.run_steps(3);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    h.get_by_label_contains("tiny in");
    h.get_by_label("none-a0-seed0");
    h.get_by_label_contains("0 of 6 units done");

    // Start, pause while the first unit trains, start again.
    h.get_by_label("Start").click();
    let first = dir.path().join("exp/runs/none-a0-seed0/metrics.jsonl");
    for _ in 0..6000 {
        h.step();
        if std::fs::read_to_string(&first).is_ok_and(|t| t.contains("\"step\"")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    h.get_by_label("Pause").click();
    settle(&mut h);
    assert!(
        h.state()
            .shared
            .notices
            .iter()
            .any(|n| n.starts_with("paused:")),
        "{:?} {:?}",
        h.state().shared.notices,
        h.state().shared.errors
    );
    h.run_steps(2);
    h.get_by_label("Start").click();
    settle_within(&mut h, 60_000);
    // Let the once-a-second refresh read the finished report.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    h.run_steps(3);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
    h.get_by_label_contains("6 of 6 units done");
    h.get_by_label_contains("All 6 units are done.");
    h.get_by_label("Fig. 4: accuracy under gaussian noise.");
    let steps: Vec<u64> =
        neureg::runs::store::RunInfo::read(&dir.path().join("exp/runs/none-a0-seed0"))
            .unwrap()
            .events
            .iter()
            .filter_map(|e| match e {
                neureg::runs::MetricEvent::Step { step, .. } => Some(*step),
                _ => None,
            })
            .collect();
    assert_eq!(
        steps,
        vec![2, 4, 6, 8, 10, 12],
        "no line lost or repeated by the pause"
    );
}

/// eframe's storage, in memory.
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn every_tab_s_settings_survive_a_restart() {
    use neureg::ui::state::State;
    let dir = tempfile::tempdir().unwrap();
    let workspace = Workspace::at(dir.path()).unwrap();
    let mut app = NeuregApp::new(
        Device::Cpu,
        LoadOptions::default(),
        vec![sample(2)],
        workspace.clone(),
    );
    app.tab = Tab::Robustness;
    app.shared.export_dir = dir.path().join("figures");
    app.shared.runs.root = dir.path().join("my-runs").display().to_string();
    app.shared.runs.ticked.insert(dir.path().join("my-runs/a"));
    app.predictor_view.settings.fit.max_epochs = 7;
    app.predictor_view.settings.open_path = "somewhere/scan_9".into();
    app.training_view.settings.seeds = "3, 4".into();
    app.training_view.settings.form.width = 0.5;
    app.robustness_view.settings.noise.seed = 11;
    app.robustness_view.settings.budgets = "3,6".into();
    app.experiment_view.settings.source = "plans/mine.toml".into();
    let mut storage = Memory::default();
    app.state().save(&mut storage);

    let restored = NeuregApp::restored(
        Device::Cpu,
        LoadOptions::default(),
        State::load(&storage),
        workspace.clone(),
    );
    assert_eq!(restored.state(), app.state());
    assert_eq!(restored.tab, Tab::Robustness);
    assert_eq!(restored.predictor_view.settings.fit.max_epochs, 7);
    assert_eq!(restored.training_view.settings.seeds, "3, 4");
    assert_eq!(restored.robustness_view.settings.noise.seed, 11);
    assert_eq!(restored.shared.export_dir, dir.path().join("figures"));
    let remembered = restored.state().scans.unwrap();
    assert_eq!(remembered.len(), 1);
    assert!(remembered[0].ends_with("scan_2.zip"));

    // A first start opens the samples with default settings; an earlier version's scan list is
    // still read; a broken save is a first start, not a failure.
    let fresh = State::load(&Memory::default());
    assert_eq!(fresh, State::default());
    let mut old = Memory::default();
    eframe::Storage::set_string(&mut old, "neureg.scans", format!("[{:?}]", sample(3)));
    assert_eq!(State::load(&old).scans, Some(vec![sample(3)]));
    let mut broken = Memory::default();
    eframe::Storage::set_string(&mut broken, "neureg.state", "{not json".into());
    assert_eq!(State::load(&broken), State::default());
}

#[test]
fn switching_the_workspace_moves_the_default_folders() {
    let mut h = harness(vec![]);
    h.run_steps(2);
    let other = tempfile::tempdir().unwrap();
    let ws = Workspace::at(other.path()).unwrap();
    h.state_mut().switch_workspace(ws.clone());
    h.run_steps(2);
    let app = h.state();
    assert_eq!(app.shared.workspace, ws);
    assert_eq!(app.shared.export_dir, ws.exports());
    assert_eq!(
        app.predictor_view.settings.folder,
        ws.predictors().display().to_string()
    );
    assert!(app
        .experiment_view
        .settings
        .folder
        .starts_with(&other.path().display().to_string()));
}

/// Lets the Inspect tab's jobs (the inspection, then the feature maps it asks for) finish
/// and checks that none reported an error.
fn settle_inspection(h: &mut Harness<'static, NeuregApp>) {
    settle_within(h, 20000);
    h.run_steps(3);
    settle_within(h, 20000);
    assert!(
        h.state().shared.errors.is_empty(),
        "{:?}",
        h.state().shared.errors
    );
}

#[test]
fn inspect_tab_shows_the_ticked_runs_layers_against_the_brain() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs = root.join("sample_data/experiments/lecture/runs");
    let mut h = harness((1..=4).map(sample).collect());
    settle_within(&mut h, 20000);
    h.state_mut().shared.runs.root = runs.display().to_string();
    // seed1 has no checkpoint: left out, named.
    for r in ["none-a0-seed0", "neural-model-a20-seed0", "none-a0-seed1"] {
        h.state_mut().shared.runs.ticked.insert(runs.join(r));
    }
    h.state_mut().inspect_view.settings.resamples = 40;
    h.run_steps(3);
    h.get_by_label("Inspect").click();
    h.run_steps(3);
    settle_inspection(&mut h);
    let shown = h.state().inspect_view.latest().expect("an inspection");
    let with_weights = h
        .state()
        .shared
        .runs
        .ticked_runs()
        .iter()
        .filter(|r| neureg::runs::RunDir(&r.dir).checkpoint().is_file())
        .count();
    assert!(with_weights >= 2);
    assert_eq!(shown.networks.len(), with_weights);
    assert_eq!(shown.neural.image_ids.len(), 20);
    h.get_by_label_contains("against the neural matrix over depth");
    h.get_by_label_contains("Layer against the neural matrix");
    h.get_by_label_contains("Left out, no checkpoint:");
    // The tab's numbers are the library's on the same networks and images.
    let scans: Vec<_> = h.state().shared.scan_handles();
    let refs: Vec<&neureg::data::Scan> = scans.iter().map(|s| s.as_ref()).collect();
    let request = shown.request.clone();
    let again =
        neureg::inspect::inspect(&request, &refs, &Device::Cpu, &neureg::progress::Silent).unwrap();
    for (a, b) in shown.networks.iter().zip(&again.networks) {
        for (x, y) in a.layers.iter().zip(&b.layers) {
            assert_eq!(x.estimate, y.estimate);
        }
    }

    // A VGG named in the tab is inspected beside the runs; the Neural (model) run's target
    // becomes the reference when chosen, on its own images.
    let vgg = root.join("tests/fixtures/vgg19_to_conv3_1.safetensors");
    let model = runs.join("neural-model-a20-seed0");
    h.get_by_label("VGG weights (inspected beside the runs):")
        .focus();
    h.run_steps(1);
    h.get_by_label("VGG weights (inspected beside the runs):")
        .type_text(&vgg.display().to_string());
    h.state_mut().inspect_view.settings.target_images = 30;
    h.run_steps(2);
    h.get_by_label("Neural matrix:").click();
    h.run_steps(2);
    h.get_by_label("target of neural-model-a20-seed0").click();
    h.run_steps(3);
    // Choosing a target reads the runs as their similarity loss saw the images.
    assert_eq!(
        h.state().inspect_view.settings.batch_norm,
        neureg::inspect::layers::LayerBn::AsLoss
    );
    settle_inspection(&mut h);
    let shown = h.state().inspect_view.latest().expect("an inspection");
    assert_eq!(shown.networks.len(), with_weights + 1);
    assert_eq!(shown.networks.last().unwrap().about.path, vgg);
    assert_eq!(
        shown.request.reference,
        neureg::inspect::neural::ReferenceChoice::TargetOf {
            run: model,
            images: 30
        }
    );
    assert_eq!(shown.neural.image_ids.len(), 30);
    h.get_by_label_contains("against the run's target over depth");
    h.get_by_label_contains("no noise ceiling for a target");

    // Back to the brain, then to the target again: the target's inspection, computed before,
    // is the one shown.
    let choose = |h: &mut Harness<'static, NeuregApp>, option: &str| {
        h.get_by_label("Neural matrix:").click();
        h.run_steps(2);
        h.get_by_label(option).click();
        h.run_steps(3);
        settle_inspection(h);
    };
    choose(&mut h, "mean oracle similarity");
    let brain = h.state().inspect_view.latest().expect("an inspection");
    assert_eq!(
        brain.request.reference,
        neureg::inspect::neural::ReferenceChoice::Oracle
    );
    choose(&mut h, "target of neural-model-a20-seed0");
    let again = h.state().inspect_view.latest().expect("an inspection");
    assert!(Arc::ptr_eq(&again, &shown), "the cached inspection");
}
