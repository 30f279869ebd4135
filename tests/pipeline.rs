//! The pipeline floor that the window and the command line share: predictors paired with their
//! scans on one rule, whichever way the scans come, and targets built the same either way.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use neureg::data::{load_scan, LoadOptions};
use neureg::pipeline::predictors::{open_predictors, ScanSource};
use neureg::pipeline::target::{build_target, TargetImages, TargetRequest};
use neureg::progress::Silent;
use neureg::similarity::target::Weighting;

fn predictor(k: usize) -> PathBuf {
    common::root().join(format!("sample_data/predictors/scan_{k}"))
}

fn scan(k: usize) -> Arc<neureg::data::Scan> {
    let path = common::root().join(format!("sample_data/scans/scan_{k}.zip"));
    Arc::new(load_scan(&path, LoadOptions::default(), &Silent).unwrap())
}

static OPTIONS: LoadOptions = LoadOptions {
    downsample_to: None,
    nwb: neureg::data::nwb::NwbOptions {
        series: None,
        table: None,
        column: None,
        offset: 0.0,
        window: None,
    },
};

const READ: ScanSource<'static> = ScanSource {
    loaded: &[],
    read: Some(&OPTIONS),
};

#[test]
fn a_predictor_pairs_with_its_own_scan_whether_loaded_or_read() {
    let loaded = vec![scan(2), scan(1)];
    let window = ScanSource {
        loaded: &loaded,
        read: None,
    };
    let dirs = [predictor(1), predictor(2)];
    let from_window = open_predictors(&dirs, window, &common::device(), &Silent).unwrap();
    let from_cli = open_predictors(&dirs, READ, &common::device(), &Silent).unwrap();
    for (w, c) in from_window.iter().zip(&from_cli) {
        assert_eq!(w.scan.name, w.predictor.meta.scan);
        assert_eq!(w.scan.name, c.scan.name);
        assert_eq!(w.scan.fingerprint(), c.scan.fingerprint());
    }
    // The window's copy is the loaded scan itself, not a second read.
    assert!(Arc::ptr_eq(&from_window[0].scan, &loaded[1]));

    // A predictor whose scan is not loaded: an error naming the predictor and its scan.
    let only_2 = [scan(2)];
    let err = open_predictors(
        &[predictor(1)],
        ScanSource {
            loaded: &only_2,
            read: None,
        },
        &common::device(),
        &Silent,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("scan_1") && err.contains("not loaded"),
        "{err}"
    );
}

#[test]
fn the_window_and_the_command_line_build_the_same_target() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = vec![scan(1), scan(2)];
    let request = |out: &str, data: bool| TargetRequest {
        predictors: vec![predictor(1), predictor(2)],
        images: TargetImages::Common,
        weighting: Weighting::SnrRho,
        data,
        out: dir.path().join(out),
    };
    let window = ScanSource {
        loaded: &loaded,
        read: None,
    };
    let a = build_target(
        &request("a/t.npy", false),
        window,
        &common::device(),
        &Silent,
    )
    .unwrap();
    let b = build_target(&request("b/t.npy", false), READ, &common::device(), &Silent).unwrap();
    assert_eq!(a.target.matrix, b.target.matrix);
    assert_eq!(a.target.meta.image_ids, b.target.meta.image_ids);
    assert_eq!(a.order, b.order);
    assert!(a.path.is_file() && b.path.is_file() && b.path.with_extension("json").is_file());
    // A similarity matrix: symmetric, ones on the diagonal, its order a permutation.
    let m = &a.target.matrix;
    assert!((0..m.n).all(|i| (m.get(i, i) - 1.0).abs() < 1e-5));
    assert!((0..m.n).all(|i| (0..i).all(|j| (m.get(i, j) - m.get(j, i)).abs() < 1e-6)));
    let mut order = a.order.clone();
    order.sort();
    assert_eq!(order, (0..m.n).collect::<Vec<_>>());

    // Neural (data) needs images the scans showed: a folder of photos is refused by name.
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for name in ["a.png", "b.png"] {
        image::GrayImage::from_fn(64, 36, |x, y| image::Luma([(x + y) as u8]))
            .save(photos.join(name))
            .unwrap();
    }
    let images = TargetImages::from_path(Some(&photos));
    assert_eq!(images, TargetImages::Folder(photos.clone()));
    let err = build_target(
        &TargetRequest {
            images,
            ..request("c.npy", true)
        },
        READ,
        &common::device(),
        &Silent,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("photos") && err.contains("images the scans showed"),
        "{err}"
    );
    // A folder with neither the scan layout nor images: the error says it is neither.
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("readme.txt"), "text").unwrap();
    let err = build_target(
        &TargetRequest {
            images: TargetImages::from_path(Some(&notes)),
            ..request("d.npy", false)
        },
        READ,
        &common::device(),
        &Silent,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("notes") && err.contains("neither a scan nor a folder of PNG or JPEG"),
        "{err}"
    );
    assert!(!dir.path().join("d.npy").exists());
    // A scan is a scan, folder or zip.
    let zip = common::root().join("sample_data/scans/scan_1.zip");
    assert_eq!(
        TargetImages::from_path(Some(&zip)),
        TargetImages::Scan(zip.clone())
    );
    assert_eq!(TargetImages::from_path(None), TargetImages::Common);
}
