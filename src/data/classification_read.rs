//! Reading a classification set from its files, recognising the format: CIFAR-10/100 binary,
//! IDX (MNIST, Fashion-MNIST) or an image folder.

use std::path::Path;

use crate::data::classification::ClassificationSet;
use crate::data::{cifar, idx, image_folder};
use crate::error::{Error, Result};

/// Reads a classification set, recognising its format: a CIFAR binary archive
/// (`.tar.gz`) or folder, a folder of IDX files, or an image folder with one
/// subfolder per class.
pub fn load_classification_set(path: &Path) -> Result<ClassificationSet> {
    if !path.exists() {
        return Err(Error::file(path.display(), "no such file or folder"));
    }
    let set = if cifar::is_cifar(path) {
        cifar::load(path)?
    } else if idx::is_idx_folder(path) {
        idx::load_folder(path)?
    } else if path.is_dir() {
        image_folder::load(path)?
    } else {
        return Err(Error::file(
            path.display(),
            "not a classification set (expected a CIFAR binary .tar.gz or folder, a folder of \
             IDX files, or an image folder with one subfolder per class)",
        ));
    };
    set.validate()
}
