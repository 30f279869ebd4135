//! The Inspect tab: where in the ticked runs' networks (and a frozen VGG, if one is named) the
//! brain's similarity structure appears. Per layer, RSA and CKA against the neural matrix (the
//! mean oracle similarity on the oracle images, or a ticked run's target on its images) over
//! depth with bootstrap bands, the noise ceiling and the pixel baseline, gamma beside them; a
//! layer's matrix beside the neural one in the shared ordering and colour scale; the first
//! layer's kernels, per-layer weight norms and the feature maps of a chosen image. Every number
//! comes from [`crate::inspect::inspect`], as `neureg inspect` prints it; results are cached
//! per networks, images and settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Tensor;
use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, Corner, HLine, Legend, Line, Plot, PlotPoints, Polygon};
use serde::{Deserialize, Serialize};

use super::shared::Shared;
use super::view::View;
use super::widgets::colour_map::{matrix_image, shared_range};
use super::widgets::heatmap::heatmap;
use super::widgets::path_field::path_field;
use crate::data::Scan;
use crate::figures::palette;
use crate::inspect::layers::{LayerBn, LayerChoice, TappedNetwork, WeightNorm};
use crate::inspect::neural::ReferenceChoice;
use crate::inspect::write::measure_title;
use crate::inspect::{inspect, InspectRequest, Inspection};
use crate::runs::store::run_name;
use crate::runs::RunDir;
use crate::similarity::agreement::MEASURES;

/// Job keys.
const INSPECT: &str = "inspect.layers";
const DETAILS: &str = "inspect.details";

/// What the Inspect tab remembers between starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The tapped layers or every conv layer.
    pub layers: LayerChoice,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// The measure drawn over depth (index into [`MEASURES`]).
    pub measure: usize,
    /// The scan whose oracle images are used (None: those common to every loaded scan).
    pub scan: Option<usize>,
    /// The ticked run whose target is the neural matrix instead (None: the mean oracle
    /// similarity).
    pub target_of: Option<PathBuf>,
    /// How many of that target's images.
    pub target_images: usize,
    /// How a run's batch norm normalises the images.
    pub batch_norm: LayerBn,
    /// A VGG16/VGG19 weights file inspected beside the runs (empty: none).
    pub vgg: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            layers: LayerChoice::Taps,
            resamples: 200,
            measure: 0,
            scan: None,
            target_of: None,
            target_images: 100,
            batch_norm: LayerBn::Eval,
            vgg: PathBuf::new(),
        }
    }
}

/// What one inspection is of: the request and the scans whose oracle images it uses.
type Key = (InspectRequest, Vec<String>);

/// The selected run's weights and one image's feature maps.
struct Details {
    /// The network and layer choice they were read from, kept for the next image's maps.
    network: (Arc<TappedNetwork>, LayerChoice),
    kernels: ColorImage,
    norms: Vec<WeightNorm>,
    /// Per tapped layer: (name, channel grid).
    maps: Vec<(String, ColorImage)>,
}

/// View state of the Inspect tab.
#[derive(Default)]
pub struct InspectView {
    /// The settings.
    pub settings: Settings,
    cache: HashMap<Key, Arc<Inspection>>,
    wanted: Option<Key>,
    /// The run (index into the shown inspection's runs) and layer of the matrix pair.
    run: usize,
    layer: usize,
    /// The image whose feature maps are shown.
    image: usize,
    hovered: Option<(usize, usize)>,
    textures: HashMap<String, TextureHandle>,
    details: Option<Details>,
    /// The network, image id, layers and batch norm whose details were asked for last (asked
    /// once, even if that failed).
    details_asked: Option<(PathBuf, i64, LayerChoice, LayerBn)>,
}

