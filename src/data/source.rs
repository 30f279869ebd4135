//! Where a scan's files come from: a folder, or a `.zip` read in place.
//!
//! Paths inside a scan are relative and use `/` (`data/responses/3.npy`). A
//! zip may hold the tree at its root or under one top folder, as zips made by
//! compressing a scan's folder do.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file whose presence marks the root of a scan's tree.
const MARKER: &str = "meta/trials/frame_image_id.npy";

/// A scan's file tree, on disk or in a zip.
pub enum ScanSource {
    /// A folder holding `data/` and `meta/`.
    Folder(PathBuf),
    /// A zip archive; `prefix` is the folder inside it that holds `data/` and `meta/`.
    Zip {
        /// The archive on disk.
        path: PathBuf,
        /// The opened archive.
        archive: Box<zip::ZipArchive<File>>,
        /// `""` or `"top/"`.
        prefix: String,
    },
}

impl ScanSource {
    /// Opens a scan folder or zip, checking that it has the Sensorium layout.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            if !path.join(MARKER).is_file() {
                return Err(Error::file(
                    path.display(),
                    format!("not a scan folder: {MARKER} is missing (expected the Sensorium layout data/..., meta/...)"),
                ));
            }
            return Ok(ScanSource::Folder(path.to_path_buf()));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let archive = zip::ZipArchive::new(file).map_err(|e| {
            Error::file(
                path.display(),
                format!("neither a folder nor a readable zip: {e}"),
            )
        })?;
        let prefix = archive
            .file_names()
            .filter_map(|n| n.strip_suffix(MARKER))
            .filter(|p| p.is_empty() || (p.ends_with('/') && p[..p.len() - 1].find('/').is_none()))
            .min_by_key(|p| p.len())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::file(
                    path.display(),
                    format!(
                        "zip has the wrong layout: no {MARKER} at its root or under one top folder"
                    ),
                )
            })?;
        Ok(ScanSource::Zip {
            path: path.to_path_buf(),
            archive: Box::new(archive),
            prefix,
        })
    }

    /// The path shown to the user for the file `rel` of this scan.
    pub fn describe(&self, rel: &str) -> String {
        match self {
            ScanSource::Folder(dir) => dir.join(rel).display().to_string(),
            ScanSource::Zip { path, prefix, .. } => format!("{}:{prefix}{rel}", path.display()),
        }
    }

    /// Whether the file `rel` exists.
    pub fn contains(&self, rel: &str) -> bool {
        match self {
            ScanSource::Folder(dir) => dir.join(rel).is_file(),
            ScanSource::Zip {
                archive, prefix, ..
            } => archive.index_for_name(&format!("{prefix}{rel}")).is_some(),
        }
    }

    /// Reads the whole file `rel`.
    pub fn read(&mut self, rel: &str) -> Result<Vec<u8>> {
        let shown = self.describe(rel);
        match self {
            ScanSource::Folder(dir) => {
                let p = dir.join(rel);
                if !p.is_file() {
                    return Err(Error::file(shown, "missing"));
                }
                std::fs::read(&p).map_err(|e| Error::io(p, e))
            }
            ScanSource::Zip {
                archive, prefix, ..
            } => {
                let mut entry = archive
                    .by_name(&format!("{prefix}{rel}"))
                    .map_err(|_| Error::file(&shown, "missing"))?;
                let mut bytes = Vec::with_capacity(entry.size().min(1 << 28) as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::file(&shown, format!("cannot read from the zip: {e}")))?;
                Ok(bytes)
            }
        }
    }

    /// The names of the files directly inside the folder `rel` (empty if it does not exist).
    pub fn list(&self, rel: &str) -> Result<BTreeSet<String>> {
        match self {
            ScanSource::Folder(dir) => {
                let p = dir.join(rel);
                if !p.is_dir() {
                    return Ok(BTreeSet::new());
                }
                let entries = std::fs::read_dir(&p).map_err(|e| Error::io(&p, e))?;
                let mut names = BTreeSet::new();
                for entry in entries {
                    let entry = entry.map_err(|e| Error::io(&p, e))?;
                    if entry.path().is_file() {
                        names.insert(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                Ok(names)
            }
            ScanSource::Zip {
                archive, prefix, ..
            } => {
                let folder = format!("{prefix}{rel}/");
                Ok(archive
                    .file_names()
                    .filter_map(|n| n.strip_prefix(&folder))
                    .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                    .map(str::to_string)
                    .collect())
            }
        }
    }
}

/// Writes a scan's files into a folder, or into a zip when `path` ends in `.zip`.
///
/// Zip entries get a fixed timestamp, so the same files give the same archive.
pub fn write_tree(path: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if !is_zip {
        for (rel, bytes) in files {
            crate::atomic::write_atomic(&path.join(rel), bytes)?;
        }
        return Ok(());
    }
    crate::atomic::write_atomic_with(path, |tmp| {
        let file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default());
        let to_err = |e: &dyn std::fmt::Display| {
            Error::file(tmp.display(), format!("cannot write zip: {e}"))
        };
        for (rel, bytes) in files {
            zip.start_file(rel.as_str(), options)
                .map_err(|e| to_err(&e))?;
            std::io::Write::write_all(&mut zip, bytes).map_err(|e| to_err(&e))?;
        }
        zip.finish().map_err(|e| to_err(&e))?;
        Ok(())
    })
}
