//! The Similarity tab: oracle matrices side by side in one ordering and colour
//! scale, hover and pinned read-out, the pixel baseline (the images' pixel similarity in the same
//! order, a scatter and the agreement), the variability of Fig. 1C and the most and least
//! similar image pairs (Fig. 2).

use std::sync::Arc;

use eframe::egui::{self, TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, Legend, Plot};

use super::export;
use super::shared::Shared;
use super::view::{Cx, View};
use super::widgets::colour_bar::colour_bar;
use super::widgets::colour_map::{matrix_image, shared_range};
use super::widgets::heatmap::heatmap;
use crate::similarity::analysis::OracleAnalysis;
use crate::similarity::variability::Histogram;
use crate::similarity::SimilarityMatrix;

/// View state of the Similarity tab.
#[derive(Default)]
pub struct SimilarityView {
    /// The analysis the textures were made for (by address).
    made_for: usize,
    /// One texture per scan, then the mean's, in display order.
    textures: Vec<TextureHandle>,
    /// Colour range: -vmax..vmax.
    vmax: f32,
    /// The pinned cell (row, column) in display order.
    pub pinned: Option<(usize, usize)>,
    /// The cell under the pointer in the last frame, in display order.
    pub hovered: Option<(usize, usize)>,
    /// The target's texture and colour range, with the target it was made for (by address).
    target_texture: Option<(usize, TextureHandle)>,
    /// The pixel similarity's texture and colour range (its own scale), for `made_for`.
    pixel_texture: Option<(TextureHandle, f32)>,
}

/// The matrices shown, labelled: each scan's, then the mean.
fn labelled(analysis: &OracleAnalysis) -> Vec<(String, &SimilarityMatrix)> {
    let mut out: Vec<(String, &SimilarityMatrix)> = analysis
        .oracles
        .iter()
        .map(|o| (o.scan.clone(), &o.matrix))
        .collect();
    out.push(("Mean".to_string(), &analysis.mean));
    out
}

/// Draws the Similarity tab.
fn show(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui) {
    let Some(analysis) = cx.shared.analysis.clone() else {
        match &cx.shared.analysis_error {
            Some(e) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("No oracle similarity: {e}"),
                );
            }
            None if cx.shared.is_busy() => {
                ui.label("Computing the oracle similarity…");
            }
            None => {
                ui.label("Load scans with repeated images in the Scans tab.");
            }
        }
        return;
    };
    let key = Arc::as_ptr(&analysis) as usize;
    if cx.view.made_for != key {
        let matrices = labelled(&analysis);
        let vmax = shared_range(matrices.iter().map(|m| m.1));
        cx.view.textures = matrices
            .iter()
            .map(|(name, m)| {
                ui.ctx().load_texture(
                    format!("matrix-{name}"),
                    matrix_image(&m.reordered(&analysis.order), vmax),
                    TextureOptions::NEAREST,
                )
            })
            .collect();
        cx.view.vmax = vmax;
        let pixel_vmax = shared_range([&analysis.pixels]);
        cx.view.pixel_texture = Some((
            ui.ctx().load_texture(
                "matrix-pixels",
                matrix_image(&analysis.pixels.reordered(&analysis.order), pixel_vmax),
                TextureOptions::NEAREST,
            ),
            pixel_vmax,
        ));
        cx.view.made_for = key;
    }
    egui::ScrollArea::vertical().id_salt("similarity").show(ui, |ui| {
        ui.label(format!(
            "Oracle similarity Sbar (Eq. 3) over the {} oracle images common to all {} scans, rows and columns in one spectral order; \
             each trial of these images is a stimulus of Eq. 2 and xbar is their mean within each scan. Diagonal: repeats of the same image (t != t').",
            analysis.image_ids.len(),
            analysis.oracles.len()
        ));
        for (scan, n) in analysis.dropped.iter().filter(|d| d.1 > 0) {
            ui.weak(format!("{scan}: {n} of its oracle images are not repeated in every scan and are left out."));
        }
        matrices_row(cx, ui, &analysis);
        ui.separator();
        pixel_baseline(cx, ui, &analysis);
        ui.separator();
        if cx.shared.target.is_some() {
            target(cx, ui);
            ui.separator();
        }
        ui.columns(2, |cols| {
            variability(cx, &mut cols[0], &analysis);
            extreme_pairs(cx, &mut cols[1], &analysis);
        });
    });
}

