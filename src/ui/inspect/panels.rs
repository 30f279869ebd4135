//! The Inspect tab's panels: the measures over depth, the matrices side by side, the weights
//! and feature maps of a chosen layer.

use std::sync::Arc;

use candle_core::Tensor;
use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, Corner, HLine, Legend, Line, Plot, PlotPoints, Polygon};

use super::{Details, InspectView, DETAILS};
use crate::figures::palette;
use crate::inspect::layers::{LayerBn, LayerChoice, TappedNetwork};
use crate::inspect::neural::ReferenceChoice;
use crate::inspect::write::measure_title;
use crate::inspect::Inspection;
use crate::similarity::agreement::MEASURES;
use crate::ui::shared::Shared;
use crate::ui::widgets::colour_map::{matrix_image, shared_range};
use crate::ui::widgets::heatmap::heatmap;

impl InspectView {
    /// The chosen measure over depth per run with its band, the ceiling, the pixel baseline,
    /// and each run's final gamma at its taps.
    pub(super) fn curves(&self, ui: &mut egui::Ui, inspection: &Inspection) {
        let m = self.settings.measure.min(3);
        let (name, get) = MEASURES[m];
        ui.heading(format!(
            "{} against {} over depth",
            measure_title(name),
            inspection.request.reference.short()
        ));
        let n = &inspection.neural;
        let ceiling = n.ceiling.map(|c| get(&c.split_half));
        let ceiling_text = match (&inspection.request.reference, ceiling) {
            (ReferenceChoice::TargetOf { .. }, _) => "no noise ceiling for a target".into(),
            (_, Some(c)) => {
                format!("strongest line: noise ceiling (split-half of the repeats) {c:.3}")
            }
            (_, None) => "no noise ceiling (it needs 4+ repeats per image)".into(),
        };
        ui.label(format!(
            "{} on {} images ({}); {ceiling_text}; gray: pixels {:.3}. \
             Bands: 95% bootstrap intervals over images.",
            n.matrix_name,
            n.image_ids.len(),
            n.source,
            get(&inspection.pixels.estimate.value),
        ));
        let width = ui.available_width();
        // Legends at the top left, above the shallow layers' low values and gamma bars.
        // The theme's text colour, so the ceiling stands out on a dark or a light background.
        let strong = ui.visuals().strong_text_color();
        ui.horizontal(|ui| {
            Plot::new("inspect-depth")
                .legend(Legend::default().position(Corner::LeftTop))
                .width(width * 0.62)
                .height(260.0)
                .x_axis_label("conv layer (from the input)")
                .y_axis_label(measure_title(name))
                .show(ui, |plot| {
                    for (k, r) in inspection.networks.iter().enumerate() {
                        let [cr, cg, cb] = palette(k);
                        let colour = Color32::from_rgb(cr, cg, cb);
                        let t: Vec<(f64, (f64, f64, f64))> = r
                            .layers
                            .iter()
                            .map(|l| (l.layer.layer as f64, l.estimate.triples()[m]))
                            .collect();
                        let mut band: Vec<[f64; 2]> = t.iter().map(|(x, v)| [*x, v.1]).collect();
                        band.extend(t.iter().rev().map(|(x, v)| [*x, v.2]));
                        plot.polygon(
                            Polygon::new("", PlotPoints::from(band))
                                .fill_color(colour.gamma_multiply(0.15))
                                .stroke(egui::Stroke::NONE),
                        );
                        let line: Vec<[f64; 2]> = t.iter().map(|(x, v)| [*x, v.0]).collect();
                        plot.line(
                            Line::new(r.about.label.clone(), PlotPoints::from(line)).color(colour),
                        );
                    }
                    if let Some(c) = ceiling {
                        plot.hline(
                            HLine::new("ceiling (split-half)", c)
                                .color(strong)
                                .width(2.0),
                        );
                    }
                    plot.hline(
                        HLine::new("pixels", get(&inspection.pixels.estimate.value))
                            .color(Color32::GRAY),
                    );
                });
            Plot::new("inspect-gamma")
                .legend(Legend::default().position(Corner::LeftTop))
                .height(260.0)
                .x_axis_label("tap (conv layer)")
                .y_axis_label("final gamma")
                .show(ui, |plot| {
                    let runs = inspection.networks.len().max(1) as f64;
                    for (k, r) in inspection.networks.iter().enumerate() {
                        let Some(gamma) = &r.about.gamma else {
                            continue;
                        };
                        let [cr, cg, cb] = palette(k);
                        let bars = r
                            .about
                            .taps
                            .iter()
                            .zip(gamma)
                            .map(|(&t, &g)| {
                                let x = t as f64 + (k as f64 - (runs - 1.0) / 2.0) * 0.8 / runs;
                                Bar::new(x, g).width(0.8 / runs)
                            })
                            .collect();
                        plot.bar_chart(
                            BarChart::new(r.about.label.clone(), bars)
                                .color(Color32::from_rgb(cr, cg, cb)),
                        );
                    }
                });
        });
    }

