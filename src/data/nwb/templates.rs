//! The images a session showed, from `stimulus/templates`: an `Images` container (one dataset
//! per image, in `order_of_images` or by the number in their names), an `ImageSeries` stack, or a
//! plain array; grayscale or RGB (to luminance, BT.601). Images are read as (rows, columns), as
//! pynwb writes NumPy arrays and the Allen Institute stores its templates, whatever axis names
//! the schema uses.

use super::file::NwbFile;
use crate::error::Result;

/// Where the templates live.
const TEMPLATES: &str = "stimulus/templates";

/// A set of images of one size.
pub struct Templates {
    /// Where they were read.
    pub source: String,
    /// Height and width.
    pub shape: (usize, usize),
    /// Each image, row-major, on the file's scale (0-255 for 8-bit images).
    pub images: Vec<Vec<f32>>,
}

/// One image (or a stack) from an array of `shape`: (H, W), (H, W, 3|4), or with a leading
/// stack axis. Returns the images and their size.
/// Images, each flattened row-major, and their (height, width).
type Images = (Vec<Vec<f32>>, (usize, usize));

fn images_of(values: &[f32], shape: &[usize], stacked: bool) -> Option<Images> {
    let (count, h, w, channels) = match (stacked, shape) {
        (false, [h, w]) => (1, *h, *w, 1),
        (false, [h, w, c @ (3 | 4)]) => (1, *h, *w, *c),
        (true, [n, h, w]) => (*n, *h, *w, 1),
        (true, [n, h, w, c @ (3 | 4)]) => (*n, *h, *w, *c),
        _ => return None,
    };
    let size = h * w;
    let images = (0..count)
        .map(|k| {
            let img = &values[k * size * channels..][..size * channels];
            if channels == 1 {
                img.to_vec()
            } else {
                img.chunks_exact(channels)
                    .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
                    .collect()
            }
        })
        .collect();
    Some((images, (h, w)))
}

/// The number at the end of a name ("NaturalScene12" -> 12), for ordering images by name.
fn trailing_number(name: &str) -> Option<u64> {
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// The image datasets of the `Images` container at `path`, in their order.
fn container(f: &NwbFile, path: &str) -> Result<(Templates, Option<String>)> {
    let (_, names) = f.children(path)?;
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n != "order_of_images")
        .collect();
    let order = format!("{path}/order_of_images");
    let mut notice = None;
    if f.exists(&order) {
        names = f.referenced_names(&order, path)?;
    } else if names.iter().all(|n| trailing_number(n).is_some()) {
        names.sort_by_key(|n| trailing_number(n));
    } else {
        notice = Some(format!(
            "{path} has no order_of_images and not every image name ends in a number: its \
             images are taken in name order"
        ));
    }
    let mut images = Vec::with_capacity(names.len());
    let mut shape = None;
    for name in &names {
        let p = format!("{path}/{name}");
        let a = f.f32s(&p)?;
        let (mut one, s) = images_of(&a.values, &a.shape, false).ok_or_else(|| {
            f.error(
                &p,
                format!("has shape {:?}; an image is (H, W) or (H, W, 3)", a.shape),
            )
        })?;
        if *shape.get_or_insert(s) != s {
            return Err(f.error(&p, format!("is {s:?} where the others are {shape:?}")));
        }
        images.append(&mut one);
    }
    let shape = shape.ok_or_else(|| f.error(path, "holds no images"))?;
    Ok((
        Templates {
            source: path.to_string(),
            shape,
            images,
        },
        notice,
    ))
}

/// The stack at `data` (frames first).
fn stack(f: &NwbFile, data: &str) -> Result<Templates> {
    let a = f.f32s(data)?;
    let (images, shape) = images_of(&a.values, &a.shape, true).ok_or_else(|| {
        f.error(
            data,
            format!(
                "has shape {:?}; a stack is (frames, H, W) or (frames, H, W, 3)",
                a.shape
            ),
        )
    })?;
    Ok(Templates {
        source: data.to_string(),
        shape,
        images,
    })
}

/// The templates: of the sets in `stimulus/templates` (containers, series and arrays, by name),
/// the first with more images than `highest`, the largest index shown (else the largest set).
/// Notices say what was assumed.
pub fn read(f: &NwbFile, highest: i64) -> Result<(Templates, Vec<String>)> {
    if !f.exists(TEMPLATES) {
        return Err(f.error(
            TEMPLATES,
            "missing: an NWB scan needs the images it showed in stimulus/templates",
        ));
    }
    let (groups, datasets) = f.children(TEMPLATES)?;
    let mut sets = Vec::new();
    let mut notices = Vec::new();
    for g in &groups {
        let path = format!("{TEMPLATES}/{g}");
        let set = if f.exists(&format!("{path}/data")) {
            stack(f, &format!("{path}/data"))
        } else {
            container(f, &path).map(|(t, n)| {
                notices.extend(n);
                t
            })
        };
        sets.push(set);
    }
    for d in &datasets {
        sets.push(stack(f, &format!("{TEMPLATES}/{d}")));
    }
    // The first set that holds every image shown; else the largest, which the caller refuses
    // naming the row that shows an image past it.
    let mut largest: Option<Templates> = None;
    let mut first_error = None;
    let several = groups.len() + datasets.len() > 1;
    for set in sets {
        match set {
            Ok(t) if t.images.len() as i64 > highest => {
                if several {
                    notices.push(format!("images from {}", t.source));
                }
                return Ok((t, notices));
            }
            Ok(t) => {
                if largest
                    .as_ref()
                    .is_none_or(|l| l.images.len() < t.images.len())
                {
                    largest = Some(t);
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (largest, first_error) {
        (Some(t), _) => Ok((t, notices)),
        (None, Some(e)) => Err(e),
        (None, None) => Err(f.error(TEMPLATES, "holds no images")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_becomes_luminance_and_names_order_by_their_numbers() {
        // One 1 x 2 RGB image: pure red and pure green.
        let (images, shape) =
            images_of(&[255.0, 0.0, 0.0, 0.0, 255.0, 0.0], &[1, 2, 3], false).expect("an image");
        assert_eq!(shape, (1, 2));
        assert!((images[0][0] - 0.299 * 255.0).abs() < 1e-3);
        assert!((images[0][1] - 0.587 * 255.0).abs() < 1e-3);
        assert_eq!(trailing_number("NaturalScene117"), Some(117));
        assert_eq!(trailing_number("image"), None);
        assert!(images_of(&[0.0; 8], &[2, 2, 2], false).is_none());
    }
}
