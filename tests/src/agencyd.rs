//! agencyd's control API as tests use it: a client on the daemon's socket, its stored alerts,
//! and the sequence numbers its JSON-lines sink received.

use std::path::Path;
use std::process::Output;

use agency_client::control::{self, pb};
use agency_client::daemon::DaemonConfig;

/// A control-API client of a running agencyd.
pub type ControlClient = pb::agency_control_client::AgencyControlClient<tonic::transport::Channel>;

/// Connects to the daemon's control socket.
pub async fn control_client(config: &DaemonConfig) -> ControlClient {
    control::connect(&config.socket_path()).await.unwrap()
}

/// Every alert the daemon holds, acknowledged or not.
pub async fn alert_views(c: &mut ControlClient) -> Vec<pb::AlertView> {
    c.list_alerts(pb::ListAlertsRequest {
        include_acked: true,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .alerts
}

/// Waits (up to 30 s) for the daemon to hold an alert of `kind`; the first one.
pub async fn first_alert_of(c: &ControlClient, kind: pb::AlertKind, what: &str) -> pb::AlertView {
    crate::eventually(std::time::Duration::from_secs(30), what, || {
        let mut c = c.clone();
        async move {
            alert_views(&mut c)
                .await
                .into_iter()
                .find(|a| a.kind == kind as i32)
        }
    })
    .await
}

/// Every match alert the daemon holds.
pub async fn match_alert_views(c: &mut ControlClient) -> Vec<pb::AlertView> {
    alert_views(c)
        .await
        .into_iter()
        .filter(|a| a.kind == pb::AlertKind::Match as i32)
        .collect()
}

/// The `seq` of each line of a JSON-lines alert sink (none while the file does not exist).
/// Only a last line still being written (no newline yet) may be incomplete; any other line
/// that is not an alert fails the test.
pub fn sink_seqs(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["seq"].as_u64())
                .unwrap_or_else(|| panic!("{}: not an alert line: {line}", path.display()))
        })
        .collect()
}

/// Registers `selectors` through agencyd for `hours` and waits for the broker's confirmation;
/// the operation id.
pub async fn register_synced(
    c: &mut ControlClient,
    case: &str,
    selectors: Vec<pb::Selector>,
    hours: i64,
) -> String {
    let op = c
        .register(pb::RegisterRequest {
            operation_id: String::new(),
            case_reference: case.into(),
            window: Some(crate::window_hours(hours)),
            selectors,
            wait_ms: 20_000,
            source: String::new(),
            release_to: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(op.sync, pb::SyncState::Synced as i32, "{op:?}");
    op.operation_id
}

/// Runs the `deconflict` binary against the agencyd on `socket` (no colours), as a person
/// would.
pub async fn deconflict(socket: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--socket".to_string(), socket.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::deconflict_binary())
            .args(&all)
            .env_remove("DECONFLICT_SOCKET")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}
