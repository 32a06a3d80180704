//! `deconflict-broker watch` and `deconflict-broker admin`: the watch centre's and the
//! administrator's views, over mTLS with their own certificates, against a running broker.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use deconflict_broker::console::config::BrokerLink;
use deconflict_broker::console::link::{endpoint, expected_name};
use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use deconfliction_proto::v1::oversight_client::OversightClient;
use tonic::transport::Channel;

/// How to reach the broker, and as whom.
#[derive(Args, Debug)]
pub struct Connection {
    /// Broker address, e.g. https://broker.example:7443
    #[arg(
        long,
        env = "DECONFLICT_BROKER_URL",
        default_value = "https://127.0.0.1:7443"
    )]
    pub(crate) broker: String,
    /// Federation CA certificate (PEM).
    #[arg(long, env = "DECONFLICT_CA")]
    ca: PathBuf,
    /// Your certificate (PEM), issued with the watch-centre or admin agency id.
    #[arg(long, env = "DECONFLICT_CERT")]
    cert: PathBuf,
    /// Your private key (PEM).
    #[arg(long, env = "DECONFLICT_KEY")]
    key: PathBuf,
    /// TLS server name to expect (default: the host of --broker).
    #[arg(long)]
    server_name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand, Debug)]
pub enum WatchCommand {
    /// Matches across the federation (metadata only).
    #[command(
        after_help = "Example:\n  deconflict-broker watch --ca ca.pem --cert watch.pem --key watch.key matches --unresolved-hours 24"
    )]
    Matches {
        /// Only matches still open after this many hours.
        #[arg(long, default_value_t = 0)]
        unresolved_hours: u32,
        /// Only matches involving this agency.
        #[arg(long)]
        agency: Option<String>,
        /// Also list resolved matches.
        #[arg(long)]
        include_resolved: bool,
    },
    /// Open operations, open matches and queued alerts, per agency.
    #[command(
        after_help = "Example:\n  deconflict-broker watch --ca ca.pem --cert watch.pem --key watch.key stats"
    )]
    Stats,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Enrol an agency (or change its role or name).
    #[command(
        after_help = "Example:\n  deconflict-broker admin --ca ca.pem --cert admin.pem --key admin.key enrol --agency gd-psb --name \"Guangdong PSB\""
    )]
    Enrol {
        /// The agency id, as in its certificate.
        #[arg(long)]
        agency: String,
        /// agency, watch-centre, admin or token-service (a stand-alone token service that
        /// mirrors the registry)
        #[arg(long, default_value = "agency")]
        role: String,
        /// The name people read (shown to the watch centre).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Suspend an agency: its calls are refused at once.
    #[command(
        after_help = "Example:\n  deconflict-broker admin --ca ca.pem --cert admin.pem --key admin.key suspend --agency gd-psb --reason \"key compromised\""
    )]
    Suspend {
        /// The agency id.
        #[arg(long)]
        agency: String,
        /// Why (shown to the agency on every refused call; at most 500 characters).
        #[arg(long)]
        reason: String,
        /// Also close its open operations now.
        #[arg(long)]
        close_operations: bool,
    },
    /// Lift a suspension.
    #[command(
        after_help = "Example:\n  deconflict-broker admin --ca ca.pem --cert admin.pem --key admin.key reinstate --agency gd-psb"
    )]
    Reinstate {
        /// The agency id.
        #[arg(long)]
        agency: String,
    },
    /// Every agency in the registry.
    #[command(
        after_help = "Example:\n  deconflict-broker admin --ca ca.pem --cert admin.pem --key admin.key list"
    )]
    List,
    /// Write a consistent copy of the store into a new folder on the broker's host, while it
    /// serves. Restore with `deconflict-broker restore`.
    #[command(
        after_help = "Example:\n  deconflict-broker admin --ca ca.pem --cert admin.pem --key admin.key backup --to /var/backups/deconflict/2026-12-05"
    )]
    Backup {
        /// A new folder below the broker's server.backup_root: a name relative to it, or an
        /// absolute path inside it (no symbolic links, no ..); it must not exist yet.
        #[arg(long)]
        to: String,
    },
}

pub(crate) async fn channel(c: &Connection) -> Result<Channel> {
    let link = BrokerLink {
        address: c.broker.clone(),
        server_name: c.server_name.clone(),
        ca: c.ca.clone(),
        cert: c.cert.clone(),
        key: c.key.clone(),
    };
    let name = expected_name(&link);
    let source = if c.server_name.is_some() {
        "--server-name"
    } else {
        "the host of --broker"
    };
    let connected = endpoint(&link)?
        .connect_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await;
    connected.map_err(|e| {
        let causes = causes(&e);
        if causes
            .iter()
            .any(|c| c.contains("NotValidForName") || c.contains("not valid for name"))
        {
            anyhow::anyhow!(
                "cannot reach the broker at {}: its certificate is not valid for {name} ({source}); \
                 give --server-name with a name the certificate holds",
                c.broker
            )
        } else {
            anyhow::anyhow!("cannot reach the broker at {}: {}", c.broker, causes.join(": "))
        }
    })
}

