//! The monitor the simulated mouse looks at: where each image pixel lies in the visual field.
//!
//! The setup of Li et al. 2019 and the Sensorium scans (Walker et al. 2019, Willeke et al. 2022):
//! a 25" monitor (56.5 x 31.8 cm, [`MONITOR_WIDTH_CM`]) 15 cm from the eye
//! ([`VIEWING_DISTANCE_CM`]), centred on and perpendicular to the line of sight, showing each image
//! full screen. The paper's 36 x 64 images (144 x 256 downsampled by four) therefore span about
//! 124 x 93 degrees of visual angle; one of their pixels is 0.88 cm, 3.37 degrees at the centre of
//! the screen and under 1 degree at its far corners (the papers' "3.8 degrees/cm at the nearest
//! point and 0.7 degrees/cm at the most remote corner"). Receptive fields are laid out in visual
//! degrees and sampled through this geometry, so a receptive field near the edge covers fewer
//! pixels than one at the centre, as on the real screen.

use std::f32::consts::PI;

/// Width of the monitor (ASUS PB258Q, 25"; Walker et al. 2019, Methods).
pub const MONITOR_WIDTH_CM: f32 = 56.5;
/// Distance from the eye to the monitor's centre (Walker et al. 2019; Willeke et al. 2022).
pub const VIEWING_DISTANCE_CM: f32 = 15.0;
/// Sub-samples per pixel side when a filter is integrated over a pixel's footprint.
const SUBSAMPLES: usize = 3;

/// A unit direction of gaze (x to the right, y up, z from the eye to the screen).
pub type Direction = [f32; 3];

/// An image of `height` x `width` square pixels shown full width on the monitor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Screen {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl Screen {
    /// The size of one image pixel on the monitor, in cm.
    pub fn pixel_cm(&self) -> f32 {
        MONITOR_WIDTH_CM / self.width as f32
    }

    /// Degrees of visual angle per pixel at the centre of the screen.
    pub fn degrees_per_pixel_at_centre(&self) -> f32 {
        (self.pixel_cm() / VIEWING_DISTANCE_CM).atan().to_degrees()
    }

    /// The visual angle the whole image spans, (horizontal, vertical) in degrees.
    pub fn extent_degrees(&self) -> (f32, f32) {
        let half = |pixels: usize| pixels as f32 * self.pixel_cm() / 2.0 / VIEWING_DISTANCE_CM;
        (
            2.0 * half(self.width).atan().to_degrees(),
            2.0 * half(self.height).atan().to_degrees(),
        )
    }

    /// The screen point at image coordinates (row y, column x; pixel centres at +0.5), in cm from
    /// the screen's centre (x right, y up).
    fn screen_cm(&self, y: f32, x: f32) -> (f32, f32) {
        let p = self.pixel_cm();
        (
            (x - self.width as f32 / 2.0) * p,
            (self.height as f32 / 2.0 - y) * p,
        )
    }

    /// The direction of image point (y, x).
    pub fn direction(&self, y: f32, x: f32) -> Direction {
        let (sx, sy) = self.screen_cm(y, x);
        let r = (sx * sx + sy * sy + VIEWING_DISTANCE_CM * VIEWING_DISTANCE_CM).sqrt();
        [sx / r, sy / r, VIEWING_DISTANCE_CM / r]
    }

    /// The image point (row, column) that direction `d` falls on.
    pub fn image_point(&self, d: Direction) -> (f32, f32) {
        let scale = VIEWING_DISTANCE_CM / d[2].max(1e-6);
        let p = self.pixel_cm();
        (
            self.height as f32 / 2.0 - d[1] * scale / p,
            d[0] * scale / p + self.width as f32 / 2.0,
        )
    }

    /// The visual angle of a screen area of `pixel_cm`^2 at image point (y, x), in square degrees.
    fn solid_angle_deg2(&self, y: f32, x: f32, area_cm2: f32) -> f32 {
        let (sx, sy) = self.screen_cm(y, x);
        let r2 = sx * sx + sy * sy + VIEWING_DISTANCE_CM * VIEWING_DISTANCE_CM;
        let steradians = area_cm2 * VIEWING_DISTANCE_CM / (r2 * r2.sqrt());
        steradians * (180.0 / PI).powi(2)
    }

    /// Integrates `f` over each pixel of the window of pixels within `radius_deg` of `centre`:
    /// `f` takes a point's local coordinates around `centre` in degrees (azimuthal equidistant:
    /// x along the horizontal meridian's direction, y up) and the result is, per pixel,
    /// `sum f * dOmega` over the pixel's sub-samples (dOmega in square degrees). Returns the
    /// window (first row, first column, rows, columns) and its weights, row-major.
    pub fn integrate(
        &self,
        centre: Direction,
        radius_deg: f32,
        f: &dyn Fn(f32, f32) -> f32,
    ) -> (usize, usize, usize, usize, Vec<f32>) {
        let (cy, cx) = self.image_point(centre);
        // The window: pixels whose centre direction lies within the radius, found by its bounds.
        let reach = |dy: f32, dx: f32| {
            let mut k = 0.0f32;
            while k < (self.height + self.width) as f32 {
                let d = self.direction(cy + dy * (k + 1.0), cx + dx * (k + 1.0));
                if angle_deg(centre, d) > radius_deg {
                    break;
                }
                k += 1.0;
            }
            k + 1.0
        };
        let clamp_row = |v: f32| (v.floor().max(0.0) as usize).min(self.height);
        let clamp_col = |v: f32| (v.floor().max(0.0) as usize).min(self.width);
        let y0 = clamp_row(cy - reach(-1.0, 0.0));
        let y1 = clamp_row(cy + reach(1.0, 0.0) + 1.0);
        let x0 = clamp_col(cx - reach(0.0, -1.0));
        let x1 = clamp_col(cx + reach(0.0, 1.0) + 1.0);
        let (e1, e2) = tangent_basis(centre);
        let sub_area = (self.pixel_cm() / SUBSAMPLES as f32).powi(2);
        let mut weights = Vec::with_capacity((y1 - y0) * (x1 - x0));
        for y in y0..y1 {
            for x in x0..x1 {
                let mut acc = 0.0;
                for sy in 0..SUBSAMPLES {
                    for sx in 0..SUBSAMPLES {
                        let py = y as f32 + (sy as f32 + 0.5) / SUBSAMPLES as f32;
                        let px = x as f32 + (sx as f32 + 0.5) / SUBSAMPLES as f32;
                        let d = self.direction(py, px);
                        let (u, v) = local_degrees(centre, e1, e2, d);
                        acc += f(u, v) * self.solid_angle_deg2(py, px, sub_area);
                    }
                }
                weights.push(acc);
            }
        }
        (y0, x0, y1 - y0, x1 - x0, weights)
    }
}

