//! The storage contract: what every journal store must do, run against the
//! embedded store (redb on real files with fsync) and against a real Apache
//! Cassandra (`PONTE_TEST_CQL=HOST:PORT`, which `scripts/test-all` starts and
//! sets). Each Cassandra test uses a keyspace of its own.
//!
//! Proved here, for both: records come back in order and numbered without
//! gaps after a reopen, empty records are skipped, big records and many
//! small ones (across Cassandra partitions) round-trip byte for byte, a
//! second writer cannot append beside the first, a switch engine on the
//! store rebuilds the same ledger after a restart, snapshots are kept
//! whole while trimming keeps every record after the one they cover, and
//! the archive answers by id and by cycle (below a position), adds late
//! returns, counts the ops written, and takes the same ops twice harmlessly.
//! Cassandra only: a writer fenced by a takeover can acknowledge nothing more
//! and its unacknowledged rows are never replayed; a keyspace created with
//! another replication factor than the address asks for is refused; of several nodes racing
//! for a new keyspace exactly one becomes the writer; the schema is created
//! and versioned, and a keyspace from a newer build is refused.

use ponte_ledger::{ArchiveOp, ArchivedTransfer, NumberedOp};
use ponte_switch::store::cql::{CqlConfig, CqlStore, RECORD_BYTES_MAX};
use ponte_switch::store::redb::Journal;
use ponte_switch::store::{Store, StoreError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A backend under test: opens the same store again and again.
trait Backend {
    fn name(&self) -> &'static str;
    fn open(&self) -> Box<dyn Store>;
    /// Opens a second writer while one is open: must fail.
    fn open_second(&self) -> Result<Box<dyn Store>, StoreError>;
}

struct Embedded(tempfile::TempDir);

impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }
    fn open(&self) -> Box<dyn Store> {
        Box::new(Journal::open(&self.0.path().join("journal.redb")).unwrap())
    }
    fn open_second(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(Journal::open(&self.0.path().join("journal.redb"))?))
    }
}

struct Cassandra(CqlConfig);

static KEYSPACES: AtomicU32 = AtomicU32::new(0);

/// A fresh keyspace on the test Cassandra, or None (with a notice) when
/// `PONTE_TEST_CQL` is not set.
fn cassandra(tag: &str) -> Option<Cassandra> {
    let Ok(address) = std::env::var("PONTE_TEST_CQL") else {
        eprintln!("SKIPPED on Cassandra: set PONTE_TEST_CQL=HOST:PORT (scripts/test-all does)");
        return None;
    };
    let n = KEYSPACES.fetch_add(1, Ordering::Relaxed);
    let keyspace = format!("contract_{tag}_{}_{n}", std::process::id());
    let mut config = CqlConfig::parse(&format!("cql://{address}/{keyspace}?lease_ttl_s=2&node=first")).unwrap();
    config.standby_wait_max = Some(Duration::from_secs(1));
    Some(Cassandra(config))
}

impl Backend for Cassandra {
    fn name(&self) -> &'static str {
        "cassandra"
    }
    fn open(&self) -> Box<dyn Store> {
        Box::new(CqlStore::open(self.0.clone()).unwrap())
    }
    fn open_second(&self) -> Result<Box<dyn Store>, StoreError> {
        let mut config = self.0.clone();
        config.node = "second".into();
        Ok(Box::new(CqlStore::open(config)?))
    }
}

fn for_each_backend(tag: &str, check: impl Fn(&dyn Backend)) {
    check(&Embedded(tempfile::tempdir().unwrap()));
    if let Some(cassandra) = cassandra(tag) {
        check(&cassandra);
    }
}

