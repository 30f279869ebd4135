//! The Inspect tab: where in the ticked runs' networks (and a frozen VGG, if one is named) the
//! brain's similarity structure appears. Per layer, RSA and CKA against the neural matrix (the
//! mean oracle similarity on the oracle images, or a ticked run's target on its images) over
//! depth with bootstrap bands, the noise ceiling and the pixel baseline, gamma beside them; a
//! layer's matrix beside the neural one in the shared ordering and colour scale; the first
//! layer's kernels, per-layer weight norms and the feature maps of a chosen image. Every number
//! comes from [`crate::inspect::inspect`], as `neureg inspect` prints it; results are cached
//! per networks, images and settings.

mod panels;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui::{self, ColorImage, TextureHandle};
use serde::{Deserialize, Serialize};

use super::shared::Shared;
use super::view::View;
use super::widgets::path_field::path_field;
use crate::data::Scan;
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
}
