//! The status bar: device, workspace (switchable), export folder, frame time, running jobs with
//! progress and cancel.

use eframe::egui;

use super::shared::Shared;
use crate::runs::Workspace;

/// Draws the status bar; returns the workspace the user switched to, if any.
pub fn show(shared: &mut Shared, ui: &mut egui::Ui) -> Option<Workspace> {
    let mut switch = None;
    ui.horizontal(|ui| {
        device_choice(shared, ui);
        ui.separator();
        switch = workspace_field(shared, ui);
        ui.separator();
        let label = ui.label("Exports to:");
        let mut dir = shared.export_dir.display().to_string();
        if ui
            .add(egui::TextEdit::singleline(&mut dir).desired_width(200.0))
            .labelled_by(label.id)
            .changed()
        {
            shared.export_dir = dir.into();
        }
        ui.separator();
        // The latest notice lives here, so that it never moves the views above.
        if let Some(notice) = shared.notices.last() {
            ui.label(notice);
            if ui.small_button("OK").clicked() {
                shared.notices.clear();
            }
            ui.separator();
        }
        if let Some(f) = shared.frames.summary() {
            ui.weak(format!(
                "frame {:.1} ms (95%: {:.1}, worst {:.1})",
                f.last.as_secs_f64() * 1e3,
                f.p95.as_secs_f64() * 1e3,
                f.worst.as_secs_f64() * 1e3
            ))
            .on_hover_text(format!(
                "Time to build each of the last {} frames (NEUREG_FRAME_LOG=FILE logs every frame)",
                super::frame_time::KEPT
            ));
            ui.separator();
        }
        let jobs = shared.jobs.statuses();
        if jobs.is_empty() {
            ui.label("Idle");
        }
        for job in jobs {
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
    switch
}

/// The device new jobs compute on (running jobs keep theirs).
fn device_choice(shared: &mut Shared, ui: &mut egui::Ui) {
    let current = crate::device::spec(&shared.device);
    let mut chosen = current.clone();
    let label = ui.label("Device:");
    egui::ComboBox::from_id_salt("device")
        .selected_text(crate::device::describe(&shared.device))
        .show_ui(ui, |ui| {
            for spec in crate::device::available() {
                ui.selectable_value(&mut chosen, spec.clone(), spec);
            }
        })
        .response
        .labelled_by(label.id);
    if chosen != current {
        match crate::device::open(&chosen) {
            Ok(device) => shared.device = device,
            Err(e) => shared.errors.push(e.to_string()),
        }
    }
}

/// The workspace as an editable path; Enter on another folder switches to it.
fn workspace_field(shared: &mut Shared, ui: &mut egui::Ui) -> Option<Workspace> {
    let label = ui.label("Workspace:");
    let id = ui.scope_id().with("workspace field");
    let current = shared.workspace.root.display().to_string();
    let mut text: String = ui.data_mut(|d| d.get_temp(id)).unwrap_or(current.clone());
    let edit = ui
        .add(egui::TextEdit::singleline(&mut text).desired_width(220.0))
        .labelled_by(label.id)
        .on_hover_text(
            "Where runs, predictors, targets, experiments and exports go by default; type another \
             folder and press Enter to switch (--workspace DIR or NEUREG_WORKSPACE=DIR at start)",
        );
    let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    let mut switch = None;
    if entered && text.trim() != current {
        match Workspace::at(std::path::Path::new(text.trim())) {
            Ok(ws) => {
                shared
                    .notices
                    .push(format!("workspace: {}", ws.root.display()));
                switch = Some(ws);
            }
            Err(e) => shared.errors.push(e.to_string()),
        }
    }
    if edit.has_focus() {
        ui.data_mut(|d| d.insert_temp(id, text));
    } else {
        ui.data_mut(|d| d.remove::<String>(id));
    }
    switch
}
