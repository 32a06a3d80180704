//! Tokens and normalization: normalization per kind, the bare `voprf` batch evaluation
//! (in-process baseline), and the full token round trip per selector through gRPC over mTLS on
//! loopback against an in-process broker, as ratios against the baseline of the same run.
//!
//! ```text
//! cargo bench -p deconfliction-tests --bench tokens            # quick, well under 30 s
//! cargo bench -p deconfliction-tests --bench tokens -- --full  # longer budgets per figure
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use deconfliction_proto::v1;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use deconfliction_tests::{Federation, connect, pinned_key, write_token_seed};
use token_spec::normalize::{FederationParams, Selector, SelectorKind, canonical_forms_on};
use token_spec::token::{
    BlindedBatch, JointDeriver, PinnedKey, ShareAnswer, ShareService, TOKEN_SERVICE_INFO,
    TokenDeriver, derive_keypair_from_seed,
};

const BATCHES: [usize; 3] = [1, 8, 100];

/// Time budget of one figure.
#[derive(Clone, Copy)]
struct Budget {
    normalize: Duration,
    crypto: Duration,
    rpc: Duration,
}

/// Runs `f` until `budget` has passed (after a short warm-up); nanoseconds per call.
fn time_sync(budget: Duration, mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        f();
        n += 1;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn samples(kind: SelectorKind) -> Vec<Selector> {
    let s = |x: &str| x.to_owned();
    match kind {
        SelectorKind::Person => vec![
            Selector::Person {
                names: vec![s("Nguyễn Thị"), s("Minh Khai")],
                dob: s("1990-07-15"),
            },
            Selector::Person {
                names: vec![s("张伟")],
                dob: s("1985-03-02"),
            },
            Selector::Person {
                names: vec![s("Mary-Kate"), s("O'Brien")],
                dob: s("2000-02-29"),
            },
        ],
        SelectorKind::Phone => vec![
            Selector::Phone {
                text: s("138 0013 8000"),
                region: Some(s("CN")),
            },
            Selector::Phone {
                text: s("+86 871 6512 3456"),
                region: None,
            },
            Selector::Phone {
                text: s("(202) 555-0143 ext. 12"),
                region: Some(s("US")),
            },
        ],
        SelectorKind::Plate => vec![
            Selector::Plate {
                country: s("CN"),
                text: s("京A·12345"),
            },
            Selector::Plate {
                country: s("VN"),
                text: s("51F-123.45"),
            },
        ],
        SelectorKind::Vin => vec![
            Selector::Vin {
                text: s("1hgcm82633a004352"),
            },
            Selector::Vin {
                text: s("LSVAU2180N2183294"),
            },
        ],
        SelectorKind::Imei => vec![
            Selector::Imei {
                text: s("35-209900-176148-1"),
            },
            Selector::Imei {
                text: s("3520990017614823"),
            },
        ],
        SelectorKind::Email => vec![
            Selector::Email {
                text: s(" Zhang.Wei@Example.CN "),
            },
            Selector::Email {
                text: s("someone@example.org"),
            },
        ],
        SelectorKind::Iban => vec![
            Selector::Iban {
                text: s("DE89 3704 0044 0532 0130 00"),
            },
            Selector::Iban {
                text: s("FR1420041010050500013M02606"),
            },
        ],
        SelectorKind::Wallet => vec![
            Selector::Wallet {
                chain: s("ETH"),
                address: s("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            },
            Selector::Wallet {
                chain: s("btc"),
                address: s("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ"),
            },
        ],
        SelectorKind::Handle => vec![
            Selector::Handle {
                platform: s("Telegram"),
                handle: s("@ZhangWei_88"),
            },
            Selector::Handle {
                platform: s("wechat"),
                handle: s("wxid_k3j9x2"),
            },
        ],
        SelectorKind::Address => vec![
            Selector::Address {
                country: s("CN"),
                text: s("北京市朝阳区建国路88号"),
            },
            Selector::Address {
                country: s("VN"),
                text: s("123 Đường Lê Lợi, Quận 1, TP. Hồ Chí Minh"),
            },
        ],
        SelectorKind::Geo => vec![
            Selector::Geo {
                lat: 25.0389,
                lng: 102.7183,
            },
            Selector::Geo {
                lat: 39.9042,
                lng: 116.4074,
            },
        ],
        SelectorKind::Cnid => vec![
            Selector::Cnid {
                text: s("110105 19491231 002x"),
            },
            Selector::Cnid {
                text: s("110105491231002"),
            },
        ],
        SelectorKind::Passport => vec![
            Selector::Passport {
                country: s("cn"),
                text: s("e 1234 5678"),
            },
            Selector::Passport {
                country: s("TH"),
                text: s("AA-1234567"),
            },
        ],
        SelectorKind::Permit => vec![
            Selector::Permit {
                permit_type: s("hkmo"),
                text: s("H1234567801"),
            },
            Selector::Permit {
                permit_type: s("tw"),
                text: s("1234567802(B)"),
            },
            Selector::Permit {
                permit_type: s("cnhkmo"),
                text: s("CA1234567"),
            },
        ],
        SelectorKind::Card => vec![
            Selector::Card {
                text: s("6228 4800 1234 5678 901"),
            },
            Selector::Card {
                text: s("6222-0212-3456-7890"),
            },
        ],
        SelectorKind::Org => vec![
            Selector::Org {
                text: s("91350100M000100Y43"),
            },
            Selector::Org {
                text: s("91350100 m000100y4 3"),
            },
        ],
    }
}

/// Persons whose names are written in Han ideographs: two forms each (as written, Pinyin).
fn han_names() -> Vec<Selector> {
    [
        ("张小明", "1985-03-02"),
        ("欧阳娜娜", "1993-10-16"),
        ("单田芳", "1954-12-17"),
    ]
    .into_iter()
    .map(|(name, dob)| Selector::Person {
        names: vec![name.to_owned()],
        dob: dob.to_owned(),
    })
    .collect()
}

/// `n` distinct canonical forms, as an agency would send them.
fn forms(n: usize, round: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("dcf1\0phone\0+86138{round:04}{i:04}").into_bytes())
        .collect()
}

struct Row {
    batch: usize,
    bare: f64,
    blind: f64,
    finalize: f64,
    in_process: f64,
    evaluate_rpc: f64,
    grpc: f64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--full");
    let budget = if full {
        Budget {
            normalize: Duration::from_secs(1),
            crypto: Duration::from_secs(2),
            rpc: Duration::from_secs(5),
        }
    } else {
        Budget {
            normalize: Duration::from_millis(150),
            crypto: Duration::from_millis(400),
            rpc: Duration::from_millis(1200),
        }
    };
    let started = Instant::now();
    println!(
        "tokens bench ({} mode, {} cores)\n",
        if full { "full" } else { "quick" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Normalization per kind.
    let params = FederationParams::default();
    let today = time::OffsetDateTime::now_utc().date();
    println!("| kind | ns/op | forms/op |");
    println!("|---|---:|---:|");
    let rows = SelectorKind::ALL
        .into_iter()
        .map(|kind| (kind.as_str().to_owned(), samples(kind)))
        .chain([("person (Han name, + Pinyin)".to_owned(), han_names())]);
    for (kind, inputs) in rows {
        let forms_per_op = canonical_forms_on(&inputs[0], &params, today)
            .unwrap()
            .len();
        let mut i = 0;
        let ns = time_sync(budget.normalize, || {
            let sel = &inputs[i % inputs.len()];
            i += 1;
            black_box(canonical_forms_on(black_box(sel), &params, today).unwrap());
        });
        println!("| {kind} | {ns:.0} | {forms_per_op} |");
    }

    // 2. The bare voprf batch evaluation (the server's work), per element, and the whole
    // protocol in-process (blind + evaluate + verify + finalize), per element.
    let seed = [7u8; 32];
    let service = derive_keypair_from_seed(&seed, TOKEN_SERVICE_INFO).unwrap();
    let pk = service.public_key();
    let mut rows: Vec<Row> = Vec::new();
    for batch in BATCHES {
        let inputs = forms(batch, 0);
        let blinded = BlindedBatch::blind(inputs.clone()).unwrap();
        let elements = blinded.blinded_elements().to_vec();
        let bare = time_sync(budget.crypto, || {
            black_box(service.evaluate(black_box(&elements)).unwrap());
        }) / batch as f64;
        let blind = time_sync(budget.crypto / 2, || {
            black_box(BlindedBatch::blind(black_box(inputs.clone())).unwrap());
        }) / batch as f64;
        // Verify + finalize alone: a fresh blinded batch per round, outside the clock.
        let finalize = {
            let (mut spent, mut n) = (Duration::ZERO, 0u64);
            while spent < budget.crypto / 2 || n < 3 {
                let b = BlindedBatch::blind(inputs.clone()).unwrap();
                let (evaluated, proof) = service.evaluate(b.blinded_elements()).unwrap();
                let t = Instant::now();
                black_box(b.finalize(&evaluated, &proof, &pk).unwrap());
                spent += t.elapsed();
                n += 1;
            }
            spent.as_nanos() as f64 / n as f64
        } / batch as f64;
        let in_process = time_sync(budget.crypto, || {
            let b = BlindedBatch::blind(inputs.clone()).unwrap();
            let (evaluated, proof) = service.evaluate(b.blinded_elements()).unwrap();
            black_box(b.finalize(&evaluated, &proof, &pk).unwrap());
        }) / batch as f64;
        rows.push(Row {
            batch,
            bare,
            blind,
            finalize,
            in_process,
            evaluate_rpc: 0.0,
            grpc: 0.0,
        });
    }

    // 2b. A joint token (two shares) in-process at batch 100: blind once, both evaluations,
    // both proofs verified, sum, unblind, finalize.
    let share_b = derive_keypair_from_seed(&[9u8; 32], TOKEN_SERVICE_INFO).unwrap();
    let pk_b = share_b.public_key();
    let joint_in_process = {
        let inputs = forms(JOINT_BATCH, 0);
        time_sync(budget.crypto, || {
            let b = BlindedBatch::blind(inputs.clone()).unwrap();
            let (ea, pa) = service.evaluate(b.blinded_elements()).unwrap();
            let (eb, pb) = share_b.evaluate(b.blinded_elements()).unwrap();
            black_box(
                b.finalize_joint(
                    ShareAnswer {
                        evaluated: &ea,
                        proof: &pa,
                        public_key: &pk,
                    },
                    ShareAnswer {
                        evaluated: &eb,
                        proof: &pb,
                        public_key: &pk_b,
                    },
                )
                .unwrap(),
            );
        }) / JOINT_BATCH as f64
    };

    // 3. Through gRPC, mTLS on loopback, in-process broker.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rpc_floor, cached, joint_grpc) = runtime.block_on(async {
        let mut fed = Federation::start_with(&["bench-psb"], |c| {
            write_token_seed(c, &seed);
            c.token_service.quota_per_minute = 1_000_000_000_000;
            c.token_service.quota_per_day = 1_000_000_000_000;
        })
        .await;
        assert_eq!(pinned_key(&fed.config).public_key(), &pk);
        let channel = fed.channel("bench-psb").await.unwrap();

        // The floor: an evaluation-free unary call over the same channel.
        let mut raw = TokenServiceClient::new(channel.clone());
        let floor = {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < budget.crypto || n < 3 {
                black_box(
                    raw.get_public_key(v1::GetPublicKeyRequest {})
                        .await
                        .unwrap(),
                );
                n += 1;
            }
            start.elapsed().as_nanos() as f64 / n as f64
        };

        // Evaluate alone over the wire: pre-blinded elements, no client-side curve work.
        for row in &mut rows {
            let blinded: Vec<Vec<u8>> = BlindedBatch::blind(forms(row.batch, 0))
                .unwrap()
                .blinded_elements()
                .iter()
                .map(|e| e.to_vec())
                .collect();
            let epoch = pinned_key(&fed.config).epoch();
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < budget.rpc / 2 || n < 3 {
                let request = v1::EvaluateRequest {
                    blinded_elements: blinded.clone(),
                    key_epoch: epoch,
                };
                black_box(raw.evaluate(request).await.unwrap());
                n += 1;
            }
            row.evaluate_rpc = start.elapsed().as_nanos() as f64 / (n * row.batch as u64) as f64;
        }

        for row in &mut rows {
            let mut deriver = TokenDeriver::from_channel(channel.clone(), pinned_key(&fed.config))
                .with_batch_size(row.batch)
                .with_max_cache_entries(0);
            let mut round = 0u64;
            // Warm-up.
            for _ in 0..3 {
                round += 1;
                deriver.tokens(&forms(row.batch, round)).await.unwrap();
            }
            let start = Instant::now();
            let mut selectors = 0u64;
            while start.elapsed() < budget.rpc || selectors < 3 * row.batch as u64 {
                round += 1;
                let batch = forms(row.batch, round % 10_000);
                black_box(deriver.tokens(&batch).await.unwrap());
                selectors += row.batch as u64;
            }
            row.grpc = start.elapsed().as_nanos() as f64 / selectors as f64;
        }

        // A cached selector: no call at all.
        let mut deriver = TokenDeriver::from_channel(channel.clone(), pinned_key(&fed.config));
        let warm = forms(100, 1);
        deriver.tokens(&warm).await.unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget.crypto / 4 || n < 3 {
            black_box(deriver.tokens(&warm).await.unwrap());
            n += 100;
        }
        let cached = start.elapsed().as_nanos() as f64 / n as f64;

        // A joint token through gRPC: the broker's token service as share A, a stand-alone
        // one as share B, both called at once by the JointDeriver.
        let b_service = share_b_service(&fed).await;
        let (cert, key) = fed.agency_pem("bench-psb");
        let b_channel = connect(b_service.addr, &fed.ca_pem(), Some((&cert, &key)))
            .await
            .unwrap();
        let mut joint = JointDeriver::new(
            ShareService::from_channel(channel.clone(), pinned_key(&fed.config)),
            ShareService::from_channel(b_channel, PinnedKey::new(pk_b, 1).unwrap()),
        )
        .with_batch_size(JOINT_BATCH);
        let mut round = 20_000u64;
        for _ in 0..3 {
            round += 1;
            joint.tokens(&forms(JOINT_BATCH, round)).await.unwrap();
        }
        let start = Instant::now();
        let mut selectors = 0u64;
        while start.elapsed() < budget.rpc || selectors < 3 * JOINT_BATCH as u64 {
            round += 1;
            black_box(joint.tokens(&forms(JOINT_BATCH, round)).await.unwrap());
            selectors += JOINT_BATCH as u64;
        }
        let joint_grpc = start.elapsed().as_nanos() as f64 / selectors as f64;
        b_service.shutdown().await;
        fed.stop_broker().await;
        (floor, cached, joint_grpc)
    });

    println!();
    println!(
        "| batch | bare voprf evaluate (server) | client blind | client verify + finalize | in-process total | Evaluate RPC alone | gRPC round trip | round trip / bare | round trip / in-process |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            r.batch,
            r.bare / 1e3,
            r.blind / 1e3,
            r.finalize / 1e3,
            r.in_process / 1e3,
            r.evaluate_rpc / 1e3,
            r.grpc / 1e3,
            r.grpc / r.bare,
            r.grpc / r.in_process
        );
    }
    println!("(µs per element / per selector)");
    let base = rows.last().map_or(1.0, |r| r.bare);
    println!();
    println!("| reference | µs | / bare evaluate at batch 100 |");
    println!("|---|---:|---:|");
    println!(
        "| unary GetPublicKey over mTLS (no evaluation) | {:.1} | {:.2} |",
        rpc_floor / 1e3,
        rpc_floor / base
    );
    println!(
        "| cached selector (no call) | {:.3} | {:.4} |",
        cached / 1e3,
        cached / base
    );
    if let Some(home) = rows.iter().find(|r| r.batch == JOINT_BATCH) {
        println!();
        println!(
            "| joint token at batch {JOINT_BATCH} (two shares) | µs | home token, same run | joint / home | goal |"
        );
        println!("|---|---:|---:|---:|---|");
        println!(
            "| in-process | {:.1} | {:.1} | {:.2} | |",
            joint_in_process / 1e3,
            home.in_process / 1e3,
            joint_in_process / home.in_process
        );
        println!(
            "| gRPC round trip (both services at once) | {:.1} | {:.1} | {:.2} | ≤ 2.2 |",
            joint_grpc / 1e3,
            home.grpc / 1e3,
            joint_grpc / home.grpc
        );
    }
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
}

const JOINT_BATCH: usize = 100;

/// A stand-alone token service serving the second share (seed 9…9) beside `fed`'s broker.
async fn share_b_service(fed: &Federation) -> deconflict_broker::server::RunningBroker {
    let root = fed.dir.path().join("share-b");
    let mut c = fed.service_config(&root, "share-b");
    c.token_service.quota_per_minute = 1_000_000_000_000;
    c.token_service.quota_per_day = 1_000_000_000_000;
    write_token_seed(&c, &[9u8; 32]);
    deconflict_broker::server::start(&c, deconflict_broker::server::Mode::TokenServiceOnly)
        .await
        .unwrap()
}
