//! The status bar: device, workspace, export folder, running jobs with progress and cancel.

use eframe::egui;

use super::NeuregApp;

/// Draws the status bar.
pub fn show(app: &mut NeuregApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.label(format!("Device: {}", app.device_name()));
        ui.separator();
        ui.label(format!("Workspace: {}", app.workspace.root.display()))
            .on_hover_text(
                "Where runs, predictors, experiments and exports go by default; start with \
                 --workspace DIR or NEUREG_WORKSPACE=DIR for another",
            );
        ui.separator();
        let label = ui.label("Exports to:");
        let mut dir = app.export_dir.display().to_string();
        if ui
            .add(egui::TextEdit::singleline(&mut dir).desired_width(200.0))
            .labelled_by(label.id)
            .changed()
        {
            app.export_dir = dir.into();
        }
        ui.separator();
        // The latest notice lives here, so that it never moves the views above.
        if let Some(notice) = app.notices.last() {
            ui.label(notice);
            if ui.small_button("OK").clicked() {
                app.notices.clear();
            }
            ui.separator();
        }
        if app.jobs.is_empty() {
            ui.label("Idle");
        }
        for job in &app.jobs {
            let (stage, fraction) = job.progress();
            ui.label(&job.name);
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(140.0)
                    .text(stage),
            );
            if ui.small_button("Cancel").clicked() {
                job.cancel();
            }
        }
    });
}
