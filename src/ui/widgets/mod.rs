//! Reusable widgets: colour maps, heatmaps, the colour bar, stimulus images, path fields.

pub mod colour_bar;
pub mod colour_map;
pub mod comparisons;
pub mod heatmap;
pub mod path_field;
pub mod stimulus;
