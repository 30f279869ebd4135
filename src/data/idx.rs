//! The IDX format of MNIST and Fashion-MNIST (gzipped or not).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::classification::{ClassificationSet, LabelledImages};
use crate::error::{Error, Result};

/// Largest decompressed file accepted (guards against a header or a gzip stream claiming too much).
const MAX_BYTES: u64 = 1 << 32;

/// A decoded IDX array of unsigned bytes: its dimensions and values.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<u8>,
}

/// Reads a file, decompressing it if it is gzipped.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut raw = Vec::new();
    file.take(MAX_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path.display(), format!("broken gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Decodes IDX bytes (unsigned-byte arrays only, the type MNIST uses).
pub fn decode(bytes: &[u8], name: &str) -> Result<IdxArray> {
    let bad = |p: String| Error::file(name, p);
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("header claims an impossible size {dims:?}")))?;
    let available = bytes.len() - header;
    if count != available {
        return Err(bad(format!(
            "header claims {dims:?} = {count} values but the file holds {available}"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// The file `stem` or `stem.gz` in `dir`, whichever exists.
fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [stem.to_string(), format!("{stem}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Whether `path` is a folder holding MNIST-style IDX files.
pub fn is_idx_folder(path: &Path) -> bool {
    path.is_dir() && find(path, "train-images-idx3-ubyte").is_some()
}

/// Images and labels of one tier (`train` or `t10k`).
fn load_tier(dir: &Path, prefix: &str) -> Result<LabelledImages> {
    let missing = |what: &str| {
        Error::file(
            dir.display(),
            format!("no {prefix}-{what} (or .gz) in this IDX folder"),
        )
    };
    let ipath = find(dir, &format!("{prefix}-images-idx3-ubyte"))
        .ok_or_else(|| missing("images-idx3-ubyte"))?;
    let lpath = find(dir, &format!("{prefix}-labels-idx1-ubyte"))
        .ok_or_else(|| missing("labels-idx1-ubyte"))?;
    let images = decode(&read_maybe_gzipped(&ipath)?, &ipath.display().to_string())?;
    let labels = decode(&read_maybe_gzipped(&lpath)?, &lpath.display().to_string())?;
    if images.dims.len() != 3 {
        return Err(Error::file(
            ipath.display(),
            format!(
                "expected 3 dimensions (count, height, width), found {:?}",
                images.dims
            ),
        ));
    }
    if labels.dims != [images.dims[0]] {
        return Err(Error::file(
            lpath.display(),
            format!(
                "holds labels of shape {:?} for {} images",
                labels.dims, images.dims[0]
            ),
        ));
    }
    Ok(LabelledImages {
        shape: (images.dims[1], images.dims[2]),
        pixels: images.data.iter().map(|&v| v as f32 / 255.0).collect(),
        labels: labels.data.iter().map(|&l| l as u32).collect(),
    })
}

/// Reads an IDX folder: `train-*` and `t10k-*` files; class names from
/// `classes.txt` (one a line) when present, else the labels' numbers.
pub fn load_folder(dir: &Path) -> Result<ClassificationSet> {
    let train = load_tier(dir, "train")?;
    let test = load_tier(dir, "t10k")?;
    let names = dir.join("classes.txt");
    let classes = if names.is_file() {
        std::fs::read_to_string(&names)
            .map_err(|e| Error::io(&names, e))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else {
        let top = train
            .labels
            .iter()
            .chain(&test.labels)
            .max()
            .copied()
            .unwrap_or(0);
        (0..=top).map(|l| l.to_string()).collect()
    };
    Ok(ClassificationSet {
        name: dir.display().to_string(),
        classes,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn decodes_a_hand_made_array() {
        let a = decode(&idx(&[2, 1, 2], &[1, 2, 3, 4]), "a").unwrap();
        assert_eq!(a.dims, vec![2, 1, 2]);
        assert_eq!(a.data, vec![1, 2, 3, 4]);
    }

    #[test]
    fn truncated_data_and_huge_headers_are_errors() {
        let e = decode(&idx(&[2, 2], &[1, 2, 3]), "f.idx")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.idx") && e.contains("holds 3"), "{e}");
        let e = decode(&idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "f").unwrap_err();
        assert!(e.to_string().contains("f:"), "{e}");
        assert!(decode(&[1, 2], "g").is_err());
        let mut float = idx(&[1], &[0]);
        float[2] = 0x0d;
        assert!(decode(&float, "h")
            .unwrap_err()
            .to_string()
            .contains("0x0d"));
    }
}