impl Screen {
    /// A grating in visual space (luminance 0-255 around the mean gray 128, row-major): contrast
    /// `contrast` at `frequency` cycles per degree along `orientation` (radians from the
    /// horizontal) and spatial phase `phase`, laid out in degrees around the screen's centre as a
    /// spherically corrected stimulus is (Marshel et al. 2011).
    pub fn grating(&self, frequency: f32, orientation: f32, phase: f32, contrast: f32) -> Vec<f32> {
        let centre = direction_at(0.0, 0.0);
        let (e1, e2) = tangent_basis(centre);
        let mut out = Vec::with_capacity(self.height * self.width);
        for y in 0..self.height {
            for x in 0..self.width {
                let d = self.direction(y as f32 + 0.5, x as f32 + 0.5);
                let (u, v) = local_degrees(centre, e1, e2, d);
                let along = u * orientation.cos() + v * orientation.sin();
                out.push(128.0 * (1.0 + contrast * (2.0 * PI * frequency * along + phase).cos()));
            }
        }
        out
    }
}

/// The direction at azimuth `az` and elevation `el` (degrees) from straight ahead.
pub fn direction_at(az: f32, el: f32) -> Direction {
    let (az, el) = (az.to_radians(), el.to_radians());
    [el.cos() * az.sin(), el.sin(), el.cos() * az.cos()]
}

