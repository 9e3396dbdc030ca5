//! `faultline check`.
use super::Exit;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The history file to check.
    pub file: std::path::PathBuf,
}

pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    anyhow::bail!(super::BadInput(format!(
        "{}: checking is not implemented yet",
        args.file.display()
    )))
}
