//! `deconflict-broker store`: maintenance of a stopped broker's store.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use deconflict_broker::config::BrokerConfig;
use deconflict_broker::config::PostgresSection;
use deconflict_broker::ledger::audit::Verdict;
use deconflict_broker::ledger::compact::compact;
use deconflict_broker::ledger::migrate::migrate;
use deconflict_broker::server::{open_store, postgres_options};
use deconflict_broker::store::{PgStore, SledStore, Store};

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
    /// With every broker stopped, after the database was restored with its own tools (a
    /// point-in-time recovery, a dump loaded): give the alert queues a new incarnation, so
    /// that no agency daemon mistakes numbers given out again for ones it has seen, and
    /// verify the audit chain. (`restore` does both for a backup folder of the embedded store.)
    #[command(after_help = "Example:\n  deconflict-broker store restored --config broker.toml")]
    Restored {
        /// The brokers' configuration (its [store] names the restored database).
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
    },
    /// With every broker stopped: move the ledger between the embedded store and a
    /// PostgreSQL database, either way. The target must be empty; the copy is checked (every
    /// record, the audit chain) before the command says done. Run it again to redo one that
    /// was interrupted. The connection string comes from a file or the environment, never
    /// from the command line.
    #[command(
        after_help = "Examples:\n  deconflict-broker store migrate --from /var/lib/deconflict/store \
                      --to postgres --url-file /etc/deconflict/database-url\n  \
                      deconflict-broker store migrate --from postgres --url-env DECONFLICT_DATABASE_URL \
                      --to /var/lib/deconflict/store"
    )]
    Migrate {
        /// Where the ledger is: a sled store folder (`<data_dir>/store`) or `postgres`.
        #[arg(long)]
        from: String,
        /// Where it goes: `postgres`, or a new sled store folder.
        #[arg(long)]
        to: String,
        /// A file holding the database connection string.
        #[arg(long)]
        url_file: Option<PathBuf>,
        /// Or the environment variable holding it.
        #[arg(long)]
        url_env: Option<String>,
        /// The database server's CA (TLS to the database).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
}

pub fn run(command: StoreCommand) -> Result<()> {
    match command {
        StoreCommand::Compact { config, keep_old } => compact_store(&config, keep_old),
        StoreCommand::Restored { config } => restored(&config),
        StoreCommand::Migrate {
            from,
            to,
            url_file,
            url_env,
            ca_cert,
        } => {
            let section = PostgresSection {
                url_file,
                url_env,
                ca_cert,
                pool_size: 2,
                ..PostgresSection::default()
            };
            migrate_store(&from, &to, &section)
        }
    }
}

fn restored(config: &Path) -> Result<()> {
    let config = BrokerConfig::load(config)?;
    let store = open_store(&config)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let incarnation = deconflict_broker::ledger::renew_incarnation(store.as_ref(), now)?;
    println!(
        "the alert queues start a new incarnation ({incarnation}); agency daemons re-read them \
         by themselves"
    );
    match deconflict_broker::ledger::audit::verify(store.as_ref())? {
        Verdict::Intact { records } => {
            println!("audit chain intact ({records} records)");
            Ok(())
        }
        Verdict::Broken { seq, reason } => {
            anyhow::bail!("the audit chain is BROKEN at record {seq}: {reason}")
        }
    }
}

fn open_side(side: &str, section: &PostgresSection, source: bool) -> Result<Box<dyn Store>> {
    if side == "postgres" {
        let options = postgres_options(section)?;
        return Ok(Box::new(PgStore::open(&options)?));
    }
    let dir = Path::new(side);
    if source && !dir.join("db").exists() && !dir.join("conf").exists() {
        anyhow::bail!(
            "{} is not a sled store folder (it should be <data_dir>/store of a stopped broker)",
            dir.display()
        );
    }
    if !source
        && dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        anyhow::bail!(
            "{} exists and is not empty: give a new folder to migrate into",
            dir.display()
        );
    }
    Ok(Box::new(SledStore::open(dir)?))
}

fn migrate_store(from: &str, to: &str, section: &PostgresSection) -> Result<()> {
    if (from == "postgres") == (to == "postgres") {
        anyhow::bail!(
            "give `postgres` as exactly one of --from and --to (the other is a sled store folder)"
        );
    }
    let source = open_side(from, section, true)?;
    let target = open_side(to, section, false)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let done = migrate(source.as_ref(), target.as_ref(), now)?;
    if done.resumed {
        println!("emptied the target an interrupted migration had left, and started over");
    }
    println!(
        "migrated {} records ({} operations) from {from} to {to}; audit chain of {} records \
         intact and ending where the source's does",
        done.records, done.operations, done.audit_records
    );
    Ok(())
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
