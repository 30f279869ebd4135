//! Reusable widgets: colour maps, heatmaps, the colour bar, stimulus images.

pub mod colour_bar;
pub mod colour_map;
pub mod heatmap;
pub mod stimulus;
