//! The `tap-mysql` binary: parse the CLI, run, map errors to one line and an exit code.

use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    tap_mysql::logging::init(log::LevelFilter::Info);
    let cli = match tap_mysql::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on_cli_error(e),
    };
    tap_mysql::interrupt::install();
    if let Err(e) = tap_mysql::run(&cli) {
        if let tap_mysql::Error::Interrupted(sig) = e {
            log::warn!("{e}");
            tap_mysql::interrupt::exit_by(sig);
        }
        log::error!("{e}");
        std::process::exit(e.exit_code());
    }
}

/// `--help` and `--version` print as usual; a usage mistake is one line and exit 2.
fn exit_on_cli_error(e: clap::Error) -> ! {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    log::error!(
        "{} (see --help)",
        first.trim_start_matches("error: ").trim_end_matches('.')
    );
    std::process::exit(2);
}