/// The angle between two directions, in degrees.
pub fn angle_deg(a: Direction, b: Direction) -> f32 {
    let dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    dot.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Unit vectors tangent to the sphere at `c`: horizontal (to the right) and up.
fn tangent_basis(c: Direction) -> (Direction, Direction) {
    // Horizontal: perpendicular to c and to the vertical axis.
    let h = [c[2], 0.0, -c[0]];
    let norm = (h[0] * h[0] + h[2] * h[2]).sqrt().max(1e-6);
    let e1 = [h[0] / norm, 0.0, h[2] / norm];
    // Up: c x e1 points up for c straight ahead (z x x = y).
    let e2 = [
        c[1] * e1[2] - c[2] * e1[1],
        c[2] * e1[0] - c[0] * e1[2],
        c[0] * e1[1] - c[1] * e1[0],
    ];
    (e1, e2)
}

/// The azimuthal equidistant coordinates (degrees) of `d` around `c` in the basis (e1, e2).
fn local_degrees(c: Direction, e1: Direction, e2: Direction, d: Direction) -> (f32, f32) {
    let dot = |a: Direction, b: Direction| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let (u, v) = (dot(d, e1), dot(d, e2));
    let sine = (u * u + v * v).sqrt();
    if sine < 1e-9 {
        return (0.0, 0.0);
    }
    let angle = sine.atan2(dot(d, c)).to_degrees();
    (angle * u / sine, angle * v / sine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_image_spans_124_by_93_degrees_and_3_4_degrees_per_central_pixel() {
        let s = Screen {
            height: 36,
            width: 64,
        };
        let (h, v) = s.extent_degrees();
        assert!((h - 124.0).abs() < 1.0 && (v - 93.3).abs() < 1.0, "{h} {v}");
        assert!((s.degrees_per_pixel_at_centre() - 3.37).abs() < 0.01);
        // 1 cm at the centre subtends 3.8 degrees; at the far corner, along the line to the
        // centre, about 0.7 (the papers' words).
        let mm = 0.1 / s.pixel_cm();
        let toward = |y: f32, x: f32, k: f32| {
            let (dy, dx) = (18.0 - y, 32.0 - x);
            let norm = (dy * dy + dx * dx).sqrt();
            s.direction(y + k * mm * dy / norm, x + k * mm * dx / norm)
        };
        let centre = angle_deg(s.direction(18.0, 32.0), s.direction(18.0, 32.0 + mm)) * 10.0;
        let corner = angle_deg(toward(0.0, 0.0, 0.0), toward(0.0, 0.0, 1.0)) * 10.0;
        assert!((centre - 3.8).abs() < 0.05, "{centre}");
        assert!((corner - 0.7).abs() < 0.05, "{corner}");
    }

    #[test]
    fn directions_and_image_points_are_inverse() {
        let s = Screen {
            height: 36,
            width: 64,
        };
        for (y, x) in [(18.0, 32.0), (3.5, 60.25), (30.0, 7.0)] {
            let (yy, xx) = s.image_point(s.direction(y, x));
            assert!((yy - y).abs() < 1e-3 && (xx - x).abs() < 1e-3);
        }
        let right = s.image_point(direction_at(30.0, 0.0));
        // 15 cm * tan(30 degrees) = 8.66 cm = 9.8 pixels right of the centre.
        assert!((right.1 - 32.0 - 9.81).abs() < 0.02 && (right.0 - 18.0).abs() < 1e-3);
    }

    #[test]
    fn integrating_one_over_a_disc_gives_its_solid_angle() {
        let s = Screen {
            height: 36,
            width: 64,
        };
        // A disc of 20 degrees' radius straight ahead: solid angle 2 pi (1 - cos 20 deg) sr.
        let disc = |u: f32, v: f32| if u * u + v * v <= 400.0 { 1.0 } else { 0.0 };
        let (_, _, _, _, w) = s.integrate(direction_at(0.0, 0.0), 25.0, &disc);
        let expected = 2.0 * PI * (1.0 - 20f32.to_radians().cos()) * (180.0 / PI).powi(2);
        let got: f32 = w.iter().sum();
        assert!((got / expected - 1.0).abs() < 0.02, "{got} {expected}");
        // Local coordinates: a point 10 degrees up is at (0, 10).
        let c = direction_at(0.0, 0.0);
        let (e1, e2) = tangent_basis(c);
        let (u, v) = local_degrees(c, e1, e2, direction_at(0.0, 10.0));
        assert!(u.abs() < 1e-4 && (v - 10.0).abs() < 1e-3, "{u} {v}");
    }
}
