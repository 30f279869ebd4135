//! The Predictor tab's plots: training curves, per-neuron correlations, readout positions over
//! a stimulus and Fig. 1D.

use eframe::egui::{self, Color32, Rect, Sense};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points, VLine};

use super::Fitted;
use crate::runs::predictor::EpochMetrics;
use crate::similarity::denoising::Denoising;
use crate::similarity::variability::Histogram;
use crate::ui::widgets::stimulus::StimulusTextures;

/// Training loss and validation correlation per epoch.
pub fn training_curves(ui: &mut egui::Ui, metrics: &[EpochMetrics]) {
    ui.strong("Training");
    if metrics.is_empty() {
        ui.weak("Fit a predictor to see its training loss and validation correlation per epoch.");
        return;
    }
    let curve = |f: fn(&EpochMetrics) -> f64| -> PlotPoints {
        metrics.iter().map(|m| [m.epoch as f64, f(m)]).collect()
    };
    ui.columns(2, |cols| {
        Plot::new("train loss")
            .height(200.0)
            .x_axis_label("epoch")
            .legend(Legend::default())
            .show(&mut cols[0], |p| {
                p.line(Line::new("training loss", curve(|m| m.train_loss)))
            });
        Plot::new("validation correlation")
            .height(200.0)
            .x_axis_label("epoch")
            .legend(Legend::default())
            .show(&mut cols[1], |p| {
                p.line(Line::new(
                    "validation correlation",
                    curve(|m| m.validation_correlation as f64),
                ))
            });
    });
}

/// The histogram of test correlations per neuron, with the mean ceiling.
pub fn correlations(ui: &mut egui::Ui, f: &Fitted) {
    let q = &f.quality;
    ui.strong(format!(
        "{}: test correlation per neuron (mean rho {:.3}; ceiling {:.3}; {} of {} flagged)",
        f.scan.name,
        q.mean_rho(),
        q.mean_ceiling(),
        q.flagged.len(),
        q.rho.len()
    ));
    let h = Histogram::new(&q.rho, -0.2, 1.0, 24);
    let width = h.edges[1] - h.edges[0];
    let bars: Vec<Bar> = h
        .counts
        .iter()
        .zip(&h.edges)
        .map(|(&c, &lo)| Bar::new(lo + width / 2.0, c as f64).width(width))
        .collect();
    Plot::new("rho histogram")
        .height(200.0)
        .x_axis_label("single-trial correlation rho")
        .y_axis_label("neurons")
        .legend(Legend::default())
        .show(ui, |p| {
            p.bar_chart(BarChart::new("neurons", bars));
            p.vline(VLine::new("mean oracle ceiling", q.mean_ceiling() as f64).color(Color32::RED));
        });
}

/// The Gaussian readout's positions over the first stimulus.
pub fn positions(ui: &mut egui::Ui, f: &Fitted, stimuli: &mut StimulusTextures) {
    let scan = f.scan.clone();
    ui.strong("Readout positions over a stimulus");
    let Some(pos) = &f.positions else {
        ui.weak("This predictor has a factorised readout: no positions.");
        return;
    };
    let Some((&id, pixels)) = scan.images.iter().next() else {
        return;
    };
    let (h, w) = scan.image_shape;
    let texture = stimuli.get(ui.ctx(), id, pixels, (h, w));
    let width = ui.available_width().min(520.0);
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(width, width * h as f32 / w as f32),
        Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        rect,
        Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    for p in pos {
        // [-1, 1] spans the first to the last pixel centre.
        let x = rect.left() + ((p[0] + 1.0) / 2.0 * (w - 1) as f32 + 0.5) / w as f32 * rect.width();
        let y = rect.top() + ((p[1] + 1.0) / 2.0 * (h - 1) as f32 + 0.5) / h as f32 * rect.height();
        painter.circle_filled(egui::pos2(x, y), 2.5, Color32::from_rgb(230, 60, 40));
    }
    ui.weak(format!(
        "{} neurons of {}, image {id}",
        pos.len(),
        scan.name
    ));
}

/// Fig. 1D: model and single-trial similarity against the oracle similarity.
pub fn fig_1d(ui: &mut egui::Ui, d: &Denoising) {
    ui.strong(format!("Fig. 1D: {} oracle images of {}", d.images, d.scan));
    let points = |s: &crate::similarity::denoising::Scatter| -> PlotPoints {
        s.x.iter()
            .zip(&s.y)
            .map(|(&x, &y)| [x as f64, y as f64])
            .collect()
    };
    Plot::new("fig 1d")
        .height(260.0)
        .x_axis_label("oracle similarity")
        .y_axis_label("similarity")
        .legend(Legend::default())
        .show(ui, |p| {
            p.points(
                Points::new(
                    format!("model, r = {:.2}", d.model_vs_oracle.r),
                    points(&d.model_vs_oracle),
                )
                .radius(2.0),
            );
            p.points(
                Points::new(
                    format!("single trial, r = {:.2}", d.single_vs_oracle.r),
                    points(&d.single_vs_oracle),
                )
                .radius(2.0),
            );
        });
    if let (Some(m), Some(s)) = (&d.model_vs_truth, &d.single_vs_truth) {
        ui.label(format!(
            "Against the noise-free similarity (synthetic scan): model r = {:.3}, single trial r = {:.3}",
            m.r, s.r
        ));
    }
}
