//! NWB 2 files as scans, on fixtures written by pynwb (`scripts/nwb_fixtures.py`): what neureg
//! reads equals what h5py and NumPy read from the same files, choices are named, and malformed
//! files are refused with the path inside the file.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use neureg::data::npy::{read_f32, read_file, read_i64};
use neureg::data::nwb::NwbOptions;
use neureg::data::{load_scan, LoadOptions, Scan};
use neureg::progress::Silent;
use neureg::similarity::analysis::analyse_oracles;

fn fixture(name: &str) -> PathBuf {
    common::root().join("tests/fixtures/nwb").join(name)
}

fn expected(name: &str) -> PathBuf {
    fixture("allen_like.expected").join(name)
}

fn load(name: &str, nwb: NwbOptions) -> neureg::Result<Scan> {
    load_scan(
        &fixture(name),
        LoadOptions {
            nwb,
            ..LoadOptions::default()
        },
        &Silent,
    )
}

fn npy<T>(
    path: &Path,
    read: fn(&[u8], &str) -> neureg::Result<neureg::data::npy::NpyArray<T>>,
) -> Vec<T> {
    read(&read_file(path).unwrap(), &path.display().to_string())
        .unwrap()
        .data
}

#[test]
fn an_allen_like_session_reads_as_h5py_and_numpy_read_it() {
    let scan = load("allen_like.nwb", NwbOptions::default()).unwrap();
    // Trials: every non-blank presentation, in order, with its image.
    let ids = npy(&expected("image_ids.npy"), read_i64);
    assert_eq!(scan.image_ids, ids);
    assert_eq!(scan.n_trials(), 118 * 50);
    assert_eq!(scan.n_neurons(), 300);
    assert_eq!(scan.image_shape, (36, 64));
    // Every image is shown 50 times: all are oracle images, all trials the test tier.
    let oracle = scan.oracle_trials();
    assert_eq!(oracle.len(), 118);
    assert!(oracle.values().all(|t| t.len() == 50));
    assert!(scan.tiers.iter().all(|&t| t == neureg::data::Tier::Test));
    // Responses: each ROI's mean over the samples in [start, stop).
    let first = npy(&expected("responses_first_200.npy"), read_f32);
    for (k, (a, b)) in scan.responses[..first.len()].iter().zip(&first).enumerate() {
        assert!(
            (a - b).abs() < 1e-6,
            "trial {}, ROI {}: {a} against {b}",
            k / 300,
            k % 300
        );
    }
    let sums = npy(&expected("responses_sum.npy"), read_f32);
    for (i, want) in sums.iter().enumerate() {
        let got: f64 = (0..scan.n_trials())
            .map(|t| scan.response(t)[i] as f64)
            .sum();
        let want = *want as f64;
        assert!(
            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "ROI {i}: {got} against {want}"
        );
    }
    // Behaviour and the eye came from processing/behavior; the blanks were noted.
    assert!(scan.behavior.is_some() && scan.pupil_center.is_some());
    let notes = scan.notices.join("\n");
    assert!(notes.contains("40 blank presentations"), "{notes}");
    assert!(notes.contains("running_speed"), "{notes}");
    // Eq. 3 over the oracle images, as NumPy computes it from h5py's reading.
    let a = analyse_oracles(&[&scan], &Device::Cpu, &Silent).unwrap();
    let want = npy(&expected("oracle_similarity.npy"), read_f32);
    assert_eq!(a.mean.n, 118);
    let worst = a
        .mean
        .values
        .iter()
        .zip(&want)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-4, "largest difference from NumPy: {worst}");
}

#[test]
fn stimuli_of_a_session_are_those_of_its_scan() {
    let path = fixture("allen_like.nwb");
    let whole = load("allen_like.nwb", NwbOptions::default()).unwrap();
    let alone = neureg::data::load_stimuli(&path, LoadOptions::default(), &Silent).unwrap();
    assert_eq!(alone, neureg::data::Stimuli::of(&whole));
}

