//! `deconflict-broker store`: maintenance of a stopped broker's store.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use deconflict_broker::config::BrokerConfig;
use deconflict_broker::ledger::compact::compact;

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// With the broker stopped: rewrite the store in key order, which gives back the space
    /// that writes in place leave behind (often a third of it). The copy is checked (every
    /// record, the audit chain) before it replaces the store. Run it again to finish one that
    /// was interrupted.
    #[command(after_help = "Example:\n  deconflict-broker store compact --config broker.toml")]
    Compact {
        /// The stopped broker's configuration.
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
        /// Keep the old store as `store.old` in the data folder instead of deleting it.
        #[arg(long)]
        keep_old: bool,
    },
}

pub fn run(command: StoreCommand) -> Result<()> {
    match command {
        StoreCommand::Compact { config, keep_old } => compact_store(&config, keep_old),
    }
}

fn compact_store(config: &Path, keep_old: bool) -> Result<()> {
    let config = BrokerConfig::load(config)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let done = compact(&config.server.data_dir, keep_old, now)?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    if done.resumed {
        println!(
            "finished an interrupted compaction: {} records, {:.1} MiB",
            done.records,
            mib(done.bytes_after)
        );
    } else {
        println!(
            "compacted {} records: {:.1} MiB -> {:.1} MiB; audit chain intact",
            done.records,
            mib(done.bytes_before),
            mib(done.bytes_after)
        );
    }
    if keep_old {
        println!(
            "the old store is kept in {}",
            config.server.data_dir.join("store.old").display()
        );
    }
    Ok(())
}
