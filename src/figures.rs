//! PNG figures for reports: lines with error bands, points with error bars, grouped bars, on
//! labelled axes with a legend.
//!
//! Hand-written on `image` and `ab_glyph` (with egui's bundled Ubuntu font): plotters, the crate
//! made for this, draws text only through system fontconfig in the version the registry holds,
//! and a report must render on a machine with no system packages.

use std::path::Path;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgba, RgbaImage};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// An RGB colour.
pub type Colour = [u8; 3];

/// Distinct colours for up to ten series (Tableau 10), repeated beyond.
pub fn palette(k: usize) -> Colour {
    const P: [Colour; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    P[k % P.len()]
}

/// What a series draws.
#[derive(Debug, Clone)]
pub enum Mark {
    /// A line through the points, with an optional band (lower, upper) at each.
    Line {
        /// (x, y) in data units, x increasing.
        points: Vec<(f64, f64)>,
        /// (lower, upper) per point.
        band: Option<Vec<(f64, f64)>>,
    },
    /// Dots with optional error bars (half-widths in x and y).
    Points {
        /// (x, y).
        points: Vec<(f64, f64)>,
        /// Half-width of the x error bar per point.
        x_err: Vec<f64>,
        /// (lower, upper) of the y error bar per point.
        y_err: Vec<(f64, f64)>,
    },
    /// Bars from 0 at x (centre) with a width in data units and an error bar.
    Bars {
        /// (x centre, height).
        bars: Vec<(f64, f64)>,
        /// Bar width.
        width: f64,
        /// (lower, upper) of the error bar per bar.
        err: Vec<(f64, f64)>,
    },
}

/// A named, coloured series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Its colour.
    pub colour: Colour,
    /// What it draws.
    pub mark: Mark,
}

/// A chart.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Tick labels at chosen x positions (categorical axes); numeric ticks otherwise.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// The series.
    pub series: Vec<Series>,
    /// A horizontal reference line (e.g. 0 for differences).
    pub reference_y: Option<f64>,
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;

/// Maps data to pixels.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64, y: f64) -> (f64, f64) {
        let w = WIDTH as f64 - LEFT - RIGHT;
        let h = HEIGHT as f64 - TOP - BOTTOM;
        (
            LEFT + (x - self.x.0) / (self.x.1 - self.x.0) * w,
            TOP + (1.0 - (y - self.y.0) / (self.y.1 - self.y.0)) * h,
        )
    }
}

/// The canvas: an image and the font its text is drawn in.
struct Canvas<'f> {
    img: RgbaImage,
    font: FontRef<'f>,
}