impl View for InspectView {
    fn poll(&mut self, shared: &mut Shared) {
        if let Some(result) = shared.jobs.take::<(Key, Inspection)>(INSPECT) {
            if let Some((key, inspection)) = shared.report(result) {
                self.cache.insert(key, Arc::new(inspection));
                self.textures.clear();
            }
        }
        if let Some(result) = shared.jobs.take::<Details>(DETAILS) {
            if let Some(d) = shared.report(result) {
                self.details = Some(d);
                self.textures.retain(|k, _| !k.starts_with("detail"));
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        // Runs without a checkpoint (the seeds an experiment kept no weights for) have no
        // network to inspect.
        let (mut networks, without): (Vec<PathBuf>, Vec<PathBuf>) = shared
            .runs
            .ticked_runs()
            .iter()
            .map(|r| r.dir.clone())
            .partition(|d| RunDir(d).checkpoint().is_file());
        if !without.is_empty() {
            let names: Vec<String> = without.iter().map(|d| run_name(d)).collect();
            ui.label(format!("Left out, no checkpoint: {}", names.join(", ")));
        }
        self.controls(ui, shared, &networks);
        let vgg = &self.settings.vgg;
        if vgg.is_file() {
            networks.push(vgg.clone());
        } else if !vgg.as_os_str().is_empty() {
            ui.label(format!("VGG weights: no file at {}", vgg.display()));
        }
        let reference = self.reference(&networks);
        let scans = match reference {
            ReferenceChoice::Oracle => self.chosen_scans(shared),
            ReferenceChoice::TargetOf { .. } => Vec::new(),
        };
        if networks.is_empty() || (reference == ReferenceChoice::Oracle && scans.is_empty()) {
            ui.label(
                "Load scans (Scans tab) and tick trained runs (Training tab) or name VGG \
                 weights to inspect them.",
            );
            return;
        }
        let request = InspectRequest {
            networks,
            reference,
            layers: self.settings.layers,
            batch_norm: self.settings.batch_norm,
            resamples: self.settings.resamples,
            seed: 0,
        };
        let key: Key = (request, scans.iter().map(|s| s.name.clone()).collect());
        self.start_if_needed(shared, &key, scans);
        let Some(inspection) = self.cache.get(&key).cloned() else {
            let (stage, fraction) = shared
                .jobs
                .status(INSPECT)
                .map(|s| s.progress())
                .unwrap_or_else(|| ("waiting".into(), 0.0));
            ui.add(egui::ProgressBar::new(fraction).text(stage));
            return;
        };
        egui::ScrollArea::vertical()
            .id_salt("inspect")
            .show(ui, |ui| {
                self.curves(ui, &inspection);
                ui.separator();
                self.matrices(ui, shared, &inspection);
                ui.separator();
                self.weights(ui, shared, &inspection);
            });
    }
}

impl InspectView {
    /// The inspection last asked for, once computed.
    pub fn latest(&self) -> Option<Arc<Inspection>> {
        self.cache.get(self.wanted.as_ref()?).cloned()
    }

    /// The chosen reference: a ticked run's target while that run is inspected, else the mean
    /// oracle similarity.
    fn reference(&self, networks: &[PathBuf]) -> ReferenceChoice {
        match &self.settings.target_of {
            Some(run) if networks.contains(run) => ReferenceChoice::TargetOf {
                run: run.clone(),
                images: self.settings.target_images,
            },
            _ => ReferenceChoice::Oracle,
        }
    }

    fn chosen_scans(&self, shared: &Shared) -> Vec<Arc<Scan>> {
        let all = shared.scan_handles();
        match self.settings.scan {
            Some(k) if k < all.len() => vec![all[k].clone()],
            _ => all,
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui, shared: &Shared, runs: &[PathBuf]) {
        let names: Vec<String> = shared.scans.iter().map(|s| s.scan.name.clone()).collect();
        // The inspected runs trained towards a target, with their labels.
        let targets: Vec<(PathBuf, String)> = shared
            .runs
            .ticked_runs()
            .iter()
            .filter(|r| r.config.regularised() && runs.contains(&r.dir))
            .map(|r| (r.dir.clone(), format!("target of {}", r.name())))
            .collect();
        let s = &mut self.settings;
        if s.target_of.as_ref().is_some_and(|t| !runs.contains(t)) {
            s.target_of = None;
        }
        ui.horizontal(|ui| {
            let label = ui.label("Neural matrix:");
            let shown = targets
                .iter()
                .find(|(d, _)| Some(d) == s.target_of.as_ref())
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| "mean oracle similarity".into());
            let before = s.target_of.is_some();
            egui::ComboBox::from_id_salt("inspect-reference")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut s.target_of, None, "mean oracle similarity");
                    for (dir, label) in &targets {
                        ui.selectable_value(&mut s.target_of, Some(dir.clone()), label);
                    }
                })
                .response
                .labelled_by(label.id);
            // A target is fitted as the loss saw its images; the brain is compared with the
            // network as it classifies (the command line's defaults too).
            if s.target_of.is_some() != before {
                s.batch_norm = match s.target_of {
                    Some(_) => LayerBn::AsLoss,
                    None => LayerBn::Eval,
                };
            }
            if s.target_of.is_some() {
                let label = ui.label("Target images:");
                ui.add(egui::DragValue::new(&mut s.target_images).range(4..=2000))
                    .labelled_by(label.id);
                ui.weak("(images the similarity loss saw)");
            } else {
                let label = ui.label("Images:");
                let shown = match s.scan {
                    Some(k) if k < names.len() => format!("oracle (test) images of {}", names[k]),
                    _ => format!("oracle images common to the {} loaded scans", names.len()),
                };
                egui::ComboBox::from_id_salt("inspect-images")
                    .selected_text(shown)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut s.scan, None, "common to every loaded scan");
                        for (k, n) in names.iter().enumerate() {
                            ui.selectable_value(&mut s.scan, Some(k), n);
                        }
                    })
                    .response
                    .labelled_by(label.id);
            }
        });
        ui.horizontal(|ui| {
            ui.label("Layers:");
            ui.selectable_value(&mut s.layers, LayerChoice::Taps, "taps");
            ui.selectable_value(&mut s.layers, LayerChoice::All, "every conv layer");
            ui.label("Batch norm:")
                .on_hover_text(s.batch_norm.describe());
            ui.selectable_value(&mut s.batch_norm, LayerBn::Eval, "running statistics");
            ui.selectable_value(&mut s.batch_norm, LayerBn::AsLoss, "as the similarity loss");
            let label = ui.label("Measure:");
            egui::ComboBox::from_id_salt("inspect-measure")
                .selected_text(measure_title(MEASURES[s.measure.min(3)].0))
                .show_ui(ui, |ui| {
                    for (k, (name, _)) in MEASURES.iter().enumerate() {
                        ui.selectable_value(&mut s.measure, k, measure_title(name));
                    }
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Resamples:");
            ui.add(egui::DragValue::new(&mut s.resamples).range(20..=5000))
                .labelled_by(label.id);
        });
        path_field(
            ui,
            "VGG weights (inspected beside the runs):",
            &mut s.vgg,
            Some(("VGG16/VGG19 safetensors", &["safetensors"])),
        );
    }

    fn start_if_needed(&mut self, shared: &mut Shared, key: &Key, scans: Vec<Arc<Scan>>) {
        // A key is computed once: a failed inspection shows its error and is not retried every
        // frame (changing the runs, images or settings asks again).
        if self.wanted.as_ref() == Some(key) {
            return;
        }
        // Another inspection is shown from now on (computed before, or to come): its matrices
        // are drawn anew.
        self.wanted = Some(key.clone());
        self.textures.clear();
        self.run = 0;
        self.layer = 0;
        self.image = 0;
        if self.cache.contains_key(key) {
            return;
        }
        if shared.jobs.is_running(INSPECT) {
            shared.jobs.cancel(INSPECT);
            shared.jobs.forget(INSPECT);
        }
        let (device, k, request) = (shared.device.clone(), key.clone(), key.0.clone());
        shared.jobs.spawn(INSPECT, "inspecting layers", move |p| {
            let refs: Vec<&Scan> = scans.iter().map(|s| s.as_ref()).collect();
            Ok((k, inspect(&request, &refs, &device, p)?))
        });
    }

    /// The chosen measure over depth per run with its band, the ceiling, the pixel baseline,
    /// and each run's final gamma at its taps.
    fn curves(&self, ui: &mut egui::Ui, inspection: &Inspection) {
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

    fn texture(
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
    fn matrices(&mut self, ui: &mut egui::Ui, shared: &mut Shared, inspection: &Inspection) {
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
    fn weights(&mut self, ui: &mut egui::Ui, shared: &mut Shared, inspection: &Inspection) {
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