    pub(super) fn texture(
        &mut self,
        ui: &egui::Ui,
        key: &str,
        make: impl FnOnce() -> ColorImage,
    ) -> TextureHandle {
        self.textures
            .entry(key.to_string())
            .or_insert_with(|| ui.ctx().load_texture(key, make(), TextureOptions::NEAREST))
            .clone()
    }

    /// A layer's matrix beside the neural one, shared order and colour scale, hover read-out.
    pub(super) fn matrices(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        inspection: &Inspection,
    ) {
        ui.heading(format!(
            "Layer against {}",
            inspection.request.reference.short()
        ));
        let runs = &inspection.networks;
        self.run = self.run.min(runs.len().saturating_sub(1));
        let Some(run) = runs.get(self.run) else {
            return;
        };
        ui.horizontal(|ui| {
            let label = ui.label("Network:");
            egui::ComboBox::from_id_salt("inspect-run")
                .selected_text(run.about.label.clone())
                .show_ui(ui, |ui| {
                    for (k, r) in runs.iter().enumerate() {
                        ui.selectable_value(&mut self.run, k, r.about.label.clone());
                    }
                })
                .response
                .labelled_by(label.id);
            let last = run.layers.len().saturating_sub(1);
            self.layer = self.layer.min(last);
            ui.add(
                egui::Slider::new(&mut self.layer, 0..=last)
                    .text("layer")
                    .custom_formatter(|v, _| {
                        run.layers
                            .get(v as usize)
                            .map(|l| format!("{} {}", l.layer.layer, l.layer.name))
                            .unwrap_or_default()
                    }),
            );
        });
        let Some(layer) = run.layers.get(self.layer) else {
            return;
        };
        let order = &inspection.order;
        let (a, b) = (
            layer.layer.matrix.reordered(order),
            inspection.neural.matrix.reordered(order),
        );
        let vmax = shared_range([&a, &b]);
        let ka = format!(
            "layer-{}-{}-{}",
            self.run,
            self.layer,
            inspection.neural.image_ids.len()
        );
        let ta = self.texture(ui, &ka, || matrix_image(&a, vmax));
        let tb = self.texture(ui, "neural", || matrix_image(&b, vmax));
        let size = (ui.available_width() / 3.2).min(300.0);
        let mut hovered = None;
        ui.horizontal(|ui| {
            for (title, tex, m) in [
                (layer.layer.name.as_str(), &ta, &a),
                (inspection.neural.matrix_name.as_str(), &tb, &b),
            ] {
                ui.vertical(|ui| {
                    ui.label(title);
                    let r = heatmap(ui, tex, m.n, size, None, self.hovered);
                    hovered = hovered.or(r.hovered);
                });
            }
            if let Some((i, j)) = self.hovered {
                ui.vertical(|ui| {
                    let n = &inspection.neural;
                    ui.label(format!(
                        "layer {:.3}   neural {:.3}",
                        a.get(i, j),
                        b.get(i, j)
                    ));
                    ui.horizontal(|ui| {
                        for idx in [order[i], order[j]] {
                            let id = n.image_ids[idx];
                            let pixels: Vec<f32> =
                                n.pixels[idx].iter().map(|v| v * 255.0).collect();
                            let tex = shared.stimuli.get(ui.ctx(), id, &pixels, n.shape);
                            ui.vertical(|ui| {
                                ui.image((tex.id(), egui::vec2(128.0, 72.0)));
                                ui.label(format!("image {id}"));
                            });
                        }
                    });
                });
            }
        });
        self.hovered = hovered;
        let e = layer.estimate.triples();
        ui.label(format!(
            "RSA r {:.3} [{:.3}, {:.3}]   RSA rho {:.3} [{:.3}, {:.3}]   CKA {:.3} [{:.3}, {:.3}]   debiased CKA {:.3} [{:.3}, {:.3}]",
            e[0].0, e[0].1, e[0].2, e[1].0, e[1].1, e[1].2, e[2].0, e[2].1, e[2].2, e[3].0, e[3].1, e[3].2
        ));
    }