/// An error's causes, each once (tonic's transport errors repeat their cause).
fn causes(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !out.iter().any(|seen| seen.contains(&text)) {
            out.retain(|seen| !text.contains(seen.as_str()));
            out.push(text);
        }
        next = err.source();
    }
    out
}

pub(crate) fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("the broker refused: {} ({:?})", e.message(), e.code())
}

pub(crate) fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn kind_name(k: i32) -> String {
    v1::SelectorKind::try_from(k)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("SELECTOR_KIND_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| k.to_string())
}

pub async fn watch(conn: Connection, command: WatchCommand) -> Result<()> {
    let mut client = OversightClient::new(channel(&conn).await?);
    match command {
        WatchCommand::Matches {
            unresolved_hours,
            agency,
            include_resolved,
        } => {
            // Every page, in order.
            let mut list = v1::ListMatchesResponse::default();
            loop {
                let page = client
                    .list_matches(v1::ListMatchesRequest {
                        include_resolved,
                        unresolved_for_hours: unresolved_hours,
                        agency_id: agency.clone().unwrap_or_default(),
                        page_size: 0,
                        page_token: list.next_page_token.clone(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                list.matches.extend(page.matches);
                list.next_page_token = page.next_page_token;
                if list.next_page_token.is_empty() {
                    break;
                }
            }
            print_matches(&list, conn.json);
        }
        WatchCommand::Stats => {
            let s = client
                .get_statistics(v1::GetStatisticsRequest {})
                .await
                .map_err(status)?
                .into_inner();
            print_statistics(&s, conn.json);
        }
    }
    Ok(())
}

/// The watch centre's match list, as a table or as JSON lines.
fn print_matches(list: &v1::ListMatchesResponse, json: bool) {
    if json {
        for m in &list.matches {
            println!(
                "{}",
                serde_json::json!({
                    "match_id": m.match_id, "created_unix": m.created_unix,
                    "updated_unix": m.updated_unix,
                    "state": v1::MatchState::try_from(m.state).map(|s| s.as_str_name()).unwrap_or("?"),
                    "kinds": m.kinds.iter().map(|k| kind_name(*k)).collect::<Vec<_>>(),
                    "agencies": m.agency_ids, "shared_tokens": m.shared_tokens,
                    "progress": m.progress.iter().map(|p| serde_json::json!({
                        "agency": p.agency_id, "seen_unix": p.seen_unix,
                        "acknowledged_unix": p.acknowledged_unix,
                        "first_message_unix": p.first_message_unix, "messages": p.messages,
                        "disclosed_unix": p.disclosed_unix, "resolved_unix": p.resolved_unix,
                    })).collect::<Vec<_>>(),
                })
            );
        }
        return;
    }
    println!(
        "{:<36}  {:<17}  {:<8}  {:<24}  agencies",
        "match", "created", "state", "kinds"
    );
    for m in &list.matches {
        let state = if m.state == v1::MatchState::Resolved as i32 {
            "resolved"
        } else {
            "open"
        };
        let kinds: Vec<String> = m.kinds.iter().map(|k| kind_name(*k)).collect();
        let sides: Vec<String> = if m.progress.is_empty() {
            m.agency_ids.clone()
        } else {
            m.progress
                .iter()
                .map(|p| format!("{} {}", p.agency_id, progress_letters(p)))
                .collect()
        };
        println!(
            "{:<36}  {:<17}  {:<8}  {:<24}  {}",
            m.match_id,
            when(m.created_unix),
            state,
            kinds.join(","),
            sides.join(" + ")
        );
    }
    println!(
        "{} matches (each side: S seen by its agencyd, A acknowledged by an officer, M wrote, D \
         disclosed, R resolved; - not yet)",
        list.matches.len()
    );
}

/// `SA---`: what one side has done about a match, a letter per step.
fn progress_letters(p: &v1::MatchProgress) -> String {
    [
        (p.seen_unix, 'S'),
        (p.acknowledged_unix, 'A'),
        (p.first_message_unix, 'M'),
        (p.disclosed_unix, 'D'),
        (p.resolved_unix, 'R'),
    ]
    .iter()
    .map(|&(at, letter)| if at > 0 { letter } else { '-' })
    .collect()
}

/// Federation-wide and per-agency counts, as a table or as one JSON object.
fn print_statistics(s: &v1::Statistics, json: bool) {
    if json {
        let per: Vec<_> = s
            .agencies
            .iter()
            .map(|a| {
                serde_json::json!({"agency": a.agency_id, "open_operations": a.open_operations,
                    "open_matches": a.open_matches, "queued_alerts": a.queued_alerts})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"open_operations": s.open_operations, "open_matches": s.open_matches,
                "resolved_matches": s.resolved_matches, "agencies": per,
                "audit_checkpoint": s.audit_checkpoint, "audit_checkpoint_mac": s.audit_checkpoint_mac})
        );
        return;
    }
    println!(
        "open operations {}, open matches {}, resolved matches {}",
        s.open_operations, s.open_matches, s.resolved_matches
    );
    println!(
        "audit checkpoint {} (mac {}): keep it; `audit verify --expect-head` checks the log \
         still holds it",
        s.audit_checkpoint, s.audit_checkpoint_mac
    );
    println!(
        "{:<24}  {:>10}  {:>12}  {:>13}",
        "agency", "operations", "open matches", "queued alerts"
    );
    for a in &s.agencies {
        println!(
            "{:<24}  {:>10}  {:>12}  {:>13}",
            a.agency_id, a.open_operations, a.open_matches, a.queued_alerts
        );
    }
}

fn role(text: &str) -> Result<v1::Role> {
    Ok(match text {
        "agency" => v1::Role::Agency,
        "watch-centre" | "watch_centre" => v1::Role::WatchCentre,
        "admin" => v1::Role::Admin,
        "token-service" | "token_service" => v1::Role::TokenService,
        other => bail!("role {other:?} is not agency, watch-centre, admin or token-service"),
    })
}

/// A role as people say it and as `admin enrol --role` takes it.
fn role_words(role: i32) -> &'static str {
    match v1::Role::try_from(role) {
        Ok(v1::Role::Agency) => "agency",
        Ok(v1::Role::WatchCentre) => "watch-centre",
        Ok(v1::Role::Admin) => "admin",
        Ok(v1::Role::TokenService) => "token-service",
        _ => "unknown",
    }
}

fn print_record_header() {
    println!("{:<24}  {:<14}  {:<10}  name", "agency", "role", "state");
}

fn print_record(r: &v1::AgencyRecord, json: bool) {
    let role = role_words(r.role);
    if json {
        println!(
            "{}",
            serde_json::json!({"agency": r.agency_id, "role": role, "display_name": r.display_name,
                "suspended": r.suspended, "suspension_reason": r.suspension_reason})
        );
    } else {
        let state = if r.suspended {
            format!("SUSPENDED ({})", r.suspension_reason)
        } else {
            "active".into()
        };
        println!(
            "{:<24}  {:<14}  {:<10}  {}",
            r.agency_id, role, state, r.display_name
        );
    }
}

pub async fn admin(conn: Connection, command: AdminCommand) -> Result<()> {
    let mut client = AdminClient::new(channel(&conn).await?);
    match command {
        AdminCommand::Enrol {
            agency,
            role: r,
            name,
        } => {
            let rec = client
                .enrol_agency(v1::EnrolAgencyRequest {
                    agency_id: agency,
                    role: role(&r)? as i32,
                    display_name: name,
                })
                .await
                .map_err(status)?
                .into_inner();
            print_record(&rec, conn.json);
        }
        AdminCommand::Suspend {
            agency,
            reason,
            close_operations,
        } => {
            let rec = client
                .suspend_agency(v1::SuspendAgencyRequest {
                    agency_id: agency,
                    reason,
                    close_operations,
                })
                .await
                .map_err(status)?
                .into_inner();
            print_record(&rec, conn.json);
        }
        AdminCommand::Reinstate { agency } => {
            let rec = client
                .reinstate_agency(v1::ReinstateAgencyRequest { agency_id: agency })
                .await
                .map_err(status)?
                .into_inner();
            print_record(&rec, conn.json);
        }
        AdminCommand::Backup { to } => {
            let r = client
                .backup(v1::BackupRequest { directory: to })
                .await
                .map_err(status)?
                .into_inner();
            if conn.json {
                println!(
                    "{}",
                    serde_json::json!({"directory": r.directory, "records": r.records, "bytes": r.bytes})
                );
            } else {
                println!(
                    "backup of {} records ({} bytes) written to {}",
                    r.records, r.bytes, r.directory
                );
            }
        }
        AdminCommand::List => {
            if !conn.json {
                print_record_header();
            }
            let mut token = String::new();
            loop {
                let page = client
                    .list_agencies(v1::ListAgenciesRequest {
                        page_size: 0,
                        page_token: token,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                for r in &page.agencies {
                    print_record(r, conn.json);
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
    }
    Ok(())
}
