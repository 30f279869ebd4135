//! The workspace and the sample-data lookup through the real binary, started from folders that
//! are not the repository: `neureg train` with no paths at all, and runs that open (and fail
//! clearly) from anywhere, and scan commands given sample paths or none.

use std::path::Path;
use std::process::{Command, Output};

/// `neureg args` started in `cwd` with the workspace `ws`.
fn neureg_in(cwd: &Path, ws: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neureg"))
        .args(args)
        .current_dir(cwd)
        .env("NEUREG_WORKSPACE", ws)
        .env_remove("NEUREG_SAMPLE_DATA")
        .output()
        .expect("running neureg")
}

fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const TINY: [&str; 9] = [
    "--train-limit",
    "32",
    "--test-limit",
    "16",
    "--width",
    "0.0625",
    "--batch",
    "16",
    "--epochs",
];

#[test]
fn train_from_an_empty_folder_goes_to_the_workspace_and_its_runs_open_from_anywhere() {
    let (empty, other, ws) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut args = vec!["train"];
    args.extend(TINY);
    args.push("1");
    assert_ok(&neureg_in(empty.path(), ws.path(), &args));
    assert_eq!(
        std::fs::read_dir(empty.path()).unwrap().count(),
        0,
        "nothing in the working folder"
    );
    let run = ws.path().join("runs/none-a20-seed0");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    for key in ["data", "images"] {
        let stored = Path::new(config[key].as_str().unwrap());
        assert!(
            stored.is_absolute() && stored.exists(),
            "{key}: {}",
            stored.display()
        );
    }

    // Evaluated from another folder, by a relative path to nothing but the run.
    let summary = other.path().join("noise.json");
    let run_arg = run.to_str().unwrap();
    let eval = |cwd: &Path| {
        neureg_in(
            cwd,
            ws.path(),
            &[
                "eval-noise",
                run_arg,
                "--levels",
                "0,0.1",
                "--samples",
                "16",
                "--out",
                summary.to_str().unwrap(),
            ],
        )
    };
    assert_ok(&eval(other.path()));

    // A run stored before paths were absolute (data as typed, relative to the repository).
    let mut old = config.clone();
    old["data"] = "sample_data/fashion-mnist".into();
    std::fs::write(run.join("config.json"), old.to_string()).unwrap();
    assert_ok(&eval(other.path()));

    // Its data set moved away: the error names the run, the data set and the file to edit.
    let mut moved = config.clone();
    moved["data"] = other
        .path()
        .join("gone/fashion-mnist")
        .display()
        .to_string()
        .into();
    std::fs::write(run.join("config.json"), moved.to_string()).unwrap();
    let out = eval(other.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(run_arg) && err.contains("gone/fashion-mnist") && err.contains("config.json"),
        "{err}"
    );
}

#[test]
fn the_workspace_flag_beats_the_variable_and_a_file_is_refused() {
    let (cwd, ws, flag) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut args = vec!["--workspace", flag.path().to_str().unwrap(), "train"];
    args.extend(TINY);
    args.push("1");
    assert_ok(&neureg_in(cwd.path(), ws.path(), &args));
    assert!(flag
        .path()
        .join("runs/none-a20-seed0/config.json")
        .is_file());
    assert!(!ws.path().join("runs").exists());
    let file = cwd.path().join("f");
    std::fs::write(&file, b"").unwrap();
    let out = neureg_in(cwd.path(), &file, &["train"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("a workspace is a folder"),
        "{err}"
    );
}

#[test]
fn scan_commands_find_the_sample_scans_from_an_empty_folder() {
    let (empty, ws) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A typed sample_data/ path the working folder does not have, and inspect's default scans.
    let info = assert_ok(&neureg_in(
        empty.path(),
        ws.path(),
        &["info", "sample_data/scans/scan_2.zip"],
    ));
    assert!(info.contains("scan_2"), "{info}");
    let run = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data/experiments/lecture/runs/none-a0-seed0");
    let out = empty.path().join("inspection");
    let printed = assert_ok(&neureg_in(
        empty.path(),
        ws.path(),
        &[
            "inspect",
            &run.display().to_string(),
            "--resamples",
            "20",
            "--out",
            &out.display().to_string(),
        ],
    ));
    assert!(
        printed.contains("oracle images of scan_1, scan_2, scan_3, scan_4"),
        "{printed}"
    );
}