fn matrices_row(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui, analysis: &OracleAnalysis) {
    let matrices = labelled(analysis);
    let n = analysis.image_ids.len();
    let count = matrices.len() as f32;
    let size = ((ui.available_width() - 420.0) / count - 12.0).clamp(120.0, 300.0);
    let mut hovered = None;
    let mut clicked = None;
    ui.horizontal_top(|ui| {
        for (k, (name, m)) in matrices.iter().enumerate() {
            ui.vertical(|ui| {
                ui.strong(name);
                let r = heatmap(
                    ui,
                    &cx.view.textures[k],
                    n,
                    size,
                    cx.view.pinned,
                    cx.view.hovered,
                );
                hovered = hovered.or(r.hovered);
                clicked = clicked.or(r.clicked);
                ui.horizontal(|ui| {
                    if ui
                        .small_button("PNG")
                        .on_hover_text("Save this matrix as PNG (display order)")
                        .clicked()
                    {
                        export::matrix_png(
                            cx.shared,
                            &format!("{name}_oracle_similarity"),
                            &m.reordered(&analysis.order),
                            cx.view.vmax,
                        );
                    }
                    if ui
                        .small_button(".npy")
                        .on_hover_text("Save this matrix as .npy (ascending image ids)")
                        .clicked()
                    {
                        export::matrix_npy(cx.shared, &format!("{name}_oracle_similarity"), m);
                    }
                });
            });
        }
        colour_bar(ui, cx.view.vmax, size);
        ui.vertical(|ui| readout(cx, ui, analysis, hovered));
    });
    if let Some(c) = clicked {
        cx.view.pinned = if cx.view.pinned == Some(c) {
            None
        } else {
            Some(c)
        };
    }
    cx.view.hovered = hovered;
}

/// The pixel baseline: the images' own pixel similarity in the same order (its own colour
/// scale), the mean oracle similarity against it pair by pair, and their agreement raw and
/// low-passed.
fn pixel_baseline(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui, analysis: &OracleAnalysis) {
    let Some((texture, vmax)) = cx.view.pixel_texture.clone() else {
        return;
    };
    let n = analysis.image_ids.len();
    ui.strong("Pixel baseline: how much of the neural similarity the images' pixels already carry");
    ui.weak(
        "Pixel similarity: each image flattened, the per-pixel mean over these images \
         subtracted, cosine (Eq. 2 with pixels as neurons). Blurred: the Blur control's \
         Gaussian (circular) before.",
    );
    let size = 220.0;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Pixels");
            let r = heatmap(ui, &texture, n, size, cx.view.pinned, cx.view.hovered);
            if let Some(c) = r.hovered {
                cx.view.hovered = Some(c);
            }
            if ui
                .small_button(".npy")
                .on_hover_text("Save the pixel similarity as .npy (ascending image ids)")
                .clicked()
            {
                export::matrix_npy(cx.shared, "pixel_similarity", &analysis.pixels);
            }
        });
        colour_bar(ui, vmax, size);
        let points: Vec<[f64; 2]> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .map(|(a, b)| {
                [
                    analysis.pixels.get(a, b) as f64,
                    analysis.mean.get(a, b) as f64,
                ]
            })
            .collect();
        ui.vertical(|ui| {
            Plot::new("pixel_scatter")
                .width(size * 1.3)
                .height(size)
                .x_axis_label("pixel similarity")
                .y_axis_label("mean oracle similarity")
                .allow_scroll(false)
                .show(ui, |p| {
                    p.points(
                        egui_plot::Points::new("image pairs", points)
                            .radius(2.0)
                            .color(egui::Color32::from_rgb(90, 160, 220)),
                    );
                });
        });
        ui.vertical(|ui| {
            let b = &analysis.pixel_baseline;
            ui.label(format!(
                "Mean oracle similarity against the pixel similarity, {} images \
                 (95% bootstrap intervals over images):",
                b.measured
            ));
            egui::Grid::new("pixel_baseline")
                .striped(true)
                .show(ui, |ui| {
                    ui.strong("pixels");
                    ui.strong("Pearson r");
                    ui.strong("Spearman rho");
                    ui.end_row();
                    for a in &b.agreements {
                        ui.label(if a.blur == 0.0 {
                            "raw".to_string()
                        } else {
                            format!("blurred {} px", a.blur)
                        });
                        for i in [a.pearson, a.spearman] {
                            ui.monospace(format!(
                                "{:+.3} [{:+.3}, {:+.3}]",
                                i.value, i.low, i.high
                            ));
                        }
                        ui.end_row();
                    }
                });
            ui.weak(
                "Real mouse V1 (model-predicted, Li et al.'s images) is reported at about r = 0.83 \
                 against the raw pixels (Attias et al. 2024).",
            );
        });
    });
}

