//! Tests of the transfer table.
use super::*;

#[test]
fn a_table_built_for_a_capacity_holds_it_without_growing_and_starts_empty() {
    let mut table = TransferTable::with_capacity(50_000);
    assert_eq!(table.len(), 0);
    assert_eq!(table.values().count(), 0, "the placeholders are gone");
    let sizes = |table: &TransferTable| -> (Vec<usize>, usize, Vec<usize>) {
        (
            table.index.iter().map(|shard| shard.slots.len()).collect(),
            table.slab.len(),
            table.slab.chunks.iter().map(Vec::capacity).collect(),
        )
    };
    let before = sizes(&table);
    assert!(table.index.iter().map(IndexShard::room).sum::<usize>() >= 50_000);
    for n in 0..50_000_u64 {
        assert!(table.insert(table_transfer(n)).is_some());
    }
    assert!(table.insert(table_transfer(7)).is_none(), "ids stay unique");
    assert_eq!(before, sizes(&table), "no index shard resized, no slab chunk added or moved");
    assert!((0..50_000).all(|n| table.get(&id_of(n)).is_some_and(|t| t.id == id_of(n))));
}

#[test]
fn a_table_growing_from_empty_finds_every_transfer_and_keeps_arrival_order() {
    let mut table = TransferTable::with_capacity(0);
    assert!(table.get(&id_of(1)).is_none());
    // Past two slab chunks, and every index shard through several resizes.
    let total = 2 * CHUNK as u64 + 1_234;
    for n in 0..total {
        assert_eq!(table.insert(Transfer { digest: u128::from(n), ..table_transfer(n) }), Some(n as usize));
    }
    assert!(table.insert(Transfer { digest: 0, ..table_transfer(CHUNK as u64) }).is_none(), "a repeated id is refused");
    assert_eq!(
        table.get(&id_of(CHUNK as u64)).map(|t| t.digest),
        Some(u128::from(CHUNK as u64)),
        "and changes nothing"
    );
    assert_eq!(table.len(), total as usize);
    for n in (0..total).step_by(7) {
        assert_eq!(table.get(&id_of(n)).map(|t| t.digest), Some(u128::from(n)));
    }
    assert!(table.get(&id_of(total)).is_none());
    table.get_mut(&id_of(42)).unwrap().cycle = 9;
    assert_eq!(table.get(&id_of(42)).unwrap().cycle, 9);
    assert!(table.values().map(|(_, t)| t.digest).eq((0..total).map(u128::from)), "values in arrival order");
    assert!(table.index.iter().all(|shard| shard.len <= shard.room()));
}

#[test]
fn probing_passes_other_entries_with_the_same_tag_and_wraps_around() {
    let mut shard = IndexShard::with_room(8);
    let last = shard.slots.len() - 1;
    let tag = last as u32; // places at the last slot
    // Positions 0, 1, 2 under the same tag: the last slot, then slots 0 and 1.
    for position in 0..3_u64 {
        let Err(at) = shard.probe(tag, |_| false) else { panic!("nothing matches yet") };
        shard.slots[at] = (position + 1) << 32 | u64::from(tag);
    }
    assert_eq!(shard.probe(tag, |e| position_of(e, 0) == 2), Ok(1), "found past two same-tag entries, across the end");
    assert_eq!(shard.probe(tag, |_| false), Err(2), "absent: the first empty slot after them");
    assert_eq!(shard.probe(tag + 1, |_| true), Err(2), "another tag is never offered as a match");
    let mut offered = Vec::new();
    assert!(
        shard
            .probe(tag, |e| {
                offered.push(position_of(e, 0));
                false
            })
            .is_err()
    );
    assert_eq!(offered, [0, 1, 2], "only same-tag entries are compared");
    // Removing the first of them shifts the other two back across the end.
    shard.len = 3;
    shard.remove_at(last);
    assert_eq!(shard.probe(tag, |e| position_of(e, 0) == 1), Ok(last), "moved into the hole");
    assert_eq!(shard.probe(tag, |e| position_of(e, 0) == 2), Ok(0));
    assert_eq!(shard.slots[1], 0, "the tail emptied");
    // An entry at its home slot is not moved by a removal before it.
    let other = 3_u32; // home slot 3
    shard.slots[3] = (9_u64 + 1) << 32 | u64::from(other);
    shard.slots[2] = (8_u64 + 1) << 32 | 2;
    shard.len = 4;
    shard.remove_at(2);
    assert_eq!(shard.slots[3] >> 32, 10, "stays at its home");
}

