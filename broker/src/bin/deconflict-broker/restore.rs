//! `deconflict-broker restore`: a backup into an empty data folder, a new alert-queue
//! incarnation (so that no subscriber mistakes the numbers the restore gives out again for
//! ones it has seen), and the audit chain verified.

use std::path::Path;

use anyhow::{Context, Result};
use deconflict_broker::config::BrokerConfig;
use deconflict_broker::ledger::audit::Verdict;
use deconflict_broker::store::SledStore;

pub(crate) fn restore(config: &Path, from: &Path) -> Result<()> {
    let config = BrokerConfig::load(config)?;
    let target = config.server.data_dir.join("store");
    if target.exists() {
        anyhow::bail!(
            "{} already exists: restore only into an empty data folder (move the old one aside \
             first)",
            target.display()
        );
    }
    if !from.join("db").exists() && !from.join("conf").exists() {
        anyhow::bail!(
            "{} does not look like a backup (no sled files)",
            from.display()
        );
    }
    // Opening checks the backup's format version before anything is written.
    let source = SledStore::open(from)?;
    std::fs::create_dir_all(&config.server.data_dir)
        .with_context(|| format!("cannot create {}", config.server.data_dir.display()))?;
    let n = deconflict_broker::store::Store::export_to(&source, &target)?;
    let restored = SledStore::open(&target)?;
    // The restore hands out alert numbers again: subscribers must see that they start over.
    let incarnation = deconflict_broker::ledger::renew_incarnation(
        &restored,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )?;
    println!(
        "the alert queues start a new incarnation ({incarnation}); agency daemons re-read them by themselves"
    );
    match deconflict_broker::ledger::audit::verify(&restored)? {
        Verdict::Intact { records } => {
            println!(
                "restored {n} records into {}; audit chain intact ({records} records)",
                target.display()
            );
        }
        Verdict::Broken { seq, reason } => {
            println!(
                "restored {n} records, but the audit chain is BROKEN at record {seq}: {reason}"
            );
            std::process::exit(1);
        }
    }
    Ok(())
}
