//! The `neureg` binary: no subcommand opens the window, subcommands run headless.

use clap::Parser;
use neureg::cli::{choose_device, run, Cli};
use neureg::data::LoadOptions;
use neureg::runs::Workspace;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let device = choose_device(cli.device.as_deref())?;
    let workspace = Workspace::locate(cli.workspace.as_deref())?;
    let options = LoadOptions {
        downsample_to: cli.downsample,
        nwb: cli.nwb,
    };
    match cli.command {
        Some(command) => run(command, &device, options, &workspace),
        None => neureg::ui::run_window(device, options, workspace),
    }
}