#[test]
fn evicting_from_the_front_forgets_those_ids_keeps_positions_and_frees_chunks() {
    let mut table = TransferTable::with_capacity(0);
    let total = 3 * CHUNK as u64 + 17;
    for n in 0..total {
        table.insert(table_transfer(n));
    }
    let evicted = 2 * CHUNK as u64 + 5;
    for _ in 0..evicted {
        table.evict_head();
    }
    assert_eq!(
        (table.head(), table.end(), table.len()),
        (evicted as usize, total as usize, (total - evicted) as usize)
    );
    assert_eq!(table.slab.len(), 2, "the two fully evicted chunks are freed");
    assert!((0..evicted).all(|n| table.get(&id_of(n)).is_none()), "evicted ids are gone from the index");
    for n in evicted..total {
        assert_eq!(table.find(&id_of(n)), Some(n as usize), "the rest keep their positions");
    }
    assert_eq!(table.insert(table_transfer(total)), Some(total as usize), "numbering goes on");
    assert!(table.insert(table_transfer(3)).is_some(), "an evicted id can be recorded again (the engine never asks)");
    assert!(table.values().map(|(p, _)| p).eq(evicted as usize..total as usize + 2));
}

#[test]
fn positions_past_the_index_residue_are_found() {
    let start = RESIDUES as usize - 40;
    let mut table = TransferTable::starting_at(0, start);
    for n in 0..100 {
        assert_eq!(table.insert(table_transfer(n)), Some(start + n as usize));
    }
    for _ in 0..50 {
        table.evict_head();
    }
    assert!((50..100).all(|n| table.find(&id_of(n)) == Some(start + n as usize)));
    assert!((0..50).all(|n| table.find(&id_of(n)).is_none()));
}

proptest::proptest! {
    #[test]
    fn the_table_agrees_with_a_map(ops in proptest::collection::vec((0_u64..400, 0_u8..3), 1..600)) {
        let mut table = TransferTable::with_capacity(0);
        let mut model = std::collections::HashMap::new();
        let mut order = VecDeque::new();
        for (n, op) in ops {
            match op {
                0 => {
                    let fresh = !model.contains_key(&n);
                    proptest::prop_assert_eq!(table.insert(Transfer { digest: u128::from(n) + 1, ..table_transfer(n) }).is_some(), fresh);
                    if fresh {
                        order.push_back(n);
                    }
                    model.entry(n).or_insert(u128::from(n) + 1);
                }
                1 => if let Some(oldest) = order.pop_front() {
                    table.evict_head();
                    model.remove(&oldest);
                },
                _ => proptest::prop_assert_eq!(table.get(&id_of(n)).map(|t| t.digest), model.get(&n).copied()),
            }
        }
        proptest::prop_assert_eq!(table.len(), model.len());
        for (n, digest) in &model {
            proptest::prop_assert_eq!(table.get(&id_of(*n)).map(|t| t.digest), Some(*digest));
        }
    }
}

fn id_of(n: u64) -> EndToEndId {
    let suffix = format!("{n:011}");
    EndToEndId::from_parts(IdKind::Payment, ParticipantId::new(1).unwrap(), 0, suffix.as_bytes().try_into().unwrap())
}

fn table_transfer(n: u64) -> Transfer {
    Transfer {
        id: id_of(n),
        payer: Account::unresolved(),
        payee: Account::unresolved(),
        amount: Amount::from_minor(1),
        state: TransferState::Settled,
        reason: None,
        created_at: 0,
        settled_at: Some(0),
        deadline: 0,
        digest: 1,
        returned: Amount::ZERO,
        cycle: 1,
    }
}

