//! The Scans tab: open scans, list them, their SNR weights and their stimuli.

use eframe::egui;
use egui_plot::{Bar, BarChart, Plot};

use super::shared::Shared;
use super::view::{Cx, View};
use crate::data::Tier;
use crate::similarity::variability::Histogram;

/// Stimuli shown per gallery page.
const GALLERY_PAGE: usize = 60;

/// View state of the Scans tab.
#[derive(Default)]
pub struct ScansView {
    /// The typed path.
    pub path: String,
    /// The scan whose details are shown.
    pub selected: usize,
    /// First stimulus shown in the gallery.
    pub gallery_start: usize,
}

/// Draws the Scans tab.
fn show(cx: &mut Cx<ScansView>, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        let label = ui.label("Scan folder, zip or NWB file:");
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut cx.view.path)
                    .desired_width(420.0)
                    .hint_text("path/to/scan.zip"),
            )
            .labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Load").clicked() || enter) && !cx.view.path.trim().is_empty() {
            let path = std::mem::take(&mut cx.view.path);
            cx.shared.open(path.trim().into());
        }
        if ui.button("Browse file…").clicked() {
            if let Some(p) = rfd::FileDialog::new()
                .add_filter("scan", &["zip", "nwb"])
                .pick_file()
            {
                cx.shared.open(p);
            }
        }
        if ui.button("Browse folder…").clicked() {
            if let Some(p) = rfd::FileDialog::new().pick_folder() {
                cx.shared.open(p);
            }
        }
        ui.weak("or drop folders, zips and NWB files on the window");
    });
    ui.separator();
    if cx.shared.scans.is_empty() {
        ui.label(if cx.shared.is_busy() {
            "Loading…"
        } else {
            "No scans loaded."
        });
        return;
    }
    let mut remove = None;
    egui::Grid::new("scan list").striped(true).show(ui, |ui| {
        for h in [
            "",
            "scan",
            "trials",
            "neurons",
            "oracle images",
            "image size",
            "tiers (train/val/test/final)",
            "SNR weights",
            "",
        ] {
            ui.strong(h);
        }
        ui.end_row();
        for (k, loaded) in cx.shared.scans.iter().enumerate() {
            let s = &loaded.scan;
            ui.radio_value(&mut cx.view.selected, k, "")
                .widget_info(|| {
                    egui::WidgetInfo::selected(
                        egui::Role::RadioButton,
                        true,
                        cx.view.selected == k,
                        format!("show {}", s.name),
                    )
                });
            ui.label(&s.name)
                .on_hover_text(s.source.display().to_string());
            ui.label(s.n_trials().to_string());
            ui.label(s.n_neurons().to_string());
            let oracle = s.oracle_trials();
            let reps: Vec<usize> = oracle.values().map(Vec::len).collect();
            ui.label(format!(
                "{} x {}",
                oracle.len(),
                reps.iter().max().copied().unwrap_or(0)
            ));
            ui.label(format!("{} x {}", s.image_shape.0, s.image_shape.1));
            let c = s.tier_counts();
            ui.label(format!("{}/{}/{}/{}", c[0], c[1], c[2], c[3]));
            match &loaded.snr {
                Ok(w) if w.zeroed.is_empty() => ui.label("ok"),
                Ok(w) => ui.label(format!("{} neurons with weight 0", w.zeroed.len())),
                Err(e) => ui
                    .colored_label(ui.visuals().warn_fg_color, "none")
                    .on_hover_text(e),
            };
            if ui.button(format!("Remove {}", s.name)).clicked() {
                remove = Some(k);
            }
            ui.end_row();
        }
    });
    if let Some(k) = remove {
        cx.shared.remove_scan(k);
        cx.view.selected = 0;
        return;
    }
    for loaded in &cx.shared.scans {
        for notice in &loaded.scan.notices {
            ui.weak(format!("{}: {notice}", loaded.scan.name));
        }
    }
    let Some(loaded) = cx
        .shared
        .scans
        .get(cx.view.selected.min(cx.shared.scans.len() - 1))
    else {
        return;
    };
    let scan = loaded.scan.clone();
    let weights = loaded.snr.clone();
    ui.separator();
    ui.columns(2, |cols| {
        let ui = &mut cols[0];
        ui.strong(format!(
            "Signal-to-noise weights of {} (Eq. 1, over its oracle images)",
            scan.name
        ));
        match &weights {
            Ok(w) => {
                let hi = w.weights.iter().fold(0.0f32, |a, &b| a.max(b)) as f64;
                let h = Histogram::new(&w.weights, 0.0, hi.max(1e-6), 30);
                let width = h.edges[1] - h.edges[0];
                let bars = h
                    .counts
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| Bar::new(h.edges[i] + width / 2.0, c as f64).width(width))
                    .collect();
                // The figure's rect includes the axes, which lie outside the plot's own response.
                let response = ui.scope(|ui| {
                    Plot::new("snr histogram")
                        .height(260.0)
                        .x_axis_label("w = signal / noise")
                        .y_axis_label("neurons")
                        .allow_scroll(false)
                        .show(ui, |p| p.bar_chart(BarChart::new("SNR weights", bars)))
                });
                let rect = response.response.rect;
                ui.horizontal(|ui| {
                    if ui.button("Save PNG").clicked() {
                        super::export::figure_png(
                            cx.shared,
                            ui.ctx(),
                            &format!("{}_snr_histogram", scan.name),
                            rect,
                        );
                    }
                    if ui.button("Save CSV").clicked() {
                        super::export::csv(
                            cx.shared,
                            &format!("{}_snr_histogram", scan.name),
                            &h.to_csv("snr_weight"),
                        );
                    }
                });
            }
            Err(e) => {
                ui.colored_label(ui.visuals().warn_fg_color, e);
            }
        }
        let ui = &mut cols[1];
        gallery(cx, ui, &scan);
    });
}

