//! The `tap-mysql` binary: parse the CLI, run, map errors to one line and an exit code.

use clap::Parser;

fn main() {
    tap_mysql::logging::init(log::LevelFilter::Info);
    let cli = tap_mysql::cli::Cli::parse();
    tap_mysql::interrupt::install();
    if let Err(e) = tap_mysql::run::run(&cli) {
        if matches!(e, tap_mysql::Error::Interrupted(_)) {
            log::warn!("{e}");
        } else {
            log::error!("{e}");
        }
        std::process::exit(e.exit_code());
    }
}
