//! A drill beside live traffic: the live check ratio (check vs an empty RPC, same run) without
//! a drill, then while a drill of 34 simulated provinces × 50 injects is played in the same
//! broker process as fast as the controller can (a four-hour script compressed into seconds,
//! far heavier than a real drill), with the injects it got through.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use deconflict_broker::identity::AgencyId;
use deconflict_broker::pki::dir::PkiDir;
use deconflict_drill::controller::{Controller, ControllerConfig};
use deconflict_drill::play::{PlayOptions, play};
use deconflict_drill::scenario::Scenario;
use deconfliction_tests::Federation;
use tonic::transport::Channel;

use crate::harness::Row;
use crate::parts::bench_baseline_and_check;

pub(crate) const ADMIN: &str = "bench-admin";
const PROVINCES: usize = 34;
const INJECTS: usize = 50;

fn party(p: usize) -> String {
    format!("sim-p{p:02}")
}

/// 34 provinces, each registering 50 operations on a phone; one in five of a province's
/// numbers is also its neighbour's, so the drill makes matches as well.
fn scenario() -> String {
    let mut s = String::from(
        "[drill]\nid = \"bench\"\nname = \"bench drill\"\nduration_minutes = 600\nlead_minutes = 0\nobserve_minutes = 1\n",
    );
    for p in 0..PROVINCES {
        let _ = write!(
            s,
            "\n[[party]]\nid = \"{}\"\nname = \"province {p}\"\n",
            party(p)
        );
    }
    for k in 0..INJECTS {
        for p in 0..PROVINCES {
            let owner = if k % 5 == 0 { p / 2 * 2 } else { p };
            let _ = write!(
                s,
                "\n[[inject]]\nat_minutes = {}\nparty = \"{}\"\naction = \"register\"\noperation = \"op{k}\"\nwindow = {{ days = 1 }}\nselectors = [{{ kind = \"phone\", text = \"+86 138 {:04} {:04}\" }}]\n",
                k * 4,
                party(p),
                owner,
                k
            );
        }
    }
    s
}

/// Certificates for the simulated provinces, where the controller looks for them.
pub(crate) fn issue_party_certs(fed: &Federation) {
    for p in 0..PROVINCES {
        let id = party(p);
        let cert = fed
            .pki
            .issue_agency(&AgencyId::parse(&id).unwrap(), 2)
            .unwrap();
        let dir = fed.dir.path().join("agencies").join(&id);
        PkiDir::save(&cert, &dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    }
}

fn controller_config(fed: &Federation, work: &Path) -> ControllerConfig {
    let admin = fed.agency_dir(ADMIN);
    ControllerConfig {
        broker: format!("https://127.0.0.1:{}", fed.addr().port()),
        server_name: Some("localhost".into()),
        ca: fed.dir.path().join("pki/ca.pem"),
        cert: admin.join("cert.pem"),
        key: admin.join("key.pem"),
        parties_dir: fed.dir.path().join("agencies"),
        work_dir: work.to_path_buf(),
    }
}

pub(crate) async fn bench_drill(fed: &Federation, ch: &Channel, secs: f64, rows: &mut Vec<Row>) {
    let c = 8;
    let mut without = Vec::new();
    bench_baseline_and_check(ch, c, secs, &mut without).await;
    for mut r in without {
        r.what = format!("{} (no drill)", r.what);
        rows.push(r);
    }
    let scenario = Scenario::parse(&scenario()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut controller = Controller::connect(controller_config(fed, work.path()))
        .await
        .unwrap();
    // Served for ten minutes; played with a scenario minute of a millisecond, so that the
    // injects go as fast as the controller can send them.
    let started = controller.start(&scenario, None, 1.0, 0).await.unwrap();
    let opts = PlayOptions {
        minute_seconds: 0.001,
        until_done: false,
        tick: Duration::from_millis(200),
    };
    let begun = Instant::now();
    let player = {
        let (scenario, started) = (scenario.clone(), started.clone());
        let dir = work.path().join("bench");
        tokio::spawn(async move {
            let played = play(&controller, &scenario, &started, dir, &opts).await;
            (controller, played, begun.elapsed())
        })
    };
    // The 34 simulated desks come up first; measure once the injects flow.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut with = Vec::new();
    bench_baseline_and_check(ch, c, secs, &mut with).await;
    let measured_until = begun.elapsed();
    let (mut controller, played, took) = player.await.unwrap();
    let played = played.unwrap();
    let ok = played.injects.iter().filter(|i| i.error.is_none()).count();
    eprintln!(
        "    drill: {ok} of {} injects played in {:.1} s ({:.0}/s), {} matches; the check was measured until {:.1} s",
        PROVINCES * INJECTS,
        took.as_secs_f64(),
        ok as f64 / took.as_secs_f64(),
        played.matches.len(),
        measured_until.as_secs_f64()
    );
    for mut r in with {
        r.what = format!(
            "{} (drill of {PROVINCES}×{INJECTS} injects running, {:.0} injects/s)",
            r.what,
            ok as f64 / took.as_secs_f64()
        );
        rows.push(r);
    }
    controller.end("bench").await.unwrap();
}
