//! Options every scenario shares: where the server is, where the report
//! goes, and how the generator is laid out on the machine.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::target::Process;

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
    /// A setting for the server the bench starts, as `HEARTH_KEY=VALUE`
    /// (repeatable), e.g. `--server-env HEARTH_SEARCH_INDEX=false`: the same
    /// scenario with one setting changed, for a before/after in one machine.
    #[arg(long = "server-env", value_parser = server_setting)]
    pub server_env: Vec<(String, String)>,
}

fn server_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if k.starts_with("HEARTH_") && k.len() > 7 => Ok((k.into(), v.into())),
        _ => Err(format!("{s:?} is not HEARTH_KEY=VALUE")),
    }
}

impl CommonArgs {
    /// Starts the server under test on its CPUs with `extra` settings and
    /// the `--server-env` ones (which win).
    pub fn serve(&self, extra: &[(String, String)]) -> anyhow::Result<Process> {
        let mut env = extra.to_vec();
        env.extend(self.server_env.iter().cloned());
        Process::serve(self.server_cpus.as_deref(), &env)
    }

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

#[cfg(test)]
mod tests {
    use super::server_setting;

    #[test]
    fn server_settings_are_hearth_keys_with_values() {
        assert_eq!(
            server_setting("HEARTH_SEARCH_INDEX=false"),
            Ok(("HEARTH_SEARCH_INDEX".into(), "false".into()))
        );
        assert_eq!(
            server_setting("HEARTH_X=a=b"),
            Ok(("HEARTH_X".into(), "a=b".into()))
        );
        for bad in ["SEARCH_INDEX=false", "HEARTH_=1", "HEARTH_X", ""] {
            assert!(server_setting(bad).is_err(), "{bad}");
        }
    }
}
