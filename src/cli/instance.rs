//! The options every command takes to find its instance.

use std::path::PathBuf;

use clap::Args;

/// Where the instance is: the same options every command takes.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// Configuration file (TOML); see `hearth config default` for every key.
    #[arg(long, short = 'c', env = "HEARTH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data` from the file and HEARTH_DATA).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
}