impl Canvas<'_> {
    /// Blends `colour` at `alpha` into pixel (x, y).
    fn blend(&mut self, x: i64, y: i64, colour: Colour, alpha: f64) {
        if x < 0 || y < 0 || x >= WIDTH as i64 || y >= HEIGHT as i64 || alpha <= 0.0 {
            return;
        }
        let a = alpha.min(1.0);
        let p = self.img.get_pixel_mut(x as u32, y as u32);
        for (v, &c) in p.0.iter_mut().zip(&colour) {
            *v = (*v as f64 * (1.0 - a) + c as f64 * a).round() as u8;
        }
    }

    /// An anti-aliased polyline of `width` pixels (coverage taken as the maximum over segments,
    /// so joints are not drawn twice).
    fn polyline(&mut self, points: &[(f64, f64)], width: f64, colour: Colour) {
        if points.is_empty() {
            return;
        }
        let r = width / 2.0;
        let (x0, x1) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let (bx0, by0) = ((x0 - r - 1.0).floor() as i64, (y0 - r - 1.0).floor() as i64);
        let (bx1, by1) = ((x1 + r + 1.0).ceil() as i64, (y1 + r + 1.0).ceil() as i64);
        let segments: Vec<((f64, f64), (f64, f64))> = if points.len() == 1 {
            vec![(points[0], points[0])]
        } else {
            points.windows(2).map(|w| (w[0], w[1])).collect()
        };
        for py in by0.max(0)..=by1.min(HEIGHT as i64 - 1) {
            for px in bx0.max(0)..=bx1.min(WIDTH as i64 - 1) {
                let (cx, cy) = (px as f64 + 0.5, py as f64 + 0.5);
                let d = segments
                    .iter()
                    .map(|&(a, b)| segment_distance((cx, cy), a, b))
                    .fold(f64::MAX, f64::min);
                let coverage = (r + 0.5 - d).clamp(0.0, 1.0);
                self.blend(px, py, colour, coverage);
            }
        }
    }

    /// A filled rectangle in pixels.
    fn rect(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), colour: Colour, alpha: f64) {
        let (xa, xb) = (x0.min(x1).round() as i64, x0.max(x1).round() as i64);
        let (ya, yb) = (y0.min(y1).round() as i64, y0.max(y1).round() as i64);
        for y in ya..yb {
            for x in xa..xb {
                self.blend(x, y, colour, alpha);
            }
        }
    }

    /// Width in pixels of `text` at `size`.
    fn text_width(&self, text: &str, size: f32) -> f64 {
        let font = self.font.as_scaled(PxScale::from(size));
        text.chars()
            .map(|c| font.h_advance(font.glyph_id(c)) as f64)
            .sum()
    }

    /// Draws `text` with its left end at x and its baseline at y.
    fn text(&mut self, text: &str, x: f64, y: f64, size: f32, colour: Colour) {
        let scale = PxScale::from(size);
        let font = self.font.clone();
        let scaled = font.as_scaled(scale);
        let mut caret = x as f32;
        let mut last = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(prev) = last {
                caret += scaled.kern(prev, id);
            }
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(caret, y as f32));
            caret += scaled.h_advance(id);
            last = Some(id);
            if let Some(outlined) = font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                let mut pixels = Vec::new();
                outlined.draw(|gx, gy, cov| pixels.push((gx, gy, cov)));
                for (gx, gy, cov) in pixels {
                    self.blend(
                        b.min.x as i64 + gx as i64,
                        b.min.y as i64 + gy as i64,
                        colour,
                        cov as f64,
                    );
                }
            }
        }
    }

    /// `text` centred on x.
    fn text_centred(&mut self, text: &str, x: f64, y: f64, size: f32, colour: Colour) {
        let w = self.text_width(text, size);
        self.text(text, x - w / 2.0, y, size, colour);
    }

    /// `text` turned a quarter anticlockwise, centred on (x, y).
    fn text_vertical(&mut self, text: &str, x: f64, y: f64, size: f32) {
        let w = self.text_width(text, size).ceil() as u32 + 4;
        let h = (size * 1.4).ceil() as u32;
        let mut scratch = Canvas {
            img: RgbaImage::from_pixel(w, h, Rgba([255, 255, 255, 255])),
            font: self.font.clone(),
        };
        scratch.text(text, 2.0, size as f64, size, [0, 0, 0]);
        let turned = image::imageops::rotate270(&scratch.img);
        let (x0, y0) = (x as i64 - h as i64 / 2, y as i64 - w as i64 / 2);
        for (px, py, p) in turned.enumerate_pixels() {
            let darkness = 1.0 - p.0[0] as f64 / 255.0;
            self.blend(x0 + px as i64, y0 + py as i64, [0, 0, 0], darkness);
        }
    }
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// Round tick positions covering `(lo, hi)`, about five of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label with as many decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6);
    format!("{v:.decimals$}")
}