#[test]
fn several_series_rgb_templates_and_an_unnamed_index_column() {
    // Two numeric columns, neither with a known name: the column must be named.
    let err = load("multi_series.nwb", NwbOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("multi_series.nwb") && err.contains("intervals/trials"),
        "{err}"
    );
    assert!(
        err.contains("stimulus_index") && err.contains("contrast"),
        "{err}"
    );
    assert!(err.contains("--nwb-column"), "{err}");
    let named = |series: Option<&str>| NwbOptions {
        column: Some("stimulus_index".into()),
        series: series.map(String::from),
        ..NwbOptions::default()
    };
    let scan = load("multi_series.nwb", named(None)).unwrap();
    assert_eq!((scan.n_trials(), scan.n_neurons()), (150, 40));
    let notes = scan.notices.join("\n");
    assert!(
        notes.contains("DfOverF/plane0") && notes.contains("plane1"),
        "{notes}"
    );
    assert!(notes.contains("Fluorescence/raw"), "{notes}");
    assert!(
        scan.behavior.is_none() && notes.contains("no behaviour"),
        "{notes}"
    );
    // 20 images shown 6 times, 30 once.
    assert_eq!(scan.oracle_trials().len(), 20);
    // The second series is twice the first.
    let other = load("multi_series.nwb", named(Some("plane1"))).unwrap();
    for (a, b) in scan.responses.iter().zip(&other.responses) {
        assert!((2.0 * a - b).abs() < 1e-4, "{a} {b}");
    }
    // RGB templates to luminance: the gray image in green, shifted copies in red and blue.
    let gray = load_scan(
        &common::root().join("sample_data/scans/scan_1.zip"),
        LoadOptions::default(),
        &Silent,
    )
    .unwrap();
    let first_gray = gray.image(gray.image_ids[0]).unwrap();
    let first = scan.image(0).unwrap();
    let (h, w) = scan.image_shape;
    let at = |img: &[f32], y: usize, x: usize| img[y * w + x].clamp(0.0, 255.0).round();
    for (y, x) in [(3, 10), (20, 40), (30, 60)] {
        let expected = 0.299 * at(first_gray, y, (x + w - 3) % w)
            + 0.587 * at(first_gray, y, x)
            + 0.114 * at(first_gray, y, (x + 3) % w);
        assert!(
            (first[y * w + x] - expected).abs() < 0.01,
            "({y}, {x}) of {h} x {w}"
        );
    }
}

#[test]
fn malformed_files_are_refused_with_the_path_inside_them() {
    let cases = [
        (
            "bad_no_series.nwb",
            vec!["processing/ophys", "no DfOverF or Fluorescence series"],
        ),
        ("bad_lengths.nwb", vec!["timestamps", "entries", "samples"]),
        (
            "bad_index.nwb",
            vec!["frame", "shows image 9", "holds 6 images"],
        ),
        ("bad_nan.nwb", vec!["not a number", "presentations"]),
    ];
    for (name, words) in cases {
        let err = load(name, NwbOptions::default()).unwrap_err().to_string();
        assert!(err.contains(name), "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: {err} lacks {w:?}");
        }
    }
    // A truncated file, a missing one and a choice that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("allen_like.nwb")).unwrap();
    let cut = dir.path().join("cut.nwb");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 5]).unwrap();
    let err = load_scan(&cut, LoadOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.nwb") && err.contains("truncated"),
        "{err}"
    );
    let err = load_scan(
        &dir.path().join("none.nwb"),
        LoadOptions::default(),
        &Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("none.nwb"), "{err}");
    let wrong = NwbOptions {
        series: Some("plane7".into()),
        ..NwbOptions::default()
    };
    let err = load("allen_like.nwb", wrong).unwrap_err().to_string();
    assert!(
        err.contains("plane7") && err.contains("DfOverF/DfOverF"),
        "{err}"
    );
}

#[test]
fn the_command_line_reads_nwb_files_like_any_scan() {
    let path = fixture("allen_like.nwb");
    let out = common::ok(&["info", path.to_str().unwrap()]);
    assert!(
        out.contains("trials: 5900") && out.contains("neurons: 300"),
        "{out}"
    );
    assert!(out.contains("oracle images: 118 (repeats 50)"), "{out}");
    assert!(out.contains("note: 40 blank presentations"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    common::ok(&[
        "oracle",
        path.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(dir.path().join("allen_like.npy").is_file());
    let multi = fixture("multi_series.nwb");
    let out = common::ok(&[
        "--nwb-column",
        "stimulus_index",
        "--nwb-series",
        "plane1",
        "info",
        multi.to_str().unwrap(),
    ]);
    assert!(out.contains("trials: 150"), "{out}");
}

/// Ids number images within a source: the Allen-like session's image 0 is not a sample scan's
/// image 0, so the two share no oracle images, and the analysis says so rather than comparing
/// different pictures.
#[test]
fn a_session_and_a_scan_that_number_different_images_alike_share_no_oracle_images() {
    let session = load_scan(&fixture("allen_like.nwb"), LoadOptions::default(), &Silent).unwrap();
    let scan = load_scan(
        &common::root().join("sample_data/scans/scan_1.zip"),
        LoadOptions::default(),
        &Silent,
    )
    .unwrap();
    let Err(err) = analyse_oracles(&[&scan, &session], &Device::Cpu, &Silent) else {
        panic!("different pictures under the same ids were compared");
    };
    let err = err.to_string();
    assert!(
        err.contains("allen_like") && err.contains("is not the image"),
        "{err}"
    );
}
