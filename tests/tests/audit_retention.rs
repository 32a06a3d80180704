//! The hash-chained audit log (verified and exported by the real CLI) and retention.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_chain_records_every_change_and_detects_tampering() {
    let mut fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let t = token();
    yn.register_operation(registration(vec![entry(&t, SelectorKind::Email, 1)]))
        .await
        .unwrap();
    let op = registration(vec![entry(&t, SelectorKind::Email, 2)]);
    gd.register_operation(op.clone()).await.unwrap();
    gd.check(v1::CheckRequest {
        window: Some(window_hours(1)),
        tokens: vec![entry(&token(), SelectorKind::Email, 0)],
    })
    .await
    .unwrap();
    let m = gd
        .get_operation(v1::GetOperationRequest {
            operation_id: op.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .match_ids[0]
        .clone();
    gd.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: "a body never audited".into(),
    })
    .await
    .unwrap();
    gd.close_operation(v1::CloseOperationRequest {
        operation_id: op.operation_id.clone(),
    })
    .await
    .unwrap();
    fed.stop_broker().await;

    let config = fed.write_config();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(broker_binary())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let c = config.to_str().unwrap();
    let (code, text) = run(&["audit", "verify", "--config", c]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("intact"), "{text}");
    let export = fed.dir.path().join("audit.jsonl");
    let (code, text) = run(&[
        "audit",
        "export",
        "--config",
        c,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let lines = std::fs::read_to_string(&export).unwrap();
    let actions: Vec<String> = lines.lines().map(serde_json_action).collect();
    for needed in ["register", "match_created", "checks", "message", "close"] {
        assert!(
            actions.iter().any(|a| a == needed),
            "no {needed} record in {actions:?}"
        );
    }
    assert!(!lines.contains("a body never audited"));
    assert!(!lines.contains(&hex::encode(&t)));

    // Alter one record in place: verify names it and fails.
    {
        use deconflict_broker::store::WriteBatch;
        let store = fed.open_store();
        use deconflict_broker::ledger::audit;
        let key = audit::key(3);
        let mut forged = audit::decode(&key, &store.get(&key).unwrap().unwrap()).unwrap();
        forged.actor.insert(0, 'x');
        let mut b = WriteBatch::default();
        b.put(key, audit::encode(&forged).unwrap());
        store.apply(b).unwrap();
        store.flush_blocking().unwrap();
    }
    let (code, text) = run(&["audit", "verify", "--config", c]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("BROKEN at record 3"), "{text}");
}

/// The `action` field of one exported JSON line.
fn serde_json_action(line: &str) -> String {
    let start = line.find("\"action\":\"").map(|i| i + 10).unwrap_or(0);
    line[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_ended_operations_resolved_matches_and_old_alerts() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb"], |c| {
        // About a second: everything ended is purged at the next sweep.
        c.retention.ended_operation_days = 1.0 / 86_400.0;
        c.retention.resolved_match_days = 1.0 / 86_400.0;
        c.retention.alert_days = 1.0 / 86_400.0;
        c.retention.sweep_seconds = 1;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let t = token();
    let a = registration(vec![entry(&t, SelectorKind::Handle, 1)]);
    yn.register_operation(a.clone()).await.unwrap();
    gd.register_operation(registration(vec![entry(&t, SelectorKind::Handle, 2)]))
        .await
        .unwrap();
    let m = yn
        .get_operation(v1::GetOperationRequest {
            operation_id: a.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .match_ids[0]
        .clone();
    gd.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: "to be forgotten".into(),
    })
    .await
    .unwrap();
    yn.disclose(v1::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Li")),
    })
    .await
    .unwrap();
    yn.resolve_match(v1::ResolveMatchRequest {
        match_id: m.clone(),
        outcome: v1::MatchOutcome::NoConflict as i32,
        note: String::new(),
    })
    .await
    .unwrap();
    // Everything delivered to Yunnan from here on, the purge's marker included.
    let mut watching = subscribe(&mut yn).await;
    yn.close_operation(v1::CloseOperationRequest {
        operation_id: a.operation_id.clone(),
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let gone_op = yn
            .get_operation(v1::GetOperationRequest {
                operation_id: a.operation_id.clone(),
            })
            .await
            .is_err_and(|e| e.code() == Code::NotFound);
        let gone_match = yn
            .get_match(v1::GetMatchRequest {
                match_id: m.clone(),
            })
            .await
            .is_err_and(|e| e.code() == Code::NotFound);
        let mut s = subscribe(&mut yn).await;
        let queued = drain(&mut s, Duration::from_millis(200)).await;
        if gone_op && gone_match && queued.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not purged: op {gone_op}, match {gone_match}, {} alerts",
            queued.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Yunnan was told its unread alerts were purged, and how many (the marker itself goes
    // silently at the next pass).
    let seen = drain(&mut watching, Duration::from_millis(200)).await;
    let marker = seen
        .iter()
        .find_map(|a| match &a.event {
            Some(v1::alert::Event::AlertsPurged(p)) => Some(*p),
            _ => None,
        })
        .expect("no marker for the purged alerts");
    assert!(marker.count >= 1, "{marker:?}");
    assert!(marker.first_seq <= marker.last_seq, "{marker:?}");
    // The open operation of the other agency stays.
    let open = gd
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.operations.len(), 1);
}

/// A checkpoint kept outside the broker (from the watch centre's view, with its MAC under a
/// key outside the store) catches what the chain alone cannot: records removed from the end,
/// and a chain rewritten from some point with fresh hashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_and_rechaining_are_caught_by_a_checkpoint_kept_outside() {
    use deconflict_broker::ledger::audit::{self, AuditEvent, AuditLog, Checkpoint};
    use deconflict_broker::store::WriteBatch;
    let mut fed = Federation::start_with(&["yn-psb", "gd-psb", "watch"], |c| {
        enrol_roles(c, &[("watch", "watch-centre")]);
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    for _ in 0..5 {
        yn.register_operation(registration(vec![entry(&token(), SelectorKind::Vin, 1)]))
            .await
            .unwrap();
    }
    let stats = v1::oversight_client::OversightClient::new(fed.channel("watch").await.unwrap())
        .get_statistics(v1::GetStatisticsRequest {})
        .await
        .unwrap()
        .into_inner();
    let checkpoint = Checkpoint::parse(&stats.audit_checkpoint).unwrap();
    assert!(checkpoint.seq >= 5, "{checkpoint:?}");
    // The MAC is the broker's: made with the key it keeps outside the store.
    let key: [u8; 32] = std::fs::read(&fed.config.secrets.audit_key)
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        stats.audit_checkpoint_mac,
        hex::encode(checkpoint.mac(&key))
    );
    fed.stop_broker().await;

    let config = fed.write_config();
    let c = config.to_str().unwrap().to_owned();
    let verify = |expect: Option<&str>| {
        let mut args = vec!["audit", "verify", "--config", &c];
        if let Some(e) = expect {
            args.extend(["--expect-head", e]);
        }
        let out = std::process::Command::new(broker_binary())
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let kept = stats.audit_checkpoint.clone();
    assert_eq!(verify(Some(&kept)).0, Some(0), "{}", verify(Some(&kept)).1);

    // Truncate: every record from the checkpoint on is removed. The chain alone still verifies.
    {
        let store = fed.open_store();
        let Ok(audit::Verdict::Intact { records }) = audit::verify(store.as_ref()) else {
            panic!("not intact before the attack");
        };
        let mut b = WriteBatch::default();
        for seq in checkpoint.seq..=records {
            b.delete(audit::key(seq));
        }
        store.apply(b).unwrap();
        store.flush_blocking().unwrap();
    }
    let (code, text) = verify(None);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = verify(Some(&kept));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN at record {}", checkpoint.seq))
            && text.contains("removed from the end"),
        "{text}"
    );

    // Re-chain: new records with valid hashes past the checkpoint's place.
    {
        let store = fed.open_store();
        let log = AuditLog::open(store.as_ref()).unwrap();
        let events = (0..3)
            .map(|_| AuditEvent::new("yn-psb", "register"))
            .collect();
        log.apply_with(store.as_ref(), WriteBatch::default(), events, 0)
            .unwrap();
        store.flush_blocking().unwrap();
    }
    let (code, text) = verify(None);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = verify(Some(&kept));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN at record {}", checkpoint.seq))
            && text.contains("rewritten"),
        "{text}"
    );
}