    /// The selected network's first-layer kernels, weight norms and the chosen image's
    /// feature maps.
    pub(super) fn weights(
        &mut self,
        ui: &mut egui::Ui,
        shared: &mut Shared,
        inspection: &Inspection,
    ) {
        ui.heading("Weights and feature maps");
        let Some(run) = inspection.networks.get(self.run) else {
            return;
        };
        let n = &inspection.neural;
        ui.add(
            egui::Slider::new(&mut self.image, 0..=n.image_ids.len().saturating_sub(1))
                .text("image (feature maps)"),
        );
        let image = self.image.min(n.image_ids.len().saturating_sub(1));
        let request = &inspection.request;
        let key = (
            run.about.path.clone(),
            n.image_ids[image],
            request.layers,
            request.batch_norm,
        );
        if self.details_asked.as_ref() != Some(&key) && !shared.jobs.is_running(DETAILS) {
            self.details_asked = Some(key.clone());
            let device = shared.device.clone();
            // Normalised by its own statistics, an image is passed with the others as inspected.
            let (pixels, index) = match request.batch_norm {
                LayerBn::Eval => (vec![n.pixels[image].clone()], 0),
                LayerBn::AsLoss => (n.pixels.clone(), image),
            };
            let shape = n.shape;
            // Another image of the same network reuses the network loaded for the last one.
            let loaded = self
                .details
                .as_ref()
                .filter(|d| d.network.0.about.path == key.0 && d.network.1 == key.2)
                .map(|d| d.network.0.clone());
            shared.jobs.spawn(DETAILS, "feature maps", move |_| {
                let network = match loaded {
                    Some(network) => network,
                    None => Arc::new(TappedNetwork::load(&key.0, key.2, &device)?),
                };
                details((network, key.2), key.3, &pixels, index, shape, &device)
            });
        }
        let Some(d) = &self.details else { return };
        let (kernels, maps) = (d.kernels.clone(), d.maps.clone());
        let norms = d.norms.clone();
        let tk = self.texture(ui, "detail-kernels", || kernels);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("first layer's kernels on gray images (each scaled to its own range)");
                let [w, h] = tk.size();
                ui.image((tk.id(), egui::vec2(w as f32 * 6.0, h as f32 * 6.0)));
            });
            Plot::new("inspect-norms")
                .height(200.0)
                .x_axis_label("conv layer (network order)")
                .y_axis_label("kernel norm")
                .show(ui, |plot| {
                    let bars = norms
                        .iter()
                        .enumerate()
                        .map(|(k, w)| Bar::new(k as f64 + 1.0, w.norm).name(&w.name))
                        .collect();
                    plot.bar_chart(BarChart::new("weight norm", bars));
                });
        });
        ui.horizontal_wrapped(|ui| {
            for (k, (name, img)) in maps.into_iter().enumerate() {
                let tex = self.texture(ui, &format!("detail-map-{k}"), || img);
                ui.vertical(|ui| {
                    ui.label(name);
                    let [w, h] = tex.size();
                    let scale = (220.0 / w.max(h) as f32).max(1.0);
                    ui.image((tex.id(), egui::vec2(w as f32 * scale, h as f32 * scale)));
                });
            }
        });
    }
}

/// The network's first-layer kernels, weight norms and the feature maps of image `index` of
/// `pixels` (images of `shape` on [0, 1]), off the UI thread.
fn details(
    network: (Arc<TappedNetwork>, LayerChoice),
    bn: LayerBn,
    pixels: &[Vec<f32>],
    index: usize,
    shape: (usize, usize),
    device: &candle_core::Device,
) -> crate::Result<Details> {
    let tapped = &network.0;
    let maps = tapped
        .layers
        .iter()
        .zip(tapped.activations(pixels, shape, bn, device)?)
        .map(|(&l, a)| {
            Ok((
                format!("{l} {}", tapped.layer_name(l)),
                channel_grid(&a.get(index)?)?,
            ))
        })
        .collect::<crate::Result<Vec<_>>>()?;
    Ok(Details {
        // (O, kh, kw) -> O tiles.
        kernels: channel_grid(&tapped.stem_kernels()?)?,
        norms: tapped.weight_norms()?,
        maps,
        network,
    })
}

/// A (C, H, W) tensor as a grid of C gray tiles, each scaled to its own range, one pixel of
/// gap between tiles.
fn channel_grid(t: &Tensor) -> crate::Result<ColorImage> {
    let (c, h, w) = t.dims3()?;
    let values = t
        .to_device(&candle_core::Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let cols = (c as f64).sqrt().ceil().max(1.0) as usize;
    let rows = c.div_ceil(cols);
    let (gw, gh) = (cols * (w + 1), rows * (h + 1));
    let mut pixels = vec![Color32::from_gray(40); gw * gh];
    for (k, tile) in values.chunks_exact(h * w).enumerate() {
        let (lo, hi) = tile
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let span = (hi - lo).max(1e-12);
        let (r0, c0) = ((k / cols) * (h + 1), (k % cols) * (w + 1));
        for y in 0..h {
            for x in 0..w {
                let v = ((tile[y * w + x] - lo) / span * 255.0).round() as u8;
                pixels[(r0 + y) * gw + c0 + x] = Color32::from_gray(v);
            }
        }
    }
    Ok(ColorImage::new([gw, gh], pixels))
}
