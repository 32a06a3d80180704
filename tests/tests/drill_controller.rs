//! The exercise controller end to end: a scenario played with a simulated bureau against two
//! trainee desks (real agencyd daemons driven by the test as duty officers would), the
//! after-action report with their recorded times, and the `deconflict-drill` program itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::pb;
use deconflict_drill::controller::Controller;
use deconflict_drill::play::{PlayOptions, play};
use deconflict_drill::report::Verdict;
use deconflict_drill::scenario::{Reaction, Scenario};
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::{
    alert_views, control_client, deconflict, first_alert_of, register_synced,
};
use deconfliction_tests::drill::{
    SCENARIO, controller_config, drill_agencyd_config, drills_listed, federation, phone, plate,
};
use deconfliction_tests::eventually;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scenario_is_played_against_two_trainee_desks_and_reported() {
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let scenario = Scenario::parse(SCENARIO).unwrap();
    let config = controller_config(&fed, root.path());
    let work = config.work_dir.clone();
    let mut controller = Controller::connect(config).await.unwrap();
    // One scenario minute is a second here.
    let started = controller.start(&scenario, None, 1.0, 0).await.unwrap();
    let gd = drill_agencyd_config(&fed, "gd-psb", &root.path().join("gd"), &started);
    let gx = drill_agencyd_config(&fed, "gx-psb", &root.path().join("gx"), &started);
    let gd_daemon = agency_client::daemon::start(gd.clone()).await.unwrap();
    let gx_daemon = agency_client::daemon::start(gx.clone()).await.unwrap();
    let (mut cgd, mut cgx) = (control_client(&gd).await, control_client(&gx).await);
    // The trainees registered their own cases before the injects.
    register_synced(
        &mut cgd,
        "EXERCISE GD-1",
        vec![phone("+86 138 0013 8000")],
        48,
    )
    .await;
    register_synced(&mut cgx, "EXERCISE GX-1", vec![plate("云A12345")], 48).await;

    let opts = PlayOptions {
        minute_seconds: 1.0,
        until_done: true,
        tick: Duration::from_millis(100),
    };
    let player = {
        let scenario = scenario.clone();
        let started = started.clone();
        let work = work.join("route-1");
        tokio::spawn(async move {
            let r = play(&controller, &scenario, &started, work, &opts).await;
            (controller, r)
        })
    };

    // Guangdong's duty officer: sees the alert, acknowledges it, writes, discloses, resolves.
    let alert = first_alert_of(&cgd, pb::AlertKind::Match, "Guangdong's exercise alert").await;
    assert_eq!(alert.drill_id, "route-1", "every drill alert is marked");
    let socket = gd.socket_path();
    let refused = deconflict(&socket, &["alerts"]).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--drill route-1"));
    let shown = deconflict(&socket, &["--drill", "route-1", "alerts"]).await;
    assert!(shown.status.success(), "{shown:?}");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("[EXERCISE route-1]"));
    assert!(String::from_utf8_lossy(&shown.stderr).contains("EXERCISE"));
    let seq = alert.seq.to_string();
    let acked = deconflict(&socket, &["--drill", "route-1", "ack", &seq]).await;
    assert!(acked.status.success(), "{acked:?}");
    let id = alert.match_id.clone();
    cgd.send_message(pb::SendMessageRequest {
        match_id: id.clone(),
        text: "Guangdong here, who are you watching?".into(),
    })
    .await
    .unwrap();
    cgd.disclose(pb::DiscloseRequest {
        match_id: id.clone(),
        card: Some(v1::ContactCard {
            unit_name: "Guangdong narcotics (exercise)".into(),
            phone: "+86 20 0000 0000".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
    // The simulated bureau answered as scripted: its card and its reply.
    eventually(WAIT, "the simulated bureau's card and reply", || {
        let mut c = cgd.clone();
        async move {
            let a = alert_views(&mut c).await;
            let card = a.iter().any(|a| a.kind == pb::AlertKind::Contact as i32);
            let reply = a
                .iter()
                .any(|a| a.kind == pb::AlertKind::Message as i32 && a.text.contains("Yunnan here"));
            (card && reply).then_some(())
        }
    })
    .await;
    cgd.resolve_match(pb::ResolveMatchRequest {
        match_id: id.clone(),
        outcome: v1::MatchOutcome::Deconflicted as i32,
        note: String::new(),
    })
    .await
    .unwrap();
    // Guangxi's officer only acknowledges.
    first_alert_of(&cgx, pb::AlertKind::Match, "Guangxi's exercise alert").await;
    cgx.ack_alerts(pb::AckAlertsRequest {
        seqs: vec![],
        upto: u64::MAX,
    })
    .await
    .unwrap();

    let (mut controller, played) = tokio::time::timeout(Duration::from_secs(90), player)
        .await
        .expect("the scenario finishes once everything expected was done")
        .unwrap();
    let played = played.unwrap();
    let report = deconflict_drill::report::build(&scenario, &played);
    assert_eq!(report.summary.missed, 0, "{:#?}", report.summary);
    assert_eq!(report.summary.met, 7, "{:#?}", report.summary);
    let first = &report
        .injects
        .iter()
        .find(|i| i.number == 1)
        .unwrap()
        .responses;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].trainee, "gd-psb");
    for step in &first[0].steps {
        assert_eq!(step.verdict, Verdict::Met, "{step:?}");
        let at = step.at_unix.unwrap();
        assert!(at >= first[0].match_created_unix, "{step:?}");
    }
    let second = &report
        .injects
        .iter()
        .find(|i| i.number == 2)
        .unwrap()
        .responses;
    assert_eq!(second[0].trainee, "gx-psb");
    let gx_steps: Vec<(Reaction, Verdict)> = second[0]
        .steps
        .iter()
        .map(|s| (s.reaction, s.verdict))
        .collect();
    assert!(gx_steps.contains(&(Reaction::Acknowledge, Verdict::Met)));
    assert!(gx_steps.contains(&(Reaction::Resolve, Verdict::NotDone)));
    let gd_row = report
        .participants
        .iter()
        .find(|p| p.id == "gd-psb")
        .unwrap();
    assert_eq!((gd_row.matches, gd_row.met, gd_row.missed), (1, 5, 0));

    let out = root.path().join("aar");
    deconflict_drill::write_report(&out, &report).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("EXERCISE") && html.contains("<svg"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["exercise"], true);
    // Each participant's own report holds its rows only.
    let gx_page = std::fs::read_to_string(out.join("participants/gx-psb.html")).unwrap();
    assert!(gx_page.contains("EXERCISE") && !gx_page.contains(&id));
    let gx_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("participants/gx-psb.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(gx_json["participants"].as_array().unwrap().len(), 1);
    assert_eq!(gx_json["summary"]["met"], 2);
    assert!(
        !work.join("route-1").exists(),
        "the simulated bureaus' folders are removed"
    );

    controller.end("route-1").await.unwrap();
    gd_daemon.shutdown().await;
    gx_daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_binary_plays_a_scenario_ends_the_drill_and_writes_the_report() {
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let c = controller_config(&fed, root.path());
    let controller = root.path().join("controller.toml");
    std::fs::write(
        &controller,
        format!(
            "broker = \"{}\"\nserver_name = \"localhost\"\nca = \"{}\"\ncert = \"{}\"\nkey = \
             \"{}\"\nparties_dir = \"{}\"\nwork_dir = \"{}\"\n",
            c.broker,
            c.ca.display(),
            c.cert.display(),
            c.key.display(),
            c.parties_dir.display(),
            c.work_dir.display()
        ),
    )
    .unwrap();
    // No trainee is expected to do anything: the run ends after its last inject.
    let scenario = root.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        r#"
[drill]
id = "cli-run"
name = "CLI run"
duration_minutes = 60
lead_minutes = 0
observe_minutes = 1

[[party]]
id = "sim-yn"
name = "Yunnan (simulated)"

[[trainee]]
id = "gd-psb"
name = "Guangdong"

[[inject]]
at_minutes = 0
party = "sim-yn"
action = "register"
operation = "a"
window = { days = 1 }
selectors = [{ kind = "phone", text = "+86 138 5555 6666" }]

[[inject]]
at_minutes = 1
party = "sim-yn"
action = "check"
selectors = [{ kind = "phone", text = "+86 138 5555 6666" }]
"#,
    )
    .unwrap();
    let out_dir = root.path().join("aar");
    let bin = deconfliction_tests::workspace_binary("deconflict-drill");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["run", "--scenario"])
            .arg(&scenario)
            .arg("--controller")
            .arg(&controller)
            .arg("--out")
            .arg(&out_dir)
            .args(["--minute-seconds", "0.2", "--until-done"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("EXERCISE") && stderr.contains("[drill]"),
        "{stderr}"
    );
    assert!(stdout.contains("drill cli-run ended"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("aar/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["summary"]["injects_played"], 2);
    // The check hit the party's own operation.
    assert_eq!(report["injects"][1]["count"], 1);
    let list = drills_listed(&fed).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].port, 0, "ended by the controller");
}