#[test]
fn a_window_entry_survives_its_fixed_record_and_a_record_no_entry_could_be_is_refused() {
    let settled = Seen::of(&table_transfer(3));
    let rejected = Seen::of(&Transfer {
        state: TransferState::Rejected,
        reason: Some(ReasonCode::PayeeTimeout),
        settled_at: None,
        created_at: -5,
        ..table_transfer(4)
    });
    for entry in [settled, rejected] {
        assert_eq!(Seen::from_bytes(&entry.to_bytes()), Ok(entry));
    }
    let damaged = |at: usize, value: u8| {
        let mut bytes = rejected.to_bytes();
        bytes[at] = value;
        Seen::from_bytes(&bytes)
    };
    assert!(damaged(36, 0xff).unwrap_err().contains("unknown reason"), "a reason number no code has");
    assert!(damaged(38, 2).unwrap_err().contains("settled byte"));
    assert!(damaged(38, 1).is_err(), "settled with a reason");
    assert!(damaged(39, 1).is_err(), "the padding byte set");
}

#[test]
fn a_table_restored_from_window_records_finds_each_id_where_the_original_did() {
    // Past a chunk boundary, starting mid-chunk (as a snapshot's window does).
    let mut table = TransferTable::with_capacity(0);
    let (first, count) = (CHUNK as u64 - 100, 2 * CHUNK as u64 + 7);
    for n in 0..first + count {
        table.insert(table_transfer(n));
    }
    for _ in 0..first {
        table.evict_head();
    }
    for n in first..first + count {
        let t = table.get(&id_of(n)).unwrap().clone();
        table.demote_head(Seen::of(&t));
    }
    let window: Vec<u8> = table.seen_values().flat_map(|s| s.to_bytes()).collect();
    for capacity in [0, 10_000_000] {
        let restored = TransferTable::restored(capacity, first as usize, &window).unwrap();
        assert_eq!(
            (restored.seen_head(), restored.head(), restored.end()),
            (first as usize, (first + count) as usize, (first + count) as usize)
        );
        assert!(restored.seen_values().eq(table.seen_values()));
        for n in first..first + count {
            assert!(
                matches!(restored.lookup(&id_of(n)), Some(Held::Seen(s)) if *s == Seen::of(&table_transfer(n))),
                "id {n}"
            );
        }
        assert!(!restored.contains(&id_of(first - 1)), "a forgotten id stays forgotten");
    }
    let mut torn = window.clone();
    torn[Seen::BYTES * 5 + 38] = 9;
    let refused = TransferTable::restored(0, first as usize, &torn).unwrap_err();
    assert!(refused.starts_with(&format!("{} ", first + 5)), "names the entry: {refused}");
}

#[test]
fn forgetting_a_run_of_window_entries_at_once_is_forgetting_them_one_by_one() {
    let (total, demoted, forgotten) = (3 * CHUNK as u64 / 2, CHUNK as u64 + 500, CHUNK as u64 + 77);
    let build = || {
        let mut table = TransferTable::with_capacity(0);
        for n in 0..total {
            table.insert(table_transfer(n));
        }
        for n in 0..demoted {
            table.demote_head(Seen::of(&table_transfer(n)));
        }
        table
    };
    let (mut by_run, mut one_by_one) = (build(), build());
    by_run.forget_through(forgotten as usize);
    for _ in 0..forgotten {
        one_by_one.forget_seen_head();
    }
    for table in [&by_run, &one_by_one] {
        assert_eq!(table.seen_head(), forgotten as usize);
        assert!((0..forgotten).all(|n| !table.contains(&id_of(n))), "forgotten ids leave the index");
        assert!((forgotten..demoted).all(|n| matches!(table.lookup(&id_of(n)), Some(Held::Seen(_)))));
        assert!((demoted..total).all(|n| table.get(&id_of(n)).is_some()));
    }
    assert_eq!(by_run.seen.len(), one_by_one.seen.len(), "the same chunks freed");
}
