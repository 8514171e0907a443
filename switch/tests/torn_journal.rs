//! Torn, truncated and garbled journal files (embedded store). A journal of
//! 1,500 records is written in groups with fsync, then damaged in many ways:
//! truncated at many lengths, each 4 KiB page overwritten with garbage,
//! single bytes flipped. Every time, opening and replaying it must either
//! give a prefix of exactly the records written (in order, byte for byte)
//! or refuse with a clear error — never panic, never return a record that
//! was not written.

use ponte_switch::store::redb::Journal;
use std::path::Path;

fn record(i: usize) -> Vec<u8> {
    let len = 200 + (i * 37) % 900;
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

fn write_journal(path: &Path) -> usize {
    let mut journal = Journal::open(path).unwrap();
    let records: Vec<Vec<u8>> = (0..1_500).map(record).collect();
    for group in records.chunks(50) {
        journal.append(group.iter().map(Vec::as_slice)).unwrap();
    }
    records.len()
}

/// Opens and replays; checks the outcome is a true prefix or a clear error.
fn check(path: &Path, what: &str) -> Result<usize, String> {
    let outcome = std::panic::catch_unwind(|| -> Result<usize, String> {
        let journal = Journal::open(path).map_err(|e| e.to_string())?;
        let mut seen = 0;
        journal
            .replay(0, |seq, bytes| {
                if seq as usize != seen || bytes != record(seen).as_slice() {
                    return Err(format!("record {seq} is not what was written"));
                }
                seen += 1;
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        Ok(seen)
    });
    match outcome {
        Ok(Ok(count)) => Ok(count),
        Ok(Err(message)) => {
            assert!(!message.contains("is not what was written"), "{what}: silently wrong: {message}");
            assert!(message.contains("journal"), "{what}: the error must say what is wrong: {message}");
            Err(message)
        }
        Err(_) => panic!("{what}: opening or replaying the damaged journal panicked"),
    }
}

#[test]
fn damaged_journals_give_a_true_prefix_or_a_clear_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.redb");
    let written = write_journal(&original);
    let bytes = std::fs::read(&original).unwrap();
    let damaged = dir.path().join("journal.redb");
    let (mut prefixes, mut refusals) = (0, 0);
    let mut tally = |result: Result<usize, String>| match result {
        Ok(count) => {
            assert!(count <= written);
            prefixes += 1
        }
        Err(_) => refusals += 1,
    };

    // Truncated: torn tails of every size class.
    let mut lengths: Vec<usize> = (1..=16).map(|k| bytes.len() * k / 17).collect();
    lengths.extend([0, 1, 511, 4096, 4097, bytes.len() - 4096, bytes.len() - 1]);
    for len in lengths {
        std::fs::write(&damaged, &bytes[..len]).unwrap();
        tally(check(&damaged, &format!("truncated to {len} bytes")));
    }
    // Each page overwritten with garbage.
    for page in 0..bytes.len().div_ceil(4096) {
        let mut garbled = bytes.clone();
        let end = ((page + 1) * 4096).min(garbled.len());
        for (i, b) in garbled[page * 4096..end].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(page as u8);
        }
        std::fs::write(&damaged, &garbled).unwrap();
        tally(check(&damaged, &format!("page {page} garbled")));
    }
    // Single bytes flipped across the file.
    for k in 0..64 {
        let mut flipped = bytes.clone();
        let at = (bytes.len() / 64) * k + 17;
        flipped[at] ^= 0x40;
        std::fs::write(&damaged, &flipped).unwrap();
        tally(check(&damaged, &format!("byte {at} flipped")));
    }
    eprintln!(
        "{} bytes, {written} records: {prefixes} opened to a true prefix, {refusals} refused clearly",
        bytes.len()
    );
    // The undamaged file is whole.
    assert_eq!(check(&original, "original"), Ok(written));
}
