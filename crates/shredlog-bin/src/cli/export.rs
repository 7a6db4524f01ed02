//! `shredlog export`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use shredlog::Store;

#[derive(Copy, Clone, Debug, ValueEnum)]
pub(crate) enum ExportFormat {
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// The visitor's email (any letter case).
    #[arg(long)]
    email: String,
    /// `json`: interchange JSON lines with file bytes (re-importable);
    /// `csv`: one row per message, columns as in docs/EXPORT.md.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    format: ExportFormat,
}

pub(crate) fn export(store: &Store, args: &ExportArgs) -> Result<ExitCode> {
    let data = store.export(&args.email).context("cannot export")?;
    let out = super::out::stdout();
    match args.format {
        ExportFormat::Json => shredlog::export::write_json(&data, out)?,
        ExportFormat::Csv => shredlog::export::write_csv(&data, out)?,
    }
    Ok(ExitCode::SUCCESS)
}
