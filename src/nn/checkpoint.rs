//! Checkpoints in safetensors: the model's variables (and, for a resumable
//! checkpoint, the optimiser's moments), written atomically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::error::{Error, Result};

/// Writes the variables of `varmap` plus `extra` tensors to `path` through a temporary file.
pub fn save(path: &Path, varmap: &VarMap, extra: Vec<(String, Tensor)>) -> Result<()> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    if let Ok(data) = varmap.data().lock() {
        for (name, var) in data.iter() {
            tensors.insert(name.clone(), var.as_tensor().clone());
        }
    }
    tensors.extend(extra);
    crate::atomic::write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp)
            .map_err(|e| Error::file(tmp.display(), format!("cannot write checkpoint: {e}")))
    })
}

/// Reads a checkpoint.
pub fn load(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.is_file() {
        return Err(Error::file(path.display(), "missing checkpoint"));
    }
    candle_core::safetensors::load(path, device).map_err(|e| {
        Error::file(
            path.display(),
            format!("not a readable safetensors checkpoint: {e}"),
        )
    })
}

/// Sets every variable of `varmap` from `tensors`; a missing name or a wrong
/// shape means the checkpoint is of another architecture.
pub fn restore(varmap: &VarMap, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("model variables are locked by a failed job".into()))?;
    for (name, var) in data.iter() {
        let t = tensors.get(name).ok_or_else(|| {
            Error::file(
                path.display(),
                format!("checkpoint of another architecture: it has no tensor {name}"),
            )
        })?;
        if t.dims() != var.dims() {
            return Err(Error::file(
                path.display(),
                format!("checkpoint of another architecture: {name} has shape {:?}, the model needs {:?}", t.dims(), var.dims()),
            ));
        }
        var.set(t)?;
    }
    Ok(())
}
