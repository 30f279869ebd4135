//! `neureg experiment` end to end on a tiny plan: killed mid-run, its status and partial
//! report, resumed to the end with nothing lost or repeated, its report's numbers against
//! `neureg eval-noise` and the stored attacks, a unit held by another process refused, and the
//! shipped experiments' reports rebuilt from their runs.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use neureg::experiment::status::{statuses, UnitState};
use neureg::experiment::Experiment;
use neureg::runs::store::RunInfo;
use neureg::runs::{MetricEvent, RunStatus};

use common::{neureg, ok};

/// Steps logged by a run, in order.
fn logged_steps(dir: &Path) -> Vec<u64> {
    RunInfo::read(dir)
        .map(|r| {
            r.events
                .iter()
                .filter_map(|e| match e {
                    MetricEvent::Step { step, .. } => Some(*step),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The stored Gaussian noise curve of a unit.
fn curve_of(exp: &Path, name: &str) -> Vec<f64> {
    let path = exp
        .join("runs")
        .join(name)
        .join("results/noise_gaussian.json");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    c["accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn an_experiment_survives_a_kill_reports_partially_and_its_numbers_match_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::tiny_plan(dir.path(), 192, 2);
    let exp_dir = dir.path().join("exp");
    let exp_arg = exp_dir.to_str().unwrap();

    // Killed (SIGKILL) while the second unit trains.
    let mut child = Command::new(env!("CARGO_BIN_EXE_neureg"))
        .args(["experiment", plan.to_str().unwrap(), "--out", exp_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let second = exp_dir.join("runs/neural-model-a5-seed0");
    let start = Instant::now();
    while logged_steps(&second).len() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the experiment ended before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(600), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let exp = Experiment::open(&exp_dir).unwrap();
    let states: Vec<UnitState> = statuses(&exp).into_iter().map(|s| s.state).collect();
    assert_eq!(states.len(), 6);
    assert_eq!(states[0], UnitState::Done);
    assert!(
        matches!(states[1], UnitState::Partial { .. }),
        "{:?}",
        states[1]
    );
    assert!(states[2..].iter().all(|s| *s == UnitState::NotStarted));
    let status = ok(&["experiment", exp_arg, "--status"]);
    assert!(status.contains("1 of 6 units done"), "{status}");
    assert!(
        status.contains("to do: training, gaussian noise, FMN L2"),
        "{status}"
    );
    let partial = ok(&["experiment", exp_arg, "--report"]);
    assert!(
        partial.contains("Partial report: 1 of 6 units are done; missing: neural-model-a5-seed0"),
        "{partial}"
    );

    // Another plan is refused in this folder; a held unit is refused with its holder's name.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("seeds = [0, 1]", "seeds = [5]"),
    )
    .unwrap();
    let out = neureg(&["experiment", other.to_str().unwrap(), "--out", exp_arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds another plan"));
    let held = exp_dir.join("runs/shuffle-a5-seed0");
    let _lock = neureg::runs::lock::FolderLock::acquire(&held).unwrap();
    let out = neureg(&["experiment", exp_arg, "--unit", "2"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("in use by process"),
        "{e}"
    );
    drop(_lock);

    // Resumed to the end.
    let done = ok(&["experiment", exp_arg]);
    assert!(done.contains("All 6 units are done."), "{done}");
    for s in statuses(&exp) {
        assert_eq!(s.state, UnitState::Done, "{}", s.unit.name);
        let steps = logged_steps(&exp.unit_dir(&s.unit));
        let expected: Vec<u64> = (1..=steps.len() as u64).map(|k| 2 * k).collect();
        assert_eq!(steps, expected, "{}: no step lost or repeated", s.unit.name);
    }
    // The killed unit ends with the weights of the same run trained unbroken.
    let again = dir.path().join("again");
    ok(&[
        "train",
        "--config",
        second.join("config.json").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        RunInfo::read(&again).unwrap().events,
        RunInfo::read(&second).unwrap().events
    );
    assert!(
        std::fs::read(again.join("checkpoints/last.safetensors")).unwrap()
            == std::fs::read(second.join("checkpoints/last.safetensors")).unwrap()
    );

    // The report's noise numbers are those of `neureg eval-noise` on the same runs.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(exp_dir.join("report/numbers.json")).unwrap(),
    )
    .unwrap();
    let none_runs = [
        exp_dir.join("runs/none-a0-seed0"),
        exp_dir.join("runs/none-a0-seed1"),
    ];
    let noise_json = dir.path().join("noise.json");
    let mut args = vec!["eval-noise".to_string()];
    args.extend(none_runs.iter().map(|p| p.display().to_string()));
    args.extend(
        [
            "--out",
            noise_json.to_str().unwrap(),
            "--levels",
            "0,0.1",
            "--samples",
            "40",
        ]
        .map(String::from),
    );
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let direct: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&noise_json).unwrap()).unwrap();
    let none_curve = &report["noise"][0]["curves"][0];
    assert_eq!(none_curve["label"], "None");
    for k in 0..2 {
        let ours = none_curve["accuracy"][k]["mean"].as_f64().unwrap();
        let theirs = direct["conditions"][0]["mean"][k].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() < 1e-12,
            "level {k}: {ours} vs {theirs}"
        );
    }
    // Noise level 0 on the 40 test images is the run's own test accuracy on them.
    for (k, unit) in report["units"].as_array().unwrap().iter().enumerate() {
        let name = unit["name"].as_str().unwrap();
        let clean = curve_of(&exp_dir, name)[0];
        let trained = unit["test_accuracy"].as_f64().unwrap();
        assert!(
            (clean - trained).abs() < 1e-12,
            "unit {k} {name}: {clean} vs {trained}"
        );
    }
    // Paired differences: Neural (model) minus None at each level, by hand from the curves.
    let curve = |name: &str| curve_of(&exp_dir, name);
    let d: Vec<f64> = (0..2)
        .map(|s| {
            curve(&format!("neural-model-a5-seed{s}"))[1] - curve(&format!("none-a0-seed{s}"))[1]
        })
        .collect();
    let diff = report["noise"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["label"] == "Neural (model)" && x["against"] == "None")
        .unwrap();
    let mean = diff["difference"][1]["mean"].as_f64().unwrap();
    assert!((mean - (d[0] + d[1]) / 2.0).abs() < 1e-12);
    let sd = diff["difference"][1]["sd"].as_f64().unwrap();
    assert!(
        (sd - (d[0] - d[1]).abs() / 2f64.sqrt()).abs() < 1e-12,
        "SD of two values"
    );
    // Each seed's median perturbation is the stored attack's median.
    let p = &report["perturbations"][0];
    assert_eq!(
        (p["label"].as_str(), p["norm"].as_str()),
        (Some("None"), Some("l2"))
    );
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(exp_dir.join("runs/none-a0-seed0/results/attack_fmn_l2.json"))
            .unwrap(),
    )
    .unwrap();
    match (p["per_seed"][0][1].as_f64(), stored["median"].as_f64()) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6 * b.abs().max(1.0), "{a} vs {b}"),
        (a, b) => assert_eq!(a, b),
    }
    for file in [
        "report.md",
        "numbers.json",
        "units.csv",
        "clean_accuracy.csv",
        "noise_gaussian.csv",
        "perturbations.csv",
        "gamma.csv",
        "noise_gaussian.png",
        "noise_gaussian_minus_none.png",
        "accuracy_vs_robustness.png",
        "perturbation_l2.png",
        "gamma.png",
    ] {
        assert!(
            exp_dir.join("report").join(file).is_file(),
            "{file} missing"
        );
    }
    assert!(RunInfo::read(&second).unwrap().status() == RunStatus::Finished);
}

#[test]
fn bad_plans_and_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, "[[conditions]]\ncondition = \"shuffle\"\n").unwrap();
    let out = neureg(&["experiment", plan.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("plan.toml") && e.contains("needs a target"),
        "{e}"
    );
    std::fs::write(&plan, "[[conditions]\n").unwrap();
    let e = String::from_utf8_lossy(&neureg(&["experiment", plan.to_str().unwrap()]).stderr)
        .into_owned();
    assert!(
        e.contains("plan.toml") && e.contains("not a TOML plan"),
        "{e}"
    );
    let e = String::from_utf8_lossy(&neureg(&["experiment", dir.path().to_str().unwrap()]).stderr)
        .into_owned();
    assert!(
        e.contains("neither a plan file nor an experiment folder"),
        "{e}"
    );
    let exp = dir.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(exp.join("plan.json"), "{\"name\": 3}").unwrap();
    let e =
        String::from_utf8_lossy(&neureg(&["experiment", exp.to_str().unwrap(), "--status"]).stderr)
            .into_owned();
    assert!(
        e.contains("plan.json") && e.contains("not an experiment plan"),
        "{e}"
    );
    let e = String::from_utf8_lossy(
        &neureg(&[
            "experiment",
            "--preset",
            "lecture",
            "--set",
            "training.epoch=3",
        ])
        .stderr,
    )
    .into_owned();
    assert!(e.contains("no setting \"training.epoch\""), "{e}");
    // A plan with a unit that cannot run is refused before anything runs (the plan check),
    // naming the unit and why; nothing is trained and no folder is made.
    std::fs::write(
        &plan,
        format!(
            "[training]\ndata = \"{}\"\ntrain_limit = 32\ntest_limit = 8\nwidth = 0.0625\n\
             epochs = 1\nbatch = 16\n[[conditions]]\ncondition = \"custom\"\n\
             target = \"missing.npy\"\n[noise]\nlevels = [0.0]\nsamples = 8\n",
            common::root().join("sample_data/fashion-mnist").display()
        ),
    )
    .unwrap();
    let out = neureg(&[
        "experiment",
        plan.to_str().unwrap(),
        "--out",
        dir.path().join("e").to_str().unwrap(),
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{e}");
    assert!(
        e.contains("custom-a20-seed0") && e.contains("missing.npy") && e.contains("nothing was"),
        "{e}"
    );
    assert!(!dir.path().join("e/runs").exists());
}

/// The array script asks for CUDA on each node when the array asks for GPUs, and names no device
/// otherwise (the node decides): never the submitting machine's device.
#[test]
fn the_slurm_script_takes_the_device_from_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::tiny_plan(dir.path(), 32, 1);
    for (gpus, name) in [(Some("1"), "gpu"), (None, "cpu")] {
        let exp = dir.path().join(name);
        let mut args = vec![
            "experiment",
            plan.to_str().unwrap(),
            "--out",
            exp.to_str().unwrap(),
            "--slurm",
        ];
        if let Some(g) = gpus {
            args.extend(["--gpus", g]);
        }
        ok(&args);
        let script = std::fs::read_to_string(exp.join("slurm/array.sbatch")).unwrap();
        if gpus.is_some() {
            assert!(script.contains("#SBATCH --gpus-per-task=1"), "{script}");
            assert!(script.contains("'--device' 'cuda'"), "{script}");
        } else {
            assert!(!script.contains("gpus"), "{script}");
            assert!(!script.contains("--device"), "{script}");
        }
    }
}

/// Copies an experiment folder without its checkpoints (a report reads none).
fn copy_without_checkpoints(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "checkpoints" {
                copy_without_checkpoints(&source, &target);
            }
        } else {
            std::fs::copy(&source, &target).unwrap();
        }
    }
}

/// Every shipped experiment's report is what `--report` rebuilds from its runs today, and its
/// numbers are the runs' own: a group's clean accuracy the mean of its units' test accuracy, a
/// primary difference the per-seed difference of the stored noise curves' means.
#[test]
fn the_shipped_reports_are_rebuilt_from_their_runs() {
    let shipped = common::root().join("sample_data/experiments");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let from = entry.unwrap().path();
        if !from.join("plan.json").is_file() {
            continue;
        }
        let exp = dir.path().join(from.file_name().unwrap());
        copy_without_checkpoints(&from, &exp);
        std::fs::remove_dir_all(exp.join("report")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_neureg"))
            .args(["experiment", exp.to_str().unwrap(), "--report"])
            .current_dir(common::root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for file in [
            "report.md",
            "numbers.json",
            "comparisons.csv",
            "noise_gaussian.csv",
        ] {
            let rebuilt = std::fs::read_to_string(exp.join("report").join(file)).unwrap();
            let shipped = std::fs::read_to_string(from.join("report").join(file)).unwrap();
            assert!(
                rebuilt == shipped,
                "{}: {file} differs from the rebuilt one",
                from.display()
            );
        }

        let numbers: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(from.join("report/numbers.json")).unwrap(),
        )
        .unwrap();
        let units = numbers["units"].as_array().unwrap();
        let unit = |group: &str, seed: u64| -> &serde_json::Value {
            units
                .iter()
                .find(|u| u["group"] == group && u["seed"] == seed)
                .unwrap_or_else(|| panic!("no unit of {group}, seed {seed}"))
        };
        for group in numbers["groups"].as_array().unwrap() {
            let label = group["label"].as_str().unwrap();
            let seeds = group["seeds"].as_array().unwrap();
            let clean = seeds
                .iter()
                .map(|s| {
                    unit(label, s.as_u64().unwrap())["test_accuracy"]
                        .as_f64()
                        .unwrap()
                })
                .sum::<f64>()
                / seeds.len() as f64;
            assert!((clean - group["clean"]["mean"].as_f64().unwrap()).abs() < 1e-12);
        }
        let mean_of = |group: &str, seed: u64| {
            let curve = curve_of(&from, unit(group, seed)["name"].as_str().unwrap());
            curve.iter().sum::<f64>() / curve.len() as f64
        };
        let primary: Vec<_> = numbers["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["primary"] == true)
            .collect();
        assert!(!primary.is_empty());
        for c in primary {
            let (label, against) = (c["label"].as_str().unwrap(), c["against"].as_str().unwrap());
            for (seed, d) in c["seeds"]
                .as_array()
                .unwrap()
                .iter()
                .zip(c["differences"].as_array().unwrap())
            {
                let seed = seed.as_u64().unwrap();
                let expected = mean_of(label, seed) - mean_of(against, seed);
                assert!(
                    (expected - d.as_f64().unwrap()).abs() < 1e-12,
                    "{label} minus {against}, seed {seed}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 1, "no shipped experiment found");
}
