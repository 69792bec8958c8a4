//! Options every scenario shares: where the server is, where the report
//! goes, and how the generator is laid out on the machine.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Target a running server instead of starting one (e.g. http://127.0.0.1:8080).
    /// Only loopback addresses are accepted.
    #[arg(long)]
    pub url: Option<String>,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as Markdown to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_file: Option<PathBuf>,
    /// CPUs for the server child (and the ceiling writer), via `taskset -c`, e.g. "0".
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// Load-generator threads (default: the CPUs this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Spread client connections over this many source addresses
    /// (127.0.0.2, 127.0.0.3, …); default: only when ports would run out.
    #[arg(long)]
    pub sources: Option<usize>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// Prints a scenario's report (its table, or JSON with `--json`) and
    /// writes the files asked for (`--json-file`, `--report`).
    pub fn emit<R: Serialize>(
        &self,
        report: &R,
        table: impl FnOnce(&R) -> String,
        markdown: impl FnOnce(&R) -> String,
    ) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(report)?;
        if self.json {
            println!("{json}");
        } else {
            print!("{}", table(report));
        }
        if let Some(path) = &self.json_file {
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if let Some(path) = &self.report {
            std::fs::write(path, markdown(report))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}
