//! `deconflict-broker drill`: start, halt, end and list the exercises a running broker serves
//! beside the live federation (needs an admin certificate). `start` prints what each
//! participant adds to a second agencyd's configuration.

use anyhow::Result;
use clap::Subcommand;
use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;

use crate::remote::{Connection, channel, status, when};

#[derive(Subcommand, Debug)]
pub enum DrillCommand {
    /// Start a drill: its own port, token key, pepper and store, beside the live federation.
    #[command(
        after_help = "Example:\n  deconflict-broker drill --ca ca.pem --cert admin.pem --key admin.key start --id mekong-2026-12 --name \"Mekong route\" --hours 8 --port 7450"
    )]
    Start {
        /// 1 to 40 lower-case letters, digits or '-'; never reused on this broker.
        #[arg(long)]
        id: String,
        /// What people call it (shown to every participant).
        #[arg(long, default_value = "")]
        name: String,
        /// How long it runs; it is ended and purged at the end without anyone asking.
        #[arg(long, default_value_t = 8.0)]
        hours: f64,
        /// The port participants connect to (0: any free port, printed).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// A simulated bureau the controller plays, as ID or "ID=Name" (repeatable); it
        /// needs a certificate of the federation CA like any agency.
        #[arg(long = "simulated", value_name = "ID[=NAME]")]
        simulated: Vec<String>,
    },
    /// The "real world" break-out: the drill takes nothing new and every participant is told
    /// at once, with the reason.
    #[command(
        after_help = "Example:\n  deconflict-broker drill --ca ca.pem --cert admin.pem --key admin.key halt --id mekong-2026-12 --reason \"real incident in Mengla, all units to live operations\""
    )]
    Halt {
        /// The drill's id.
        #[arg(long)]
        id: String,
        /// What every participant reads at once (why, and what to do).
        #[arg(long)]
        reason: String,
    },
    /// End a drill now: participants are told, then its data is purged.
    #[command(
        after_help = "Example:\n  deconflict-broker drill --ca ca.pem --cert admin.pem --key admin.key end --id mekong-2026-12"
    )]
    End {
        /// The drill's id.
        #[arg(long)]
        id: String,
    },
    /// Every drill this broker served, running or ended.
    #[command(
        after_help = "Example:\n  deconflict-broker drill --ca ca.pem --cert admin.pem --key admin.key list"
    )]
    List,
}

pub async fn run(conn: Connection, command: DrillCommand) -> Result<()> {
    let mut admin = AdminClient::new(channel(&conn).await?);
    match command {
        DrillCommand::Start {
            id,
            name,
            hours,
            port,
            simulated,
        } => {
            if !(hours > 0.0 && hours.is_finite()) {
                anyhow::bail!("--hours must be more than 0");
            }
            let simulated = simulated
                .iter()
                .map(|s| {
                    let (id, name) = s.split_once('=').unwrap_or((s, ""));
                    v1::EnrolAgencyRequest {
                        agency_id: id.trim().to_owned(),
                        role: v1::Role::Agency as i32,
                        display_name: name.trim().to_owned(),
                    }
                })
                .collect();
            let s = admin
                .start_drill(v1::StartDrillRequest {
                    drill_id: id,
                    name,
                    duration_seconds: (hours * 3600.0).round() as u64,
                    port: u32::from(port),
                    simulated,
                })
                .await
                .map_err(status)?
                .into_inner();
            print_started(&conn, &s);
        }
        DrillCommand::Halt { id, reason } => {
            let s = admin
                .halt_drill(v1::HaltDrillRequest {
                    drill_id: id,
                    reason,
                })
                .await
                .map_err(status)?
                .into_inner();
            print_status(&[s], conn.json);
        }
        DrillCommand::End { id } => {
            let r = admin
                .end_drill(v1::EndDrillRequest { drill_id: id })
                .await
                .map_err(status)?
                .into_inner();
            if conn.json {
                println!(
                    "{}",
                    serde_json::json!({"drill_id": r.drill_id, "records_purged": r.records_purged})
                );
            } else {
                println!(
                    "drill {} ended: participants told, {} records purged",
                    r.drill_id, r.records_purged
                );
            }
        }
        DrillCommand::List => {
            let list = admin
                .list_drills(v1::ListDrillsRequest {})
                .await
                .map_err(status)?
                .into_inner();
            print_status(&list.drills, conn.json);
        }
    }
    Ok(())
}

fn host_of(broker: &str) -> &str {
    let rest = broker.split("://").nth(1).unwrap_or(broker);
    match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(rest),
        None => rest.split([':', '/']).next().unwrap_or(rest),
    }
}

fn print_started(conn: &Connection, s: &v1::DrillStatus) {
    let info = s.info.clone().unwrap_or_default();
    let key = hex::encode(&s.token_service_public_key);
    if conn.json {
        println!(
            "{}",
            serde_json::json!({
                "drill_id": info.drill_id, "name": info.name, "port": s.port,
                "ends_unix": info.ends_unix, "token_service_public_key": key,
                "token_service_key_epoch": s.token_service_key_epoch,
            })
        );
        return;
    }
    let host = host_of(&conn.broker);
    println!(
        "drill {} started on port {}, until {}",
        info.drill_id,
        s.port,
        when(info.ends_unix)
    );
    println!(
        "Each participant runs a second agencyd (its own data folder and socket) with:\n\n\
         [drill]\nid = \"{id}\"\n\n[broker]\naddress = \"{host}:{port}\"\n\n\
         [token_service]\npublic_key = \"{key}\"\nkey_epoch = {epoch}\n\n\
         and acts in it with `deconflict --drill {id} --socket <that socket> ...`.",
        id = info.drill_id,
        port = s.port,
        epoch = s.token_service_key_epoch,
    );
}

fn print_status(list: &[v1::DrillStatus], json: bool) {
    for s in list {
        let info = s.info.clone().unwrap_or_default();
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "drill_id": info.drill_id, "name": info.name, "port": s.port,
                    "running": s.port != 0, "starts_unix": info.starts_unix,
                    "ends_unix": info.ends_unix, "halted": info.halted,
                    "halt_reason": info.halt_reason,
                })
            );
            continue;
        }
        let state = match (s.port != 0, info.halted) {
            (true, false) => format!("running on port {}", s.port),
            (true, true) => format!("HALTED ({}) on port {}", info.halt_reason, s.port),
            (false, _) => "ended, purged".to_owned(),
        };
        println!(
            "{:<24}  {:<17}  {:<17}  {state}  {}",
            info.drill_id,
            when(info.starts_unix),
            when(info.ends_unix),
            info.name
        );
    }
}
