//! A labelled path typed into a text field, with a file chooser beside it where one is wanted
//! (rfd; the typed path is the fallback where no dialog can open).

use std::path::PathBuf;

use eframe::egui;

/// A file chooser's filter: its name and the extensions it shows.
pub type FileFilter<'a> = (&'a str, &'a [&'a str]);

/// `label`, a text field editing `path` and, with `browse`, a "Browse…" button choosing a file.
pub fn path_field(ui: &mut egui::Ui, label: &str, path: &mut PathBuf, browse: Option<FileFilter>) {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        let mut text = path.display().to_string();
        if ui
            .add(egui::TextEdit::singleline(&mut text).desired_width(220.0))
            .labelled_by(label.id)
            .changed()
        {
            *path = PathBuf::from(text);
        }
        if let Some((name, extensions)) = browse {
            if ui.button("Browse…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter(name, extensions)
                    .pick_file()
                {
                    *path = p;
                }
            }
        }
    });
}
