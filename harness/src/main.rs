//! The `faultline` command: argument parsing only. Every subcommand lives in `harness::cli`.
use clap::Parser;
use harness::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; everything else clap rejects is a bad argument.
            let code = if e.use_stderr() {
                cli::Exit::BadInput
            } else {
                cli::Exit::Valid
            };
            let _ = e.print();
            return code.into();
        }
    };
    cli::run(cli)
}
