//! A vertical colour bar for the diverging map, labelled at its ends and middle.

use eframe::egui::{self, pos2, vec2, Align2, FontId, Rect, Sense, Stroke, StrokeKind};

use super::colour_map::diverging;

/// Draws the colour bar for the range `-vmax..vmax`, `height` points tall.
pub fn colour_bar(ui: &mut egui::Ui, vmax: f32, height: f32) {
    // Room above and below the bar for the end labels.
    let pad = 8.0;
    let (rect, _) = ui.allocate_exact_size(vec2(70.0, height + 2.0 * pad), Sense::hover());
    let bar = Rect::from_min_size(rect.min + vec2(0.0, pad), vec2(16.0, height));
    let painter = ui.painter_at(rect);
    let steps = 64;
    for k in 0..steps {
        let t = 1.0 - 2.0 * (k as f32 + 0.5) / steps as f32;
        let y0 = bar.top() + height * k as f32 / steps as f32;
        let cell = Rect::from_min_max(
            pos2(bar.left(), y0),
            pos2(bar.right(), y0 + height / steps as f32 + 0.5),
        );
        painter.rect_filled(cell, 0.0, diverging(t * vmax, vmax));
    }
    let text = ui.visuals().text_color();
    painter.rect_stroke(bar, 0.0, Stroke::new(1.0, text), StrokeKind::Inside);
    for (y, v) in [
        (bar.top(), vmax),
        (bar.center().y, 0.0),
        (bar.bottom(), -vmax),
    ] {
        painter.text(
            pos2(bar.right() + 4.0, y),
            Align2::LEFT_CENTER,
            format!("{v:+.3}"),
            FontId::proportional(11.0),
            text,
        );
    }
}