/// The regularisation target built in the Predictor tab, in its own spectral order.
fn target(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui) {
    let Some(shown) = cx.shared.target.clone() else {
        return;
    };
    let key = Arc::as_ptr(&shown) as usize;
    if cx.view.target_texture.as_ref().map(|t| t.0) != Some(key) {
        let texture =
            ui.ctx()
                .load_texture("target", shown.picture.clone(), TextureOptions::NEAREST);
        cx.view.target_texture = Some((key, texture));
    }
    let Some((_, texture)) = cx.view.target_texture.clone() else {
        return;
    };
    let (built, vmax) = (&shown.built, shown.vmax);
    let m = &built.target.matrix;
    let meta = &built.target.meta;
    ui.strong(format!(
        "Regularisation target: {} ({} images: {}), from {}",
        meta.kind,
        m.n,
        meta.image_source,
        meta.scans.join(", ")
    ));
    ui.horizontal_top(|ui| {
        let r = heatmap(ui, &texture, m.n, 300.0, None, None);
        colour_bar(ui, vmax, 300.0);
        ui.vertical(|ui| {
            ui.label(format!("Saved as {}", built.path.display()));
            if let Some((row, col)) = r.hovered {
                let (a, b) = (built.order[row], built.order[col]);
                let (id_a, id_b) = (meta.image_ids[a], meta.image_ids[b]);
                ui.label(format!(
                    "image {id_a} × image {id_b}: S = {:+.4}",
                    m.get(a, b)
                ));
                ui.horizontal(|ui| {
                    for id in [id_a, id_b] {
                        stimulus(cx, ui, id, 180.0);
                    }
                });
            } else {
                ui.weak("Hover over a cell to see its two images.");
            }
        });
    });
}

/// The two images of a cell and every matrix's value there.
fn readout(
    cx: &mut Cx<SimilarityView>,
    ui: &mut egui::Ui,
    analysis: &OracleAnalysis,
    hovered: Option<(usize, usize)>,
) {
    let Some((row, col)) = hovered.or(cx.view.pinned) else {
        ui.weak("Hover over a cell to see its two images; click to pin the pair.");
        return;
    };
    let (a, b) = (analysis.order[row], analysis.order[col]);
    let (id_a, id_b) = (analysis.image_ids[a], analysis.image_ids[b]);
    ui.strong(if hovered.is_some() {
        "Under the pointer"
    } else {
        "Pinned"
    });
    ui.label(format!("image {id_a} × image {id_b}"));
    ui.horizontal(|ui| {
        for id in [id_a, id_b] {
            stimulus(cx, ui, id, 180.0);
        }
    });
    egui::Grid::new("readout").show(ui, |ui| {
        for (name, m) in labelled(analysis) {
            ui.label(name);
            ui.monospace(format!("S = {:+.4}", m.get(a, b)));
            ui.end_row();
        }
        ui.label("Pixels");
        ui.monospace(format!("S = {:+.4}", analysis.pixels.get(a, b)));
        ui.end_row();
    });
}

