//! Classification sets (docs/method.md section 7) as neureg holds them, whatever their format:
//! labelled grayscale images on [0, 1] (`classification_read.rs` reads them).

use crate::error::{Error, Result};

/// Labelled grayscale images of one size, pixels on [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledImages {
    /// Height and width.
    pub shape: (usize, usize),
    /// Pixels, image after image, row-major (len = count * h * w).
    pub pixels: Vec<f32>,
    /// Class of each image.
    pub labels: Vec<u32>,
}

impl LabelledImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.shape.0 * self.shape.1;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The first `n` images (all if fewer).
    pub fn truncated(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * self.shape.0 * self.shape.1);
        self
    }
}

/// A classification set: its classes and its training and test images.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationSet {
    /// Where it was read from.
    pub name: String,
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// Training images.
    pub train: LabelledImages,
    /// Test images.
    pub test: LabelledImages,
}

impl ClassificationSet {
    /// Checks labels against the classes and that both tiers share one image size.
    pub fn validate(self) -> Result<Self> {
        if self.train.is_empty() || self.test.is_empty() {
            return Err(Error::file(&self.name, "has no training or no test images"));
        }
        if self.train.shape != self.test.shape {
            return Err(Error::file(
                &self.name,
                format!(
                    "training images are {:?} but test images {:?}",
                    self.train.shape, self.test.shape
                ),
            ));
        }
        let k = self.classes.len() as u32;
        if let Some(l) = self
            .train
            .labels
            .iter()
            .chain(&self.test.labels)
            .find(|&&l| l >= k)
        {
            return Err(Error::file(
                &self.name,
                format!("label {l} but only {k} classes"),
            ));
        }
        Ok(self)
    }
}

/// Luminance of an RGB pixel (ITU-R BT.601, as PIL's `convert("L")`).
pub fn luminance(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luminance_weights_sum_to_one() {
        assert!((luminance(1.0, 1.0, 1.0) - 1.0).abs() < 1e-6);
        assert!((luminance(1.0, 0.0, 0.0) - 0.299).abs() < 1e-6);
    }

    #[test]
    fn labels_beyond_the_classes_are_refused() {
        let tier = LabelledImages {
            shape: (1, 1),
            pixels: vec![0.5],
            labels: vec![3],
        };
        let set = ClassificationSet {
            name: "x".into(),
            classes: vec!["a".into(), "b".into()],
            train: tier.clone(),
            test: tier,
        };
        let e = set.validate().unwrap_err().to_string();
        assert!(e.contains("label 3 but only 2 classes"), "{e}");
    }
}
