//! The `neureg` binary: no subcommand opens the window, subcommands run headless.

use clap::Parser;
use neureg::cli::{choose_device, run, Cli};
use neureg::data::LoadOptions;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let device = choose_device(cli.device.as_deref())?;
    let options = LoadOptions {
        downsample_to: cli.downsample,
    };
    match cli.command {
        Some(command) => run(command, &device, options),
        None => neureg::ui::run_window(device, options),
    }
}
