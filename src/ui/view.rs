//! The trait every tab implements: it owns its state, reads and changes only what all tabs share.

use eframe::egui;

use super::shared::Shared;

/// A tab.
pub trait View {
    /// Collects the tab's finished jobs and starts queued work (every frame, whichever tab is
    /// shown).
    fn poll(&mut self, _shared: &mut Shared) {}

    /// Draws the tab.
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared);

    /// The workspace changed: folders that defaulted to the old one follow it.
    fn workspace_changed(&mut self, _shared: &Shared) {}
}

/// A tab's own state beside the shared state: what a tab's drawing functions take.
pub struct Cx<'a, V> {
    /// The tab's state.
    pub view: &'a mut V,
    /// What all tabs share.
    pub shared: &'a mut Shared,
}
