//! What the window remembers between starts (egui's habit: one serde state, saved by eframe):
//! the scans open, the tab shown, the folders and every tab's settings. A field missing from an
//! older save takes its default.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{experiment_tab, inspect, predictor, robustness, training, NeuregApp, Tab};

/// The key of the state in eframe's storage.
const KEY: &str = "neureg.state";
/// The key of the scan list that earlier versions saved alone.
const OLD_SCANS_KEY: &str = "neureg.scans";

/// The saved state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// The scans open (None: first start, open the samples).
    pub scans: Option<Vec<PathBuf>>,
    /// The tab shown.
    pub tab: Tab,
    /// Where exports go (None: the workspace's).
    pub export_dir: Option<PathBuf>,
    /// The folder the run list shows (None: the workspace's).
    pub runs_root: Option<String>,
    /// The runs ticked.
    pub ticked: BTreeSet<PathBuf>,
    /// The Predictor tab's settings.
    pub predictor: Option<predictor::Settings>,
    /// The Training tab's settings.
    pub training: Option<training::Settings>,
    /// The Robustness tab's settings.
    pub robustness: Option<robustness::Settings>,
    /// The Experiment tab's settings.
    pub experiment: Option<experiment_tab::Settings>,
    /// The Inspect tab's settings.
    pub inspect: Option<inspect::Settings>,
}

impl State {
    /// What `app` would save now.
    pub fn of(app: &NeuregApp) -> State {
        let shared = &app.shared;
        State {
            scans: Some(shared.scan_paths()),
            tab: app.tab,
            export_dir: Some(shared.export_dir.clone()),
            runs_root: Some(shared.runs.root.clone()),
            ticked: shared.runs.ticked.clone(),
            predictor: Some(app.predictor_view.settings.clone()),
            training: Some(app.training_view.settings.clone()),
            robustness: Some(app.robustness_view.settings.clone()),
            experiment: Some(app.experiment_view.settings.clone()),
            inspect: Some(app.inspect_view.settings.clone()),
        }
    }

    /// Puts the saved folders and settings into `app` (its scans are opened by its maker).
    pub fn apply(self, app: &mut NeuregApp) {
        app.tab = self.tab;
        let shared = &mut app.shared;
        if let Some(dir) = self.export_dir {
            shared.export_dir = dir;
        }
        if let Some(root) = self.runs_root {
            shared.runs.root = root;
        }
        shared.runs.ticked = self.ticked;
        if let Some(s) = self.predictor {
            app.predictor_view.settings = s;
        }
        if let Some(s) = self.training {
            app.training_view.settings = s;
        }
        if let Some(s) = self.robustness {
            app.robustness_view.settings = s;
        }
        if let Some(s) = self.experiment {
            app.experiment_view.settings = s;
        }
        if let Some(s) = self.inspect {
            app.inspect_view.settings = s;
        }
    }

    /// Reads the state from `storage` (an unreadable one is the default: a first start).
    pub fn load(storage: &dyn eframe::Storage) -> State {
        if let Some(state) = storage
            .get_string(KEY)
            .and_then(|text| serde_json::from_str(&text).ok())
        {
            return state;
        }
        State {
            scans: storage
                .get_string(OLD_SCANS_KEY)
                .and_then(|text| serde_json::from_str(&text).ok()),
            ..State::default()
        }
    }

    /// Writes the state to `storage`.
    pub fn save(&self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(self) {
            storage.set_string(KEY, text);
        }
    }
}