fn stimulus(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui, id: i64, width: f32) {
    let Some(scan) = cx
        .shared
        .scans
        .iter()
        .map(|s| s.scan.clone())
        .find(|s| s.image(id).is_some())
    else {
        ui.label(format!("image {id} not loaded"));
        return;
    };
    let (h, w) = scan.image_shape;
    let texture = cx
        .shared
        .stimuli
        .get(ui.ctx(), id, scan.image(id).unwrap_or_default(), (h, w));
    ui.add(
        egui::Image::new(&texture)
            .fit_to_exact_size(egui::vec2(width, width * h as f32 / w.max(1) as f32)),
    )
    .on_hover_text(format!("image {id}"));
}

fn variability(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui, analysis: &OracleAnalysis) {
    let v = &analysis.variability;
    ui.strong("Variability across scans and across repeats (Fig. 1C, Eq. 4, 5)");
    let density = |h: &Histogram, total: usize| -> Vec<Bar> {
        let width = h.edges[1] - h.edges[0];
        h.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                Bar::new(
                    h.edges[i] + width / 2.0,
                    c as f64 / (total.max(1) as f64 * width),
                )
                .width(width)
            })
            .collect()
    };
    let scan_name = format!(
        "δ_scan (σ = {:.4}, n = {})",
        v.delta_scan.std, v.delta_scan.count
    );
    let repeat_name = format!(
        "δ_repeat (σ = {:.4}, n = {})",
        v.delta_repeat.std, v.delta_repeat.count
    );
    // The figure's rect includes the axes, which lie outside the plot's own response.
    let response = ui.scope(|ui| {
        Plot::new("variability")
            .height(280.0)
            .legend(Legend::default())
            .x_axis_label("deviation from the mean similarity")
            .y_axis_label("density")
            .allow_scroll(false)
            .show(ui, |p| {
                p.bar_chart(
                    BarChart::new(
                        repeat_name.clone(),
                        density(&v.delta_repeat_histogram, v.delta_repeat.count),
                    )
                    .color(egui::Color32::from_rgb(120, 120, 200)),
                );
                if v.delta_scan.count > 0 {
                    p.bar_chart(
                        BarChart::new(
                            scan_name.clone(),
                            density(&v.delta_scan_histogram, v.delta_scan.count),
                        )
                        .color(egui::Color32::from_rgb(220, 120, 40)),
                    );
                }
            })
    });
    if v.delta_scan.count == 0 {
        ui.weak("δ_scan needs two or more scans.");
    }
    let rect = response.response.rect;
    ui.horizontal(|ui| {
        if ui.button("Save PNG").clicked() {
            export::figure_png(cx.shared, ui.ctx(), "variability", rect);
        }
        if ui.button("Save CSV").clicked() {
            let text = format!(
                "{}\n{}",
                v.delta_scan_histogram.to_csv("delta_scan"),
                v.delta_repeat_histogram.to_csv("delta_repeat")
            );
            export::csv(cx.shared, "variability", &text);
        }
    });
}

fn extreme_pairs(cx: &mut Cx<SimilarityView>, ui: &mut egui::Ui, analysis: &OracleAnalysis) {
    let (most, least) = analysis.mean.extreme_pairs(4);
    for (title, pairs) in [
        ("Most similar pairs (mean Sbar)", most),
        ("Least similar pairs (mean Sbar)", least),
    ] {
        ui.strong(title);
        for (a, b, value) in pairs {
            ui.horizontal(|ui| {
                stimulus(cx, ui, analysis.image_ids[a], 96.0);
                stimulus(cx, ui, analysis.image_ids[b], 96.0);
                ui.monospace(format!("{:+.4}", value));
            });
        }
    }
}

impl View for SimilarityView {
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        show(&mut Cx { view: self, shared }, ui)
    }
}
