//! fastfc's entry point: parse, dispatch, turn errors into a message and an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = fastfc::cli::Cli::parse();
    match fastfc::commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