fn all_records(store: &mut dyn Store) -> Vec<(u64, Vec<u8>)> {
    let mut seen = Vec::new();
    let count = store
        .replay(0, &mut |seq, record| {
            seen.push((seq, record.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(count, seen.len() as u64);
    seen
}

#[test]
fn records_come_back_in_order_after_reopen_and_empty_ones_are_skipped() {
    for_each_backend("order", |backend| {
        {
            let mut store = backend.open();
            assert!(store.is_empty(), "{}", backend.name());
            store.append(&[b"one", b"two"]).unwrap();
            store.append(&[b"", b"three"]).unwrap();
            store.append(&[]).unwrap();
            assert_eq!(store.len(), 3, "{}", backend.name());
        }
        let mut store = backend.open();
        assert_eq!(store.len(), 3, "{}", backend.name());
        store.append(&[b"four"]).unwrap();
        drop(store);
        let mut store = backend.open();
        let expected: Vec<(u64, Vec<u8>)> =
            [&b"one"[..], b"two", b"three", b"four"].iter().enumerate().map(|(i, r)| (i as u64, r.to_vec())).collect();
        assert_eq!(all_records(store.as_mut()), expected, "{}", backend.name());
    });
}

fn records_from(store: &mut dyn Store, from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut seen = Vec::new();
    store
        .replay(from, &mut |seq, record| {
            seen.push((seq, record.to_vec()));
            Ok(())
        })
        .unwrap();
    seen
}

#[test]
fn snapshots_are_kept_whole_and_trimming_keeps_every_record_after_them() {
    for_each_backend("snapshots", |backend| {
        let name = backend.name();
        let records: Vec<Vec<u8>> = (0..1_000_u32).map(|n| n.to_le_bytes().repeat(3)).collect();
        {
            let mut store = backend.open();
            for group in records.chunks(100) {
                store.append(&group.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
            }
            let mut snapshots = store.snapshots().expect("keeps snapshots");
            assert_eq!(snapshots.list().unwrap(), Vec::<u64>::new(), "{name}");
            // Several megabytes: more than one part where parts are bounded.
            let big: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 251) as u8).collect();
            snapshots.save(600, &big).unwrap();
            snapshots.save(900, b"small").unwrap();
            assert_eq!(snapshots.list().unwrap(), vec![900, 600], "{name}");
            assert_eq!(snapshots.load(600).unwrap(), big, "{name}");
            assert_eq!(snapshots.load(900).unwrap(), b"small", "{name}");
            snapshots.trim(600).unwrap();
            snapshots.remove(600).unwrap();
            assert_eq!(snapshots.list().unwrap(), vec![900], "{name}");
            let mut read = Vec::new();
            snapshots
                .read(700, 703, &mut |seq, record| {
                    read.push((seq, record.to_vec()));
                    Ok(())
                })
                .unwrap();
            let expected: Vec<_> = (700..703).map(|i| (i as u64, records[i].clone())).collect();
            assert_eq!(read, expected, "{name}");
        }
        let mut store = backend.open();
        let first = store.first();
        assert!((1..=600).contains(&first), "{name}: the journal starts at {first} after trimming before 600");
        let expected: Vec<_> = (first as usize..1_000).map(|i| (i as u64, records[i].clone())).collect();
        assert_eq!(records_from(store.as_mut(), first), expected, "{name}");
        assert_eq!(records_from(store.as_mut(), 950), expected[950 - first as usize..].to_vec(), "{name}");
        store.append(&[b"next"]).unwrap();
        assert_eq!(store.len(), 1_001, "{name}");
    });
}

fn archived(position: u64, n: u32, cycle: u32, original: Option<ponte_domain::EndToEndId>) -> ArchivedTransfer {
    use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId, TransferState};
    let bank = |code| ParticipantId::new(code).unwrap();
    let account = |code| Account::new(bank(code), "1", "123", AccountType::Checking).unwrap();
    let kind = if original.is_some() { IdKind::Return } else { IdKind::Payment };
    let id = EndToEndId::from_parts(
        kind,
        bank(10000001),
        1_795_730_100_000,
        format!("{n:011}").as_bytes().try_into().unwrap(),
    );
    ArchivedTransfer {
        position,
        transfer: ponte_ledger::Transfer {
            id,
            payer: account(10000001),
            payee: account(10000002),
            amount: Amount::from_minor(1_000 + i64::from(n)),
            state: if cycle == 0 { TransferState::Rejected } else { TransferState::Settled },
            reason: (cycle == 0).then_some(ponte_domain::ReasonCode::PayeeTimeout),
            created_at: 1_795_730_100_000,
            settled_at: (cycle != 0).then_some(1_795_730_100_500),
            deadline: 0,
            digest: u128::from(n),
            returned: Amount::from_minor(i64::from(n % 3)),
            cycle,
        },
        original,
    }
}

#[test]
fn the_archive_answers_by_id_and_by_cycle_and_takes_ops_twice_harmlessly() {
    for_each_backend("archive", |backend| {
        let name = backend.name();
        // Positions 0..200: cycles 1 and 2, a few refused (no cycle); one
        // late return against position 5.
        let transfers: Vec<ArchivedTransfer> =
            (0..200_u32).map(|n| archived(u64::from(n), n, if n % 10 == 9 { 0 } else { 1 + n / 100 }, None)).collect();
        let mut ops: Vec<NumberedOp> = transfers
            .iter()
            .enumerate()
            .map(|(i, a)| NumberedOp { number: i as u64, op: ArchiveOp::Transfer(Box::new(a.clone())) })
            .collect();
        let late_id = archived(0, 9_999, 1, Some(transfers[5].transfer.id)).transfer.id;
        ops.push(NumberedOp {
            number: 200,
            op: ArchiveOp::LateReturn {
                original: transfers[5].transfer.id,
                original_cycle: 1,
                id: late_id,
                amount: ponte_domain::Amount::from_minor(7),
            },
        });
        {
            let store = backend.open();
            let archive = store.archive(90 * 86_400_000).unwrap().expect("keeps an archive");
            assert_eq!(archive.written().unwrap(), 0, "{name}");
            archive.write(&ops[..120]).unwrap();
            assert_eq!(archive.written().unwrap(), 120, "{name}");
            archive.write(&ops[105..120]).unwrap(); // again, cut elsewhere (a replay batches differently)
            assert_eq!(archive.written().unwrap(), 120, "{name}");
            archive.write(&ops[100..]).unwrap(); // 100..120 again
            assert_eq!(archive.written().unwrap(), 201, "{name}");
        }
        let store = backend.open();
        let archive = store.archive(90 * 86_400_000).unwrap().unwrap();
        assert_eq!(archive.written().unwrap(), 201, "{name}: after a reopen");
        let found = archive.transfer(&transfers[5].transfer.id).unwrap().expect("archived");
        assert_eq!(found.transfer, transfers[5], "{name}");
        assert_eq!(found.late, ponte_domain::Amount::from_minor(7), "{name}");
        assert_eq!(archive.transfer(&transfers[6].transfer.id).unwrap().unwrap().late, ponte_domain::Amount::ZERO);
        assert!(archive.transfer(&late_id).unwrap().is_none(), "{name}: never archived");
        let cycle = |cycle: u32, below: u64| {
            let mut seen = Vec::new();
            archive
                .cycle(cycle, below, &mut |a| {
                    seen.push((a.transfer.position, a.late));
                    Ok(())
                })
                .unwrap();
            seen
        };
        let one = cycle(1, 1_000);
        let expected: Vec<u64> = (0..100).filter(|n| n % 10 != 9).collect();
        assert_eq!(one.iter().map(|(p, _)| *p).collect::<Vec<_>>(), expected, "{name}: in position order");
        assert_eq!(one[5].1, ponte_domain::Amount::from_minor(7), "{name}: the late return shows by cycle too");
        let two_below = cycle(2, 150);
        let expected: Vec<u64> = (100..150).filter(|n| n % 10 != 9).collect();
        assert_eq!(two_below.iter().map(|(p, _)| *p).collect::<Vec<_>>(), expected, "{name}: below a position");
        assert!(cycle(3, 1_000).is_empty(), "{name}");
        // A page: from a position (inside a block), stopping once full.
        let page = |cycle: u32, from: u64, below: u64, limit: usize| {
            let mut seen = Vec::new();
            archive
                .cycle_from(cycle, from, below, &mut |a| {
                    seen.push(a.transfer.position);
                    Ok(seen.len() < limit)
                })
                .unwrap();
            seen
        };
        assert_eq!(page(1, 0, 1_000, 5), [0, 1, 2, 3, 4], "{name}: the first page");
        assert_eq!(page(1, 5, 1_000, 5), [5, 6, 7, 8, 10], "{name}: the next starts where it ended");
        assert_eq!(page(1, 95, 1_000, 5), [95, 96, 97, 98], "{name}: the last page is short");
        assert_eq!(page(2, 120, 1_000, 3), [120, 121, 122], "{name}: a later cycle from inside it");
        assert_eq!(page(2, 145, 150, 10), [145, 146, 147, 148], "{name}: below a position");
        assert!(page(2, 150, 150, 10).is_empty(), "{name}: an empty range");
        let mut by_pages = Vec::new();
        let mut from = 0;
        loop {
            let got = page(1, from, 1_000, 7);
            let Some(&last) = got.last() else { break };
            by_pages.extend(got);
            from = last + 1;
        }
        assert_eq!(by_pages, (0..100).filter(|n| n % 10 != 9).collect::<Vec<u64>>(), "{name}: pages make the whole");
    });
}

#[test]
fn the_archive_gives_back_an_envelopes_items_by_index_across_pieces() {
    use ponte_ledger::{ArchivedItems, ENVELOPE_PIECE_ITEMS, EnvelopeItem, ItemOutcome, ItemView};
    for_each_backend("envelopes", |backend| {
        let name = backend.name();
        let bank = |code| ponte_domain::ParticipantId::new(code).unwrap();
        let view = |index: u32| ItemView {
            index,
            item: EnvelopeItem {
                disbursement_id: format!("BOLSA-{index:07}"),
                beneficiary: ponte_ledger::Beneficiary::Account(
                    ponte_domain::Account::new(
                        bank(10000002),
                        "1",
                        &format!("{index}"),
                        ponte_domain::AccountType::Checking,
                    )
                    .unwrap(),
                ),
                amount: ponte_domain::Amount::from_minor(100 + i64::from(index)),
                narrative: "dezembro".into(),
            },
            outcome: if index % 7 == 3 {
                ItemOutcome::Failed { reason: ponte_domain::ReasonCode::DuplicatePayment, id: None }
            } else {
                ItemOutcome::Paid { id: archived(0, index, 1, None).transfer.id, at: 1_795_730_100_500 }
            },
            payee: None,
        };
        // Envelope 7: 10,000 items in pieces of ENVELOPE_PIECE_ITEMS, as the engine hands them.
        let count = 10_000;
        let ops: Vec<NumberedOp> = (0..count)
            .step_by(ENVELOPE_PIECE_ITEMS as usize)
            .enumerate()
            .map(|(number, first)| NumberedOp {
                number: number as u64,
                op: ArchiveOp::EnvelopeItems(Box::new(ArchivedItems {
                    number: 7,
                    agency: bank(10000001),
                    first,
                    completed_at: 1_795_730_100_000,
                    items: (first..count.min(first + ENVELOPE_PIECE_ITEMS)).map(view).collect(),
                })),
            })
            .collect();
        let store = backend.open();
        let archive = store.archive(90 * 86_400_000).unwrap().expect("keeps an archive");
        archive.write(&ops).unwrap();
        archive.write(&ops[1..]).unwrap(); // again: harmless
        for (from, to) in [(0, 5), (4_000, 4_200), (ENVELOPE_PIECE_ITEMS, ENVELOPE_PIECE_ITEMS + 1), (9_990, 10_000)] {
            let items = archive.envelope_items(7, from, to).unwrap();
            assert_eq!(items, (from..to).map(view).collect::<Vec<_>>(), "{name}: items {from}..{to}");
        }
        assert!(archive.envelope_items(8, 0, 10).unwrap().is_empty(), "{name}: another envelope");
        if name == "embedded" {
            // Retention: the items of envelopes complete before the cut go.
            archive.expire(1_795_730_100_001).unwrap();
            assert!(archive.envelope_items(7, 0, 10).unwrap().is_empty(), "{name}: past the retention");
        }
    });
}

#[test]
fn big_records_and_many_small_ones_round_trip_byte_for_byte() {
    for_each_backend("sizes", |backend| {
        let big: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let small: Vec<Vec<u8>> = (0..600_u32).map(|i| format!("record {i}").into_bytes()).collect();
        {
            let mut store = backend.open();
            store.append(&[&big]).unwrap();
            // Groups of different sizes, crossing Cassandra's 256-record partitions.
            for group in small.chunks(97) {
                let group: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
                store.append(&group).unwrap();
            }
        }
        let mut store = backend.open();
        let records = all_records(store.as_mut());
        assert_eq!(records.len(), 601, "{}", backend.name());
        assert!(records[0].1 == big, "{}: the 1 MiB record changed", backend.name());
        for (i, (seq, record)) in records.iter().enumerate().skip(1) {
            assert_eq!(*seq, i as u64);
            assert_eq!(record, &small[i - 1], "{} record {i}", backend.name());
        }
    });
}

#[test]
fn a_second_writer_cannot_append_beside_the_first() {
    for_each_backend("second", |backend| {
        let mut first = backend.open();
        first.append(&[b"mine"]).unwrap();
        let error = backend.open_second().err().unwrap_or_else(|| panic!("{}: a second writer opened", backend.name()));
        let text = error.to_string();
        assert!(text.contains("in use by another process") || text.contains("held by another node"), "{text}");
        first.append(&[b"still mine"]).unwrap();
        assert_eq!(first.len(), 2);
    });
}

#[test]
fn the_engine_rebuilds_the_same_ledger_from_the_store() {
    use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId};
    use ponte_ledger::{Decision, Engine, EngineConfig, Output, PaymentOrder, decode_events, op};

    for_each_backend("engine", |backend| {
        let now = 1_795_730_100_000_i64;
        let a = ParticipantId::new(10000001).unwrap();
        let b = ParticipantId::new(10000002).unwrap();
        let account = |p, n: &str| Account::new(p, "1", n, AccountType::Checking).unwrap();
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Output::default();
        let mut store = backend.open();
        for (id, name) in [(a, "A"), (b, "B")] {
            let command = op::RegisterParticipant { id, name: name.into(), net_debit_cap: Amount::units(1_000) };
            engine.execute(now, command, &mut out).unwrap();
        }
        engine.execute(now, op::InboxOpened(b), &mut out);
        let mut ids = Vec::new();
        for n in 0..50_i64 {
            let suffix = format!("{n:011}");
            let id = EndToEndId::from_parts(IdKind::Payment, a, now, suffix.as_bytes().try_into().unwrap());
            ids.push(id);
            let order = PaymentOrder {
                id,
                payer: account(a, "111"),
                payee: account(b, "222"),
                amount: Amount::from_minor(1_00 + n),
                remittance: String::new(),
                payee_key: None,
                lookup_by: None,
            };
            engine.execute(now, op::Submit(order), &mut out);
            // Accept every other payment; leave the rest reserved.
            if n % 2 == 0 {
                engine.execute(now, op::Answer { payee: b, id, decision: Decision::Accept }, &mut out);
            }
            store.append(&[&out.journal]).unwrap();
            out.clear();
        }
        drop(store);

        let mut rebuilt = Engine::new(EngineConfig::default());
        let mut store = backend.open();
        store
            .replay(0, &mut |_, record| {
                for event in decode_events(record) {
                    rebuilt.apply(&event.map_err(|e| e.to_string())?);
                }
                Ok(())
            })
            .unwrap();
        rebuilt.check_invariants().unwrap();
        let name = backend.name();
        assert_eq!(rebuilt.transfer_count(), 50, "{name}");
        let position = |e: &Engine, p| e.participant(p).unwrap().position;
        let expected: i64 = (0..50).step_by(2).map(|n| 1_00 + n).sum();
        assert_eq!(position(&rebuilt, b), Amount::from_minor(expected), "{name}");
        assert_eq!(position(&rebuilt, a), position(&engine, a), "{name}");
        assert_eq!(rebuilt.participant(a).unwrap().reserved, engine.participant(a).unwrap().reserved, "{name}");
        for id in ids {
            let state = |e: &Engine| e.transfer(&id).map(|t| t.state);
            assert_eq!(state(&rebuilt), state(&engine), "{name} {id}");
        }
    });
}

// ---- Cassandra only -------------------------------------------------------

#[test]
fn a_fenced_writer_acknowledges_nothing_and_its_rows_are_never_replayed() {
    let Some(Cassandra(config)) = cassandra("fenced") else { return };
    let mut first = CqlStore::open(config.clone()).unwrap();
    first.append(&[b"a0", b"a1", b"a2"]).unwrap();
    // The first writer hangs: it stops renewing its lease.
    first.stop_renewing_lease();
    let mut taker = config.clone();
    taker.node = "second".into();
    taker.standby_wait_max = Some(Duration::from_secs(10));
    let mut second = CqlStore::open(taker.clone()).unwrap();
    assert!(second.epoch() > first.epoch());
    assert_eq!(second.len(), 3);

    // The first wakes up and tries to append: refused, nothing acknowledged.
    let error = first.append(&[b"lost"]).unwrap_err();
    assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
    assert!(error.to_string().contains("second"), "names the new writer: {error}");
    // Its row at sequence 3 exists in the table but is beyond the head.
    let replay = |store: &mut CqlStore| all_records(store);
    assert_eq!(replay(&mut second).len(), 3);

    // The new writer writes over the same sequence number; its row wins.
    second.append(&[b"b3", b"b4"]).unwrap();
    assert!(first.append(&[b"lost again"]).is_err());
    drop(first);
    drop(second);
    taker.node = "third".into();
    let mut third = CqlStore::open(taker).unwrap();
    let records: Vec<Vec<u8>> = replay(&mut third).into_iter().map(|(_, r)| r).collect();
    assert_eq!(records, [&b"a0"[..], b"a1", b"a2", b"b3", b"b4"].map(|r| r.to_vec()));
}

#[test]
fn of_nodes_racing_for_a_new_keyspace_exactly_one_becomes_the_writer() {
    let Some(Cassandra(config)) = cassandra("race") else { return };
    let results: Vec<Result<CqlStore, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let mut config = config.clone();
                config.node = format!("racer{n}");
                scope.spawn(move || CqlStore::open(config))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let writers: Vec<&CqlStore> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        writers.len(),
        1,
        "writers: {writers:?}; errors: {:?}",
        results.iter().filter_map(|r| r.as_ref().err()).collect::<Vec<_>>()
    );
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(error.to_string().contains("held by another node"), "{error}");
    }
}

