//! `billpay bench`: benchmarks run against a real server over HTTP, beside a baseline measured
//! in the same run on the same database.

use anyhow::Result;
use clap::Subcommand;

use crate::config::Settings;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Durable payments per second over HTTP, against a same-run baseline of direct writes.
    Payments,
}

pub async fn run(what: BenchCommand, _settings: &Settings) -> Result<()> {
    match what {
        BenchCommand::Payments => anyhow::bail!("the payments benchmark is being written"),
    }
}
