//! An image folder with one subfolder per class (`root/<class>/*.png`), or
//! `root/train/<class>/` and `root/test/<class>/`.

use std::path::{Path, PathBuf};

use crate::data::classification::{ClassificationSet, LabelledImages};
use crate::data::image_file::{image_files, read_gray};
use crate::error::{Error, Result};

/// When the folder has no `train/` and `test/` split of its own, images 0, 5,
/// 10, ... of each class (in name order) are test images.
const TEST_EVERY: usize = 5;

/// The class subfolders of `dir`, sorted by name.
fn class_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Reads the files of each class; all images take the size of the first one.
fn read_tier(
    files: &[(u32, PathBuf)],
    shape: &mut Option<(usize, usize)>,
) -> Result<LabelledImages> {
    let mut pixels = Vec::new();
    let mut labels = Vec::with_capacity(files.len());
    for (label, f) in files {
        let (s, p) = read_gray(f, *shape)?;
        *shape = Some(s);
        pixels.extend(p.iter().map(|v| v / 255.0));
        labels.push(*label);
    }
    Ok(LabelledImages {
        shape: shape.unwrap_or((0, 0)),
        pixels,
        labels,
    })
}

/// Labelled files of the class folders in `dir`; classes are the folder names.
fn labelled_files(dir: &Path, classes: &[String]) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let sub = dir.join(class);
        if sub.is_dir() {
            out.extend(image_files(&sub)?.into_iter().map(|f| (label as u32, f)));
        }
    }
    Ok(out)
}

/// Reads an image folder; images are converted to grayscale by luminance.
pub fn load(root: &Path) -> Result<ClassificationSet> {
    let split = root.join("train").is_dir() && root.join("test").is_dir();
    let class_root = if split {
        root.join("train")
    } else {
        root.to_path_buf()
    };
    let classes: Vec<String> = class_dirs(&class_root)?
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if classes.len() < 2 {
        return Err(Error::file(
            class_root.display(),
            format!(
                "an image folder needs one subfolder per class, at least two; found {}",
                classes.len()
            ),
        ));
    }
    let (train_files, test_files) = if split {
        (
            labelled_files(&root.join("train"), &classes)?,
            labelled_files(&root.join("test"), &classes)?,
        )
    } else {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            for (i, f) in image_files(&root.join(class))?.into_iter().enumerate() {
                let to = if i % TEST_EVERY == 0 {
                    &mut test
                } else {
                    &mut train
                };
                to.push((label as u32, f));
            }
        }
        (train, test)
    };
    let mut shape = None;
    let train = read_tier(&train_files, &mut shape)?;
    let test = read_tier(&test_files, &mut shape)?;
    Ok(ClassificationSet {
        name: root.display().to_string(),
        classes,
        train,
        test,
    })
}
