//! Reading scans from folders and zips, the shipped sample data, and every
//! kind of bad input a user can hand the reader.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use neureg::data::npy::{encode, encode_strings};
use neureg::data::scan_write::scan_files;
use neureg::data::source::write_tree;
use neureg::data::synth::{synthesize, SynthConfig};
use neureg::data::{load_scan, load_stimuli, write_scan, LoadOptions, Scan, Stimuli};
use neureg::progress::Silent;

fn tiny() -> Scan {
    let c = SynthConfig {
        scans: 1,
        images: 12,
        oracle: 3,
        repeats: 3,
        neurons: 6,
        seed: 3,
        ..Default::default()
    };
    synthesize(&c, &Silent).unwrap().remove(0)
}

fn load(path: &Path) -> neureg::Result<Scan> {
    load_scan(path, LoadOptions::default(), &Silent)
}

/// Writes the tiny scan's files after `edit` changes them; returns the folder.
fn edited(dir: &Path, edit: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> PathBuf {
    let mut files = scan_files(&tiny());
    edit(&mut files);
    let path = dir.join("scan");
    write_tree(&path, &files).unwrap();
    path
}

fn error_of(path: &Path) -> String {
    load(path).unwrap_err().to_string()
}

#[test]
fn folder_and_zip_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let scan = tiny();
    for name in ["s", "s.zip"] {
        let path = dir.path().join(name);
        write_scan(&scan, &path).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.name, "s");
        assert_eq!(
            Scan {
                name: scan.name.clone(),
                source: scan.source.clone(),
                ..back
            },
            scan
        );
    }
}

#[test]
fn stimuli_read_alone_are_those_of_the_scan_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut scan = tiny();
    for img in scan.images.values_mut() {
        // Each pixel a 2 x 2 block, so that downsampling is checked too.
        *img = (0..72 * 128)
            .map(|i| img[(i / 128 / 2) * 64 + (i % 128) / 2])
            .collect();
    }
    scan.image_shape = (72, 128);
    for name in ["s", "s.zip"] {
        let path = dir.path().join(name);
        write_scan(&scan, &path).unwrap();
        for downsample_to in [None, Some((36, 64))] {
            let options = LoadOptions {
                downsample_to,
                ..LoadOptions::default()
            };
            let whole = load_scan(&path, options.clone(), &Silent).unwrap();
            let alone = load_stimuli(&path, options, &Silent).unwrap();
            assert_eq!(alone, Stimuli::of(&whole), "{name} {downsample_to:?}");
            assert_eq!(alone.image_shape, downsample_to.unwrap_or((72, 128)));
        }
    }
    // A bad image is refused as it is when the whole scan is read.
    let bad = edited(dir.path(), |f| {
        f.insert(
            "data/images/4.npy".into(),
            encode(&[1, 36, 64], &[f32::NAN; 36 * 64]),
        );
    });
    let err = load_stimuli(&bad, LoadOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data/images/4.npy") && err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn zip_with_the_tree_under_one_top_folder() {
    let dir = tempfile::tempdir().unwrap();
    let files: BTreeMap<String, Vec<u8>> = scan_files(&tiny())
        .into_iter()
        .map(|(k, v)| (format!("static123/{k}"), v))
        .collect();
    let path = dir.path().join("nested.zip");
    write_tree(&path, &files).unwrap();
    assert_eq!(load(&path).unwrap().n_trials(), 12 + 9);
}

#[test]
fn real_dtypes_int64_ids_unicode_tiers_and_float64_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        let img: Vec<f64> = vec![0.5; 36 * 64];
        f.insert("data/images/0.npy".into(), encode(&[1, 36, 64], &img));
        let ids = neureg::data::npy::read_i64(&f["meta/trials/frame_image_id.npy"], "ids")
            .unwrap()
            .data;
        let ids32: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
        f.insert(
            "meta/trials/frame_image_id.npy".into(),
            encode(&[ids.len()], &ids32),
        );
    });
    let scan = load(&path).unwrap();
    assert_eq!(scan.n_trials(), 21);
}

#[test]
fn downsampling_by_area_averaging() {
    let dir = tempfile::tempdir().unwrap();
    let mut scan = tiny();
    for img in scan.images.values_mut() {
        // Each 36 x 64 pixel becomes a 4 x 4 block of a 144 x 256 image.
        *img = (0..144 * 256)
            .map(|i| img[(i / 256 / 4) * 64 + (i % 256) / 4])
            .collect();
    }
    let original = tiny();
    scan.image_shape = (144, 256);
    let path = dir.path().join("big.zip");
    write_scan(&scan, &path).unwrap();
    let small = load_scan(
        &path,
        LoadOptions {
            downsample_to: Some((36, 64)),
            ..LoadOptions::default()
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(small.image_shape, (36, 64));
    assert_eq!(small.images, original.images);
    let err = load_scan(
        &path,
        LoadOptions {
            downsample_to: Some((50, 64)),
            ..LoadOptions::default()
        },
        &Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("divide evenly"), "{err}");
}

#[test]
fn missing_folder() {
    let err = error_of(Path::new("/no/such/scan"));
    assert!(
        err.contains("/no/such/scan") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        f.remove("meta/neurons/unit_ids.npy");
    });
    let err = error_of(&path);
    assert!(err.contains("meta/neurons/unit_ids.npy: missing"), "{err}");
}

#[test]
fn not_a_scan_folder() {
    let dir = tempfile::tempdir().unwrap();
    let err = error_of(dir.path());
    assert!(
        err.contains("not a scan folder") && err.contains("frame_image_id.npy"),
        "{err}"
    );
}

#[test]
fn wrong_response_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        f.insert("data/responses/4.npy".into(), encode(&[2], &[1.0f32, 2.0]));
    });
    let err = error_of(&path);
    assert!(err.contains("data/responses/4.npy: has shape [2]"), "{err}");
}

