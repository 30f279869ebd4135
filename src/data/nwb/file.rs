//! An NWB file's HDF5 tree through a pure-Rust reader (hdf5-reader): groups, attributes and
//! numeric datasets converted to the type neureg computes in, every error naming the file and
//! the path inside it.
//!
//! hdf5-reader was chosen over hdf5-pure, rust-hdf5 and the others because it alone read every
//! case pynwb and the Allen Institute write (old-style and dense groups, soft links, every chunk
//! index, layout messages of HDF5 2.0, gzip and shuffle) without a wrong value; its typed reads
//! are strict, so widths are dispatched here.

use std::path::{Path, PathBuf};

use hdf5_reader::group::Group;
use hdf5_reader::{Dataset, Datatype, Hdf5File};

use crate::error::{Error, Result};

/// An open NWB file.
pub struct NwbFile {
    path: PathBuf,
    h5: Hdf5File,
}

/// A numeric dataset read whole: its values in row-major order and its shape.
pub struct Array<T> {
    /// The values.
    pub values: Vec<T>,
    /// The shape.
    pub shape: Vec<usize>,
}

impl NwbFile {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let h5 = Hdf5File::open(path).map_err(|e| {
            Error::file(
                path.display(),
                format!("not a readable NWB (HDF5) file: {e}"),
            )
        })?;
        // A cut-off file still opens and its first groups read, so what is missing past the cut
        // would be reported as absent from the file: the superblock says how long it should be.
        let block = h5.superblock();
        let expected = block.base_address.saturating_add(block.eof_address);
        let actual = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if actual < expected {
            return Err(Error::file(
                path.display(),
                format!("truncated: {actual} bytes where its HDF5 header says {expected}"),
            ));
        }
        Ok(NwbFile {
            path: path.to_path_buf(),
            h5,
        })
    }

    /// An error about the object at `inner` (a path inside the file).
    pub fn error(&self, inner: &str, message: impl std::fmt::Display) -> Error {
        Error::file(
            format!("{}, at {inner}", self.path.display()),
            message.to_string(),
        )
    }

    /// The group at `inner`.
    pub fn group(&self, inner: &str) -> Result<Group> {
        self.h5
            .group(inner)
            .map_err(|e| self.error(inner, format!("no readable group: {e}")))
    }

    /// Whether a group or dataset exists at `inner`.
    pub fn exists(&self, inner: &str) -> bool {
        self.h5.group(inner).is_ok() || self.h5.dataset(inner).is_ok()
    }

    /// The names of the groups and of the datasets in the group at `inner`, sorted.
    pub fn children(&self, inner: &str) -> Result<(Vec<String>, Vec<String>)> {
        let (mut groups, mut datasets) = self
            .group(inner)?
            .member_names()
            .map_err(|e| self.error(inner, format!("cannot list it: {e}")))?;
        groups.sort();
        datasets.sort();
        Ok((groups, datasets))
    }

    /// The `neurodata_type` attribute of the group at `inner`, if it has one.
    pub fn neurodata_type(&self, inner: &str) -> Option<String> {
        self.h5
            .group(inner)
            .ok()?
            .attribute("neurodata_type")
            .ok()?
            .read_string()
            .ok()
    }

    /// The dataset at `inner`.
    pub fn dataset(&self, inner: &str) -> Result<Dataset> {
        self.h5
            .dataset(inner)
            .map_err(|e| self.error(inner, format!("no readable dataset: {e}")))
    }

    /// A numeric attribute of the dataset at `inner`.
    pub fn dataset_attribute(&self, inner: &str, name: &str) -> Result<f64> {
        self.dataset(inner)?
            .attribute(name)
            .and_then(|a| a.read_as_f64())
            .map_err(|e| self.error(inner, format!("no numeric attribute {name:?}: {e}")))
    }

    /// The whole numeric dataset at `inner` as f64.
    pub fn f64s(&self, inner: &str) -> Result<Array<f64>> {
        self.numeric(inner, |v| v)
    }

    /// The whole numeric dataset at `inner` as f32 (responses and images: the file's values,
    /// rounded to f32 when stored wider).
    pub fn f32s(&self, inner: &str) -> Result<Array<f32>> {
        self.numeric(inner, |v| v as f32)
    }

    /// The whole numeric dataset at `inner`, each value converted by `to` from f64 (integers
    /// and floats of any width; f32 data is read as f32 and widened, without a copy as f64).
    fn numeric<T: Copy + Default>(&self, inner: &str, to: fn(f64) -> T) -> Result<Array<T>> {
        let d = self.dataset(inner)?;
        let shape: Vec<usize> = d.shape().iter().map(|&s| s as usize).collect();
        let n: usize = shape.iter().product();
        let bad = |e: hdf5_reader::error::Error| self.error(inner, format!("unreadable: {e}"));
        macro_rules! read {
            ($t:ty) => {{
                let mut buffer = vec![<$t>::default(); n];
                d.read_into(&mut buffer).map_err(bad)?;
                buffer.into_iter().map(|v| to(v as f64)).collect::<Vec<T>>()
            }};
        }
        let values = match d.dtype() {
            Datatype::FloatingPoint { size: 4, .. } => read!(f32),
            Datatype::FloatingPoint { size: 8, .. } => read!(f64),
            Datatype::FixedPoint { size, signed, .. } => match (size, signed) {
                (1, false) => read!(u8),
                (1, true) => read!(i8),
                (2, false) => read!(u16),
                (2, true) => read!(i16),
                (4, false) => read!(u32),
                (4, true) => read!(i32),
                (8, false) => read!(u64),
                (8, true) => read!(i64),
                _ => return Err(self.error(inner, format!("integers of {size} bytes"))),
            },
            other => return Err(self.error(inner, format!("not numeric (its type is {other:?})"))),
        };
        Ok(Array { values, shape })
    }

    /// The names of the objects the object references stored in the dataset at `inner` point
    /// to, looked up among the children of the group at `parent`.
    pub fn referenced_names(&self, inner: &str, parent: &str) -> Result<Vec<String>> {
        let raw = self
            .dataset(inner)?
            .read_raw_bytes()
            .map_err(|e| self.error(inner, format!("unreadable: {e}")))?;
        let group = self.group(parent)?;
        let addresses = hdf5_reader::reference::read_object_references(&raw, group.offset_size())
            .map_err(|e| self.error(inner, format!("not object references: {e}")))?;
        addresses
            .into_iter()
            .map(|a| {
                group
                    .child_name_by_address(a)
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        self.error(inner, format!("a reference to {a:#x} is not in {parent}"))
                    })
            })
            .collect()
    }
}
