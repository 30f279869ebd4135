//! Image downsampling by area averaging (144 x 256 Sensorium frames to the paper's 36 x 64).

/// Averages each `fh x fw` block of an `h x w` image into one pixel of a `th x tw` image.
///
/// The factors must be whole numbers; otherwise the error says why.
pub fn area_average(
    img: &[f32],
    (h, w): (usize, usize),
    (th, tw): (usize, usize),
) -> Result<Vec<f32>, String> {
    if th == 0 || tw == 0 || h % th != 0 || w % tw != 0 {
        return Err(format!(
            "cannot downsample {h} x {w} images to {th} x {tw} by area averaging: the sizes must divide evenly"
        ));
    }
    let (fh, fw) = (h / th, w / tw);
    let scale = 1.0 / (fh * fw) as f32;
    let mut out = vec![0.0; th * tw];
    for y in 0..h {
        for x in 0..w {
            out[(y / fh) * tw + x / fw] += img[y * w + x] * scale;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_blocks() {
        let img = [1., 2., 3., 4., 5., 6., 7., 8.];
        assert_eq!(area_average(&img, (2, 4), (1, 2)).unwrap(), vec![3.5, 5.5]);
        assert_eq!(area_average(&img, (2, 4), (2, 4)).unwrap(), img.to_vec());
        assert!(area_average(&img, (2, 4), (1, 3)).is_err());
    }
}