#[test]
fn the_schema_is_created_versioned_and_a_newer_one_is_refused() {
    let Some(Cassandra(config)) = cassandra("schema") else { return };
    drop(CqlStore::open(config.clone()).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let session =
            scylla::client::session_builder::SessionBuilder::new().known_nodes(&config.nodes).build().await.unwrap();
        let versions = session
            .query_unpaged(format!("SELECT version, description FROM {}.schema_migrations", config.keyspace), ())
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows::<(i32, String)>()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let mut numbers: Vec<i32> = versions.iter().map(|v| v.0).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2, 3, 4, 5], "{versions:?}");
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {}.schema_migrations (version, description) VALUES (99, 'from the future')",
                    config.keyspace
                ),
                (),
            )
            .await
            .unwrap();
    });
    let error = CqlStore::open(config).unwrap_err();
    assert!(matches!(error, StoreError::SchemaTooNew { found: 99, known: 5, .. }), "{error}");
    assert!(error.to_string().contains("upgrade this node"), "{error}");
}

#[test]
fn an_existing_keyspace_with_another_replication_factor_is_refused_not_silently_used() {
    let Some(Cassandra(config)) = cassandra("replication") else { return };
    drop(CqlStore::open(config.clone()).unwrap());
    let mut asking = config.clone();
    asking.replication_factor = 3;
    asking.replication_factor_asked = true;
    let error = CqlStore::open(asking).unwrap_err().to_string();
    assert!(
        error.contains("replication_factor 1") && error.contains("asks for 3") && error.contains("ALTER KEYSPACE"),
        "{error}"
    );
    // Without the option the keyspace's own factor is used, as before.
    let mut unasked = config;
    unasked.replication_factor = 3;
    unasked.replication_factor_asked = false;
    drop(CqlStore::open(unasked).unwrap());
}

#[test]
fn an_oversized_record_is_refused_before_anything_is_written() {
    let Some(cassandra) = cassandra("oversize") else { return };
    let mut store = cassandra.open();
    let big = vec![7_u8; RECORD_BYTES_MAX + 1];
    let error = store.append(&[b"fine", &big]).unwrap_err();
    assert!(matches!(error, StoreError::RecordTooLarge { .. }), "{error}");
    assert_eq!(store.len(), 0);
    store.append(&[b"fine"]).unwrap();
    drop(store);
    assert_eq!(all_records(cassandra.open().as_mut()).len(), 1);
}
