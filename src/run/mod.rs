//! Top-level dispatch: what the CLI asked for, run with errors as values.

use std::io::Write;

mod check;
mod sync;
mod workers;

use crate::about;
use crate::catalog::read::read_catalog;
use crate::catalog::write::{build_stream, CatalogWriter};
use crate::catalog::{discover, Catalog};
use crate::cli::{AboutFormat, Cli};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::source::connect::Connector;
use crate::state::State;

/// Runs the tap for parsed CLI arguments.
pub fn run(cli: &Cli) -> Result<()> {
    if cli.about {
        let text = match cli.format {
            AboutFormat::Json => {
                let mut s = serde_json::to_string_pretty(&about::about_json())
                    .map_err(|e| Error::runtime(format!("cannot render --about: {e}")))?;
                s.push('\n');
                s
            }
            AboutFormat::Markdown => about::about_markdown(),
            AboutFormat::Meltano => about::about_meltano(),
        };
        return write_stdout(text.as_bytes());
    }
    // Settings may come from TAP_MYSQL_* variables alone (no file).
    if cli.config.is_empty() && !std::env::vars().any(|(k, _)| k.starts_with("TAP_MYSQL_")) {
        return Err(Error::usage(
            "--config FILE is required (see --help); settings may also come from TAP_MYSQL_* variables",
        ));
    }
    let config = Config::load(&cli.config, std::env::vars())?;
    crate::logging::set_json(config.log_json);
    crate::logging::init(if cli.quiet {
        log::LevelFilter::Warn
    } else {
        config.log_level
    });
    if cli.discover {
        // Meltano passes --state and --catalog along with --discover: accepted and ignored.
        return discover_to_stdout(&config);
    }
    let catalog = match cli.catalog_path() {
        Some(path) => Some(load_catalog(path)?),
        None => {
            if cli.test.is_none() {
                log::info!("no --catalog given: syncing every discovered table with FULL_TABLE");
            }
            None
        }
    };
    if let Some(mode) = cli.test {
        // Like --discover, a test accepts --state and ignores it.
        return check::test_to(
            &config,
            catalog.as_ref(),
            mode,
            &mut std::io::stdout().lock(),
        );
    }
    let state = match &cli.state {
        Some(path) => State::load(path)?,
        None => State::default(),
    };
    sync::sync(&config, catalog.as_ref(), state)
}

/// Reads a catalog file (`--catalog` or `--properties`), keeping its selected streams.
pub(crate) fn load_catalog(path: &std::path::Path) -> Result<Catalog> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::usage(format!("cannot read catalog file {}: {e}", path.display())))?;
    let catalog = read_catalog(std::io::BufReader::new(file)).map_err(|e| {
        Error::usage(format!(
            "catalog file {} is not a valid Singer catalog: {e}",
            path.display()
        ))
    })?;
    log::info!(
        "catalog: {} of {} streams selected",
        catalog.streams.len(),
        catalog.listed
    );
    Ok(catalog)
}

/// `--discover`: connect, read information_schema once, print the catalog as it is discovered
/// (one stream in memory at a time).
pub(crate) fn discover_to_stdout(config: &Config) -> Result<()> {
    let connector = Connector::new(config)?;
    let mut conn = connector.connect("discovery")?;
    let flavor = connector
        .server()
        .map(|s| s.flavor)
        .ok_or_else(|| Error::runtime("server flavor unknown after connecting"))?;
    let started = std::time::Instant::now();
    let written = |e| Error::io("cannot write to stdout", e);
    let mut out =
        CatalogWriter::start(std::io::BufWriter::new(std::io::stdout().lock())).map_err(written)?;
    discover::for_each_table(
        &mut conn,
        flavor,
        &config.discovery_databases(),
        &config.types,
        |t| {
            out.stream(&build_stream(&t, &config.types))
                .map_err(written)
        },
    )?;
    let streams = out.finish().map_err(written)?;
    log::info!(
        "discovery: {streams} streams in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("cannot write to stdout", e))
}
