//! Command-line interface, compatible with how Singer runners and Meltano call taps.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Output format of `--about`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AboutFormat {
    /// Machine-readable JSON (what Meltano reads).
    Json,
    /// A Markdown page with a settings table.
    Markdown,
    /// A Meltano plugin definition (the Meltano Hub's YAML shape).
    Meltano,
}

/// What `--test` checks (the Meltano SDK's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TestMode {
    /// Connect, discover, and read one record of every selected stream.
    All,
    /// Connect, discover, and write the SCHEMA of every selected stream (no rows are read).
    Schema,
}

/// tap-mysql: a Singer tap for MySQL and MariaDB.
#[derive(Debug, Parser)]
#[command(name = "tap-mysql", version, about, long_about = None)]
pub struct Cli {
    /// Config file (JSON). Repeatable: later files override earlier ones; TAP_MYSQL_<KEY>
    /// environment variables override both.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub config: Vec<PathBuf>,

    /// Discover schemas, tables, views and columns; print a Singer catalog on stdout.
    #[arg(long)]
    pub discover: bool,

    /// Catalog selecting streams and columns to sync.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// Legacy name for --catalog (same format).
    #[arg(long, value_name = "FILE", conflicts_with = "catalog")]
    pub properties: Option<PathBuf>,

    /// State file (bookmarks) from a previous run.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Print the tap's name, version, capabilities and settings.
    #[arg(long)]
    pub about: bool,

    /// Check the connection instead of syncing: connect, discover, write the SCHEMA and one
    /// RECORD of every selected stream (--test=schema: no RECORD), no STATE; exit 0 when all
    /// worked.
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all",
        conflicts_with_all = ["discover", "about"]
    )]
    pub test: Option<TestMode>,

    /// Only warnings and errors on stderr (overrides log_level).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Format of --about.
    #[arg(long, value_enum, default_value = "json", requires = "about")]
    pub format: AboutFormat,
}

impl Cli {
    /// The catalog file, whichever flag named it.
    pub fn catalog_path(&self) -> Option<&PathBuf> {
        self.catalog.as_ref().or(self.properties.as_ref())
    }
}