/// The data range of a chart's series, padded by 5%.
fn data_range(chart: &Chart) -> ((f64, f64), (f64, f64)) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for s in &chart.series {
        match &s.mark {
            Mark::Line { points, band } => {
                xs.extend(points.iter().map(|p| p.0));
                ys.extend(points.iter().map(|p| p.1));
                if let Some(b) = band {
                    ys.extend(b.iter().flat_map(|&(l, u)| [l, u]));
                }
            }
            Mark::Points {
                points,
                x_err,
                y_err,
            } => {
                for (k, p) in points.iter().enumerate() {
                    let e = x_err.get(k).copied().unwrap_or(0.0);
                    xs.extend([p.0 - e, p.0 + e]);
                    ys.push(p.1);
                }
                ys.extend(y_err.iter().flat_map(|&(l, u)| [l, u]));
            }
            Mark::Bars { bars, width, err } => {
                xs.extend(bars.iter().flat_map(|b| [b.0 - width, b.0 + width]));
                ys.extend(bars.iter().flat_map(|b| [0.0, b.1]));
                ys.extend(err.iter().flat_map(|&(l, u)| [l, u]));
            }
        }
    }
    if let Some(r) = chart.reference_y {
        ys.push(r);
    }
    if let Some(t) = &chart.x_ticks {
        // Categories get half a slot of room on either side.
        xs.extend(t.iter().flat_map(|t| [t.0 - 0.5, t.0 + 0.5]));
    }
    let span = |v: &[f64]| {
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        let lo = finite.iter().copied().fold(f64::MAX, f64::min);
        let hi = finite.iter().copied().fold(f64::MIN, f64::max);
        if finite.is_empty() {
            (0.0, 1.0)
        } else if hi - lo < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        }
    };
    (span(&xs), span(&ys))
}