fn gallery(cx: &mut Cx<ScansView>, ui: &mut egui::Ui, scan: &crate::data::Scan) {
    let oracle = scan.oracle_trials();
    // Oracle images first, then the rest, each in ascending id.
    let mut ids: Vec<i64> = oracle.keys().copied().collect();
    ids.extend(scan.images.keys().filter(|id| !oracle.contains_key(id)));
    let start = cx.view.gallery_start.min(ids.len().saturating_sub(1));
    ui.horizontal(|ui| {
        ui.strong(format!(
            "Stimuli of {} ({} images, oracle images framed in orange)",
            scan.name,
            ids.len()
        ));
        if ui
            .add_enabled(start > 0, egui::Button::new("Previous"))
            .clicked()
        {
            cx.view.gallery_start = start.saturating_sub(GALLERY_PAGE);
        }
        if ui
            .add_enabled(start + GALLERY_PAGE < ids.len(), egui::Button::new("Next"))
            .clicked()
        {
            cx.view.gallery_start = start + GALLERY_PAGE;
        }
    });
    let (h, w) = scan.image_shape;
    let size = egui::vec2(96.0, 96.0 * h as f32 / w.max(1) as f32);
    egui::ScrollArea::vertical()
        .id_salt("gallery")
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                for &id in ids.iter().skip(start).take(GALLERY_PAGE) {
                    let Some(pixels) = scan.image(id) else {
                        continue;
                    };
                    let texture = cx.shared.stimuli.get(ui.ctx(), id, pixels, (h, w));
                    let response = ui.add(egui::Image::new(&texture).fit_to_exact_size(size));
                    let tiers: Vec<&str> = scan
                        .image_ids
                        .iter()
                        .zip(&scan.tiers)
                        .filter(|(i, _)| **i == id)
                        .map(|(_, t): (_, &Tier)| t.name())
                        .collect();
                    let repeats = oracle.get(&id).map_or(1, Vec::len);
                    if repeats > 1 {
                        ui.painter().rect_stroke(
                            response.rect.expand(1.5),
                            0.0,
                            egui::Stroke::new(2.5, egui::Color32::from_rgb(255, 140, 0)),
                            egui::StrokeKind::Outside,
                        );
                    }
                    let shown = match repeats {
                        1 => "once".to_string(),
                        r => format!("{r} times"),
                    };
                    response.on_hover_text(format!(
                        "image {id}: shown {shown} ({})",
                        tiers.first().copied().unwrap_or("")
                    ));
                }
            });
        });
}

impl View for ScansView {
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        show(&mut Cx { view: self, shared }, ui)
    }
}
