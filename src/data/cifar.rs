//! CIFAR-10 and CIFAR-100 in their original binary distribution: the
//! `.tar.gz` archive read directly, or its unpacked folder.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::data::classification::{luminance, ClassificationSet, LabelledImages};
use crate::error::{Error, Result};

/// Pixels of one 32 x 32 RGB image.
const PIXELS: usize = 32 * 32;

/// Whether `path` looks like a CIFAR binary archive or folder.
pub fn is_cifar(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
    let archive = name
        .as_deref()
        .is_some_and(|n| n.ends_with(".tar.gz") || n.ends_with(".tgz"));
    archive
        || [
            "data_batch_1.bin",
            "train.bin",
            "cifar-10-batches-bin",
            "cifar-100-binary",
        ]
        .iter()
        .any(|f| path.join(f).exists())
}

/// The `.bin` and `.txt` files of the distribution, by base name.
fn members(path: &Path) -> Result<HashMap<String, Vec<u8>>> {
    let wanted = |name: &str| name.ends_with(".bin") || name.ends_with(".txt");
    let mut out = HashMap::new();
    if path.is_file() {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let broken = |e: std::io::Error| {
            Error::file(
                path.display(),
                format!("not a readable .tar.gz archive: {e}"),
            )
        };
        for entry in archive.entries().map_err(broken)? {
            let mut entry = entry.map_err(broken)?;
            let entry_path = entry.path().map_err(broken)?.into_owned();
            let Some(name) = entry_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
            else {
                continue;
            };
            if wanted(&name) {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(broken)?;
                out.insert(name, bytes);
            }
        }
    } else {
        let mut dirs = vec![path.to_path_buf()];
        for sub in ["cifar-10-batches-bin", "cifar-100-binary"] {
            dirs.push(path.join(sub));
        }
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            let listing = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            for entry in listing.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if wanted(&name) && entry.path().is_file() {
                    let p = entry.path();
                    out.insert(name, std::fs::read(&p).map_err(|e| Error::io(&p, e))?);
                }
            }
        }
    }
    Ok(out)
}

/// Decodes records of `label_bytes` label bytes (the last is the class) and a
/// 3 x 32 x 32 image, converted to grayscale by luminance.
fn decode(bytes: &[u8], label_bytes: usize, name: &str) -> Result<LabelledImages> {
    let record = label_bytes + 3 * PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(Error::file(
            name,
            format!(
                "{} bytes is not a whole number of {record}-byte CIFAR records",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / record;
    let mut pixels = Vec::with_capacity(count * PIXELS);
    let mut labels = Vec::with_capacity(count);
    for rec in bytes.chunks_exact(record) {
        labels.push(rec[label_bytes - 1] as u32);
        let rgb = &rec[label_bytes..];
        for p in 0..PIXELS {
            let c = |k: usize| rgb[k * PIXELS + p] as f32 / 255.0;
            pixels.push(luminance(c(0), c(1), c(2)));
        }
    }
    Ok(LabelledImages {
        shape: (32, 32),
        pixels,
        labels,
    })
}

/// Concatenates tiers of one image size.
fn concat(parts: Vec<LabelledImages>) -> LabelledImages {
    let mut out = LabelledImages {
        shape: (32, 32),
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    for p in parts {
        out.pixels.extend(p.pixels);
        out.labels.extend(p.labels);
    }
    out
}

/// Class names, one a line.
fn names(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Reads CIFAR-10 (`data_batch_1..5.bin`, `test_batch.bin`) or CIFAR-100
/// (`train.bin`, `test.bin`, fine labels) from an archive or folder.
pub fn load(path: &Path) -> Result<ClassificationSet> {
    let files = members(path)?;
    let label = |n: &str| format!("{}:{n}", path.display());
    let (classes, train, test) = if files.contains_key("data_batch_1.bin") {
        let mut batches = Vec::new();
        for i in 1..=5 {
            let n = format!("data_batch_{i}.bin");
            let Some(b) = files.get(&n) else {
                return Err(Error::file(path.display(), format!("CIFAR-10 without {n}")));
            };
            batches.push(decode(b, 1, &label(&n))?);
        }
        let test = files
            .get("test_batch.bin")
            .ok_or_else(|| Error::file(path.display(), "CIFAR-10 without test_batch.bin"))?;
        let classes = files.get("batches.meta.txt").map(|b| names(b));
        let classes = classes.unwrap_or_else(|| (0..10).map(|c| c.to_string()).collect());
        (
            classes,
            concat(batches),
            decode(test, 1, &label("test_batch.bin"))?,
        )
    } else if let (Some(train), Some(test)) = (files.get("train.bin"), files.get("test.bin")) {
        let classes = files.get("fine_label_names.txt").map(|b| names(b));
        let classes = classes.unwrap_or_else(|| (0..100).map(|c| c.to_string()).collect());
        (
            classes,
            decode(train, 2, &label("train.bin"))?,
            decode(test, 2, &label("test.bin"))?,
        )
    } else {
        return Err(Error::file(
            path.display(),
            "no CIFAR-10 (data_batch_1.bin) or CIFAR-100 (train.bin, test.bin) binary files",
        ));
    };
    Ok(ClassificationSet {
        name: path.display().to_string(),
        classes,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_records_to_luminance() {
        // One CIFAR-10 record: label 7, red channel 255, green 0, blue 255 everywhere.
        let mut rec = vec![7u8];
        rec.extend(std::iter::repeat_n(255u8, PIXELS));
        rec.extend(std::iter::repeat_n(0u8, PIXELS));
        rec.extend(std::iter::repeat_n(255u8, PIXELS));
        let t = decode(&rec, 1, "r").unwrap();
        assert_eq!(t.labels, vec![7]);
        assert!((t.pixels[5] - (0.299 + 0.114)).abs() < 1e-6);
        let e = decode(&rec[..100], 1, "cut.bin").unwrap_err().to_string();
        assert!(e.contains("cut.bin") && e.contains("3073-byte"), "{e}");
    }
}