#[test]
fn trial_counts_differ_between_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        f.remove("data/behavior/20.npy");
    });
    let err = error_of(&path);
    assert!(
        err.contains("data/behavior") && err.contains("trial counts differ"),
        "{err}"
    );
}

#[test]
fn nan_and_infinity_in_responses() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [f32::NAN, f32::INFINITY] {
        let path = edited(dir.path(), |f| {
            let mut r = vec![1.0f32; 6];
            r.resize(
                neureg::data::npy::read_f32(&f["data/responses/2.npy"], "r")
                    .unwrap()
                    .data
                    .len(),
                1.0,
            );
            r[1] = bad;
            f.insert("data/responses/2.npy".into(), encode(&[r.len()], &r));
        });
        let err = error_of(&path);
        assert!(
            err.contains("data/responses/2.npy: response of neuron 1 is") && err.contains("finite"),
            "{err}"
        );
    }
}

#[test]
fn a_scan_with_no_repeated_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        let n = neureg::data::npy::read_i64(&f["meta/trials/frame_image_id.npy"], "ids")
            .unwrap()
            .data
            .len();
        let ids: Vec<i64> = (0..n as i64).collect();
        f.insert("meta/trials/frame_image_id.npy".into(), encode(&[n], &ids));
    });
    let scan = load(&path).unwrap();
    let err =
        neureg::similarity::analysis::analyse_oracles(&[&scan], &candle_core::Device::Cpu, &Silent)
            .unwrap_err()
            .to_string();
    assert!(
        err.starts_with("scan: no image was shown more than once"),
        "{err}"
    );
}

/// An .npy file with a hand-written header, as a corrupt file would have.
fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut text = dict.to_string();
    while !(10 + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((text.len() as u16).to_le_bytes());
    out.extend(text.as_bytes());
    out.extend(data);
    out
}

#[test]
fn header_claiming_a_huge_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        let huge = raw_npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999,), }",
            &[0; 24],
        );
        f.insert("data/responses/0.npy".into(), huge);
    });
    let err = error_of(&path);
    assert!(
        err.contains("data/responses/0.npy: truncated") && err.contains("99999999999999"),
        "{err}"
    );
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        let bytes = f.get_mut("data/images/3.npy").unwrap();
        bytes.truncate(bytes.len() - 100);
    });
    let err = error_of(&path);
    assert!(err.contains("data/images/3.npy: truncated"), "{err}");
}

#[test]
fn zip_with_the_wrong_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = BTreeMap::new();
    files.insert(
        "a/b/meta/trials/frame_image_id.npy".to_string(),
        encode(&[1], &[1i64]),
    );
    files.insert("readme.txt".to_string(), b"hello".to_vec());
    let path = dir.path().join("bad.zip");
    write_tree(&path, &files).unwrap();
    let err = error_of(&path);
    assert!(
        err.contains("bad.zip") && err.contains("wrong layout"),
        "{err}"
    );
    let not_zip = dir.path().join("junk.zip");
    std::fs::write(&not_zip, b"not a zip at all").unwrap();
    assert!(error_of(&not_zip).contains("neither a folder nor a readable zip"));
}

#[test]
fn unknown_tier_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), |f| {
        let n = 21;
        let mut tiers = vec!["train".to_string(); n];
        tiers[5] = "training".into();
        f.insert("meta/trials/tiers.npy".into(), encode_strings(&[n], &tiers));
    });
    let err = error_of(&path);
    assert!(
        err.contains("tiers.npy: trial 5 has unknown tier \"training\""),
        "{err}"
    );
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join("scans")
}

fn zip_contents(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().to_string(), bytes)
        })
        .collect()
}

#[test]
fn shipped_sample_scans_regenerate_identically() {
    let scans = synthesize(&SynthConfig::default(), &Silent).unwrap();
    let shipped = zip_contents(&sample_dir().join("scan_1.zip"));
    assert_eq!(
        shipped,
        scan_files(&scans[0]),
        "sample_data/scans/scan_1.zip differs from `neureg synth --out sample_data/scans`"
    );
}

#[test]
fn shipped_sample_scans_load_with_the_described_structure() {
    for k in 1..=4 {
        let scan = load(&sample_dir().join(format!("scan_{k}.zip"))).unwrap();
        assert_eq!(scan.n_trials(), 500 + 20 * 10);
        // The default population: 3/4 to 3/2 of 1000 neurons (200 before the physiological
        // generator, whose few neurons let a handful dominate a scan's similarity).
        assert!((750..=1500).contains(&scan.n_neurons()));
        assert_eq!(scan.oracle_trials().len(), 20);
        assert_eq!(scan.image_shape, (36, 64));
        assert!(
            scan.ground_truth.is_some() && scan.behavior.is_some() && scan.pupil_center.is_some()
        );
    }
}
