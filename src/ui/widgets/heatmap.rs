//! A matrix drawn as one texture (never one shape per cell), with hover and click read-out.

use eframe::egui::{self, pos2, Color32, Rect, Sense, Stroke, StrokeKind, TextureHandle};

/// What the pointer did over a heatmap this frame: the cell (row, column) in display order.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct HeatmapResponse {
    /// The cell under the pointer.
    pub hovered: Option<(usize, usize)>,
    /// The cell clicked.
    pub clicked: Option<(usize, usize)>,
}

/// Shows `texture` (an n x n matrix image) in a `size`-point square; outlines the
/// `pinned` cell in black and the `linked` cell (hovered in another matrix) in gray.
pub fn heatmap(
    ui: &mut egui::Ui,
    texture: &TextureHandle,
    n: usize,
    size: f32,
    pinned: Option<(usize, usize)>,
    linked: Option<(usize, usize)>,
) -> HeatmapResponse {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(size, size), Sense::click());
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        rect,
        Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    let cell_of = |p: egui::Pos2| {
        let col = ((p.x - rect.left()) / size * n as f32).floor();
        let row = ((p.y - rect.top()) / size * n as f32).floor();
        (row >= 0.0 && col >= 0.0 && (row as usize) < n && (col as usize) < n)
            .then_some((row as usize, col as usize))
    };
    let hovered = response.hover_pos().and_then(cell_of);
    let clicked = if response.clicked() {
        response.interact_pointer_pos().and_then(cell_of)
    } else {
        None
    };
    let cell = size / n.max(1) as f32;
    for ((r, c), colour) in [
        (pinned, Color32::BLACK),
        (hovered.or(linked), Color32::from_gray(90)),
    ]
    .into_iter()
    .filter_map(|(m, col)| m.map(|m| (m, col)))
    {
        let min = pos2(rect.left() + c as f32 * cell, rect.top() + r as f32 * cell);
        painter.rect_stroke(
            Rect::from_min_size(min, egui::vec2(cell, cell)).expand(1.0),
            0.0,
            Stroke::new(1.5, colour),
            StrokeKind::Outside,
        );
    }
    HeatmapResponse { hovered, clicked }
}