/// Renders `chart` to a PNG at `path` (written atomically).
pub fn render(chart: &Chart, path: &Path) -> Result<()> {
    let font = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT)
        .map_err(|e| Error::Config(format!("the bundled font does not load: {e}")))?;
    let mut c = Canvas {
        img: RgbaImage::from_pixel(WIDTH, HEIGHT, Rgba([255, 255, 255, 255])),
        font,
    };
    let (xr, yr) = data_range(chart);
    let f = Frame { x: xr, y: yr };
    let (left, top) = (LEFT, TOP);
    let (right, bottom) = (WIDTH as f64 - RIGHT, HEIGHT as f64 - BOTTOM);
    let grey = [200, 200, 200];
    let ink = [30, 30, 30];

    // Grid and ticks.
    let yt = ticks(yr.0, yr.1);
    let ystep = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
    for &v in &yt {
        let (_, py) = f.px(xr.0, v);
        c.polyline(&[(left, py), (right, py)], 1.0, grey);
        let label = tick_label(v, ystep);
        let w = c.text_width(&label, 15.0);
        c.text(&label, left - w - 8.0, py + 5.0, 15.0, ink);
    }
    let xticks: Vec<(f64, String)> = match &chart.x_ticks {
        Some(t) => t.clone(),
        None => {
            let xt = ticks(xr.0, xr.1);
            let step = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
            xt.iter().map(|&v| (v, tick_label(v, step))).collect()
        }
    };
    for (v, label) in &xticks {
        let (px, _) = f.px(*v, yr.0);
        c.polyline(&[(px, bottom), (px, bottom + 5.0)], 1.0, ink);
        c.text_centred(label, px, bottom + 22.0, 15.0, ink);
    }
    if let Some(r) = chart.reference_y {
        let (_, py) = f.px(xr.0, r);
        c.polyline(&[(left, py), (right, py)], 1.5, [120, 120, 120]);
    }

    // Series: bands and bars first, lines and points over them.
    for s in &chart.series {
        match &s.mark {
            Mark::Line {
                points,
                band: Some(band),
            } => {
                for (w, b) in points.windows(2).zip(band.windows(2)) {
                    let (xa, _) = f.px(w[0].0, 0.0);
                    let (xb, _) = f.px(w[1].0, 0.0);
                    for px in xa.round() as i64..xb.round() as i64 {
                        let t = (px as f64 - xa) / (xb - xa).max(1e-9);
                        let lo = b[0].0 + t * (b[1].0 - b[0].0);
                        let hi = b[0].1 + t * (b[1].1 - b[0].1);
                        let (_, ylo) = f.px(0.0, lo);
                        let (_, yhi) = f.px(0.0, hi);
                        c.rect((px as f64, yhi), (px as f64 + 1.0, ylo), s.colour, 0.18);
                    }
                }
            }
            Mark::Bars { bars, width, .. } => {
                for &(x, h) in bars {
                    let a = f.px(x - width / 2.0, 0.0);
                    let b = f.px(x + width / 2.0, h);
                    c.rect(a, b, s.colour, 0.85);
                }
            }
            _ => {}
        }
    }
    for s in &chart.series {
        match &s.mark {
            Mark::Line { points, .. } => {
                let px: Vec<(f64, f64)> = points.iter().map(|&(x, y)| f.px(x, y)).collect();
                c.polyline(&px, 2.5, s.colour);
                for p in &px {
                    c.polyline(&[*p], 6.0, s.colour);
                }
            }
            Mark::Points {
                points,
                x_err,
                y_err,
            } => {
                for (k, &(x, y)) in points.iter().enumerate() {
                    if let Some(&(lo, hi)) = y_err.get(k) {
                        c.polyline(&[f.px(x, lo), f.px(x, hi)], 2.0, s.colour);
                    }
                    if let Some(&e) = x_err.get(k) {
                        c.polyline(&[f.px(x - e, y), f.px(x + e, y)], 2.0, s.colour);
                    }
                    c.polyline(&[f.px(x, y)], 10.0, s.colour);
                }
            }
            Mark::Bars { bars, err, .. } => {
                for (&(x, _), &(lo, hi)) in bars.iter().zip(err) {
                    c.polyline(&[f.px(x, lo), f.px(x, hi)], 2.0, ink);
                }
            }
        }
    }

    // Frame, labels, title, legend.
    c.polyline(
        &[
            (left, top),
            (right, top),
            (right, bottom),
            (left, bottom),
            (left, top),
        ],
        1.5,
        ink,
    );
    c.text_centred(
        &chart.x_label,
        (left + right) / 2.0,
        HEIGHT as f64 - 18.0,
        17.0,
        ink,
    );
    c.text_vertical(&chart.y_label, 22.0, (top + bottom) / 2.0, 17.0);
    c.text_centred(&chart.title, WIDTH as f64 / 2.0, 30.0, 20.0, ink);
    for (k, s) in chart.series.iter().enumerate() {
        let y = top + 14.0 + 26.0 * k as f64;
        c.rect(
            (right + 16.0, y - 10.0),
            (right + 36.0, y + 4.0),
            s.colour,
            1.0,
        );
        c.text(&s.label, right + 44.0, y + 3.0, 15.0, ink);
    }

    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(c.img)
        .to_rgb8()
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::file(path.display(), format!("cannot encode PNG: {e}")))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 0.1), vec![0.0, 0.02, 0.04, 0.06, 0.08, 0.1]);
        let t = ticks(0.13, 0.87);
        assert_eq!(t.first(), Some(&0.2));
        assert!(t.len() >= 3 && t.len() <= 7, "{t:?}");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(40.0, 20.0), "40");
    }

    #[test]
    fn a_chart_draws_its_series_where_the_data_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let chart = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                label: "line".into(),
                colour: [255, 0, 0],
                mark: Mark::Line {
                    points: vec![(0.0, 0.0), (1.0, 1.0)],
                    band: Some(vec![(-0.1, 0.1), (0.9, 1.1)]),
                },
            }],
            ..Chart::default()
        };
        render(&chart, &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        // The middle of the diagonal is red; the opposite corner of the plot area is not.
        let f = Frame {
            x: data_range(&chart).0,
            y: data_range(&chart).1,
        };
        let (mx, my) = f.px(0.5, 0.5);
        let p = img.get_pixel(mx as u32, my as u32).0;
        assert!(p[0] > 200 && p[1] < 80, "{p:?}");
        let (qx, qy) = f.px(0.9, 0.1);
        assert_eq!(img.get_pixel(qx as u32, qy as u32).0, [255, 255, 255]);
    }
}
