//! `deconflict-broker pepper`: show the pepper layers a store is keyed with, and re-key a
//! stopped broker's store under a new pepper layer into a new data folder.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use deconflict_broker::config::BrokerConfig;
use deconflict_broker::ledger::audit::Verdict;
use deconflict_broker::ledger::rekey::rekey;
use deconflict_broker::secrets::file::load_or_create_secret;
use deconflict_broker::secrets::pepper::{Pepper, PepperLayer};
use deconflict_broker::store::SledStore;

#[derive(Subcommand, Debug)]
pub enum PepperCommand {
    /// Print the fingerprint of each configured pepper file and whether the store agrees.
    #[command(after_help = "Example:\n  deconflict-broker pepper show --config broker.toml")]
    Show {
        /// The broker's configuration.
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
    },
    /// With the broker stopped: copy its store into a new data folder, re-keyed under a new
    /// pepper layer. The old folder and the pepper files are left untouched.
    #[command(
        after_help = "Example:\n  deconflict-broker pepper rekey --config broker.toml --to /var/lib/deconflict/data-2 --new-pepper /etc/deconflict/pepper-2"
    )]
    Rekey {
        /// The stopped broker's configuration.
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
        /// The new data folder (must not exist, or be empty).
        #[arg(long)]
        to: PathBuf,
        /// The new pepper file: created (32 random bytes, mode 0600) if absent.
        #[arg(long)]
        new_pepper: PathBuf,
    },
}

pub fn run(command: PepperCommand) -> Result<()> {
    match command {
        PepperCommand::Show { config } => show(&config),
        PepperCommand::Rekey {
            config,
            to,
            new_pepper,
        } => rekey_into(&config, &to, &new_pepper),
    }
}

fn load(config: &Path) -> Result<(BrokerConfig, Pepper)> {
    let config = BrokerConfig::load(config)?;
    let pepper = Pepper::load_existing(&config.secrets.pepper, &config.secrets.pepper_rekeys)?;
    Ok((config, pepper))
}

fn show(config: &Path) -> Result<()> {
    let (config, pepper) = load(config)?;
    for (path, fp) in config
        .secrets
        .pepper_paths()
        .iter()
        .zip(pepper.fingerprints_hex())
    {
        println!("layer fingerprint {fp}  {}", path.display());
    }
    let store = deconflict_broker::server::open_store(&config)?;
    match pepper.verify(store.as_ref(), &config.secrets.pepper_paths())? {
        true => println!("the store at {} agrees", config.server.data_dir.display()),
        false => println!(
            "the store at {} records no fingerprint yet (the broker records it at its next start)",
            config.server.data_dir.display()
        ),
    }
    Ok(())
}

fn rekey_into(config_path: &Path, to: &Path, new_pepper: &Path) -> Result<()> {
    let (config, old) = load(config_path)?;
    // Printed into the configuration below, so absolute whatever folder the file is in.
    let to = &std::path::absolute(to)?;
    let new_pepper = &std::path::absolute(new_pepper)?;
    if config.store.backend == deconflict_broker::config::StoreBackend::Postgres {
        bail!(
            "the re-key writes a new sled store beside the old one; for a ledger on PostgreSQL, \
             stop every replica, `store migrate` it into a sled folder, re-key that, and migrate \
             the result into an empty database (docs/operations.md)"
        );
    }
    let data = &config.server.data_dir;
    let source_dir = data.join("store");
    if !source_dir.exists() {
        bail!(
            "no store at {} (check server.data_dir)",
            source_dir.display()
        );
    }
    refuse_unusable_target(to, data)?;
    // Opening takes the store's lock: a running broker makes this fail with "stop it first".
    let source = SledStore::open(&source_dir)?;
    if !old.verify(&source, &config.secrets.pepper_paths())? {
        eprintln!(
            "note: the store records no pepper fingerprint (written before they were kept); \
             trusting the configured pepper"
        );
    }
    let existed = new_pepper.exists();
    let layer = PepperLayer::from_bytes(load_or_create_secret(new_pepper, "new pepper")?);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    let target_dir = to.join("store");
    let target = SledStore::open(&target_dir)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let report = rekey(&source, &target, &old, &layer, now)?;
    drop(target);

    // Read back what was written, as the broker will.
    let target = SledStore::open(&target_dir)?;
    let new = old.with_layer(layer);
    let mut paths = config.secrets.pepper_paths();
    paths.push(new_pepper.to_owned());
    if !new.verify(&target, &paths)? {
        bail!("the re-keyed store records no pepper fingerprint; do not use it");
    }
    let records = match deconflict_broker::ledger::audit::verify(&target)? {
        Verdict::Intact { records } => records,
        Verdict::Broken { seq, reason } => {
            bail!("the re-keyed store's audit chain is BROKEN at record {seq}: {reason}")
        }
    };
    println!(
        "re-keyed {} records ({} index tokens, {} operations, {} matches) into {}; audit chain \
         intact ({records} records)",
        report.records,
        report.tokens,
        report.operations,
        report.matches,
        to.display()
    );
    println!(
        "new pepper layer {} ({}, fingerprint {})",
        new_pepper.display(),
        if existed { "existing file" } else { "created" },
        new.fingerprints_hex().last().cloned().unwrap_or_default()
    );
    print_next_steps(config_path, to, &paths, data);
    Ok(())
}

/// The re-key writes only into a new, empty folder that is not the broker's own.
fn refuse_unusable_target(to: &Path, data: &Path) -> Result<()> {
    if same_place(to, data) {
        bail!("--to must be a new folder, not the broker's data folder");
    }
    if to.exists()
        && to
            .read_dir()
            .with_context(|| format!("cannot read {}", to.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: re-key into a new folder (delete what an interrupted re-key left \
             there first)",
            to.display()
        );
    }
    Ok(())
}

/// The two settings the operator changes before starting the broker on the new folder.
fn print_next_steps(config_path: &Path, to: &Path, paths: &[std::path::PathBuf], data: &Path) {
    let rekeys: Vec<String> = paths
        .iter()
        .skip(1)
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    println!(
        "\nNext, with the broker still stopped, set in {}:\n\n  [server]\n  data_dir = {:?}\n\n  \
         [secrets]\n  pepper_rekeys = [{}]\n\nthen start the broker. Keep every pepper file: \
         each layer is needed. The old data folder {} is untouched; once the broker serves \
         from the new one, destroy the old folder and every backup made before the re-key.",
        config_path.display(),
        to.display().to_string(),
        rekeys.join(", "),
        data.display()
    );
}

fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
