//! Replays the kept fuzz corpus (`fuzz/corpus/TARGET/*`, grown by running
//! the libFuzzer targets in `fuzz/`) through the same target functions on
//! stable Rust, plus hand-written seeds. Proves every input that ever
//! reached new code in a parser is still handled without a panic.

use ponte::fuzzing::TARGETS;
use std::path::Path;

#[test]
fn every_kept_fuzz_input_is_handled() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let dir = corpus.join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut files = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "fuzz target {name} panicked on {}", path.display());
            files += 1;
        }
        assert!(files > 0, "no corpus for fuzz target {name} in {}", dir.display());
        replayed += files;
    }
    eprintln!("{replayed} corpus inputs replayed over {} targets", TARGETS.len());
}

#[test]
fn hand_written_edge_cases_are_handled() {
    let cases: &[&[u8]] = &[
        b"",
        b"0",
        b"-0.00",
        b"99999999999999999999999999.99",
        b"92233720368547758.07",
        b"92233720368547758.08",
        b"1e5",
        b"0.001",
        b" 1.00",
        b"\xff\xfe",
        b"\x02+5561988880000",
        b"\x00529.982.247-25",
        b"\x03A@B.C",
        b"\x04not-a-uuid",
        b"E1000000120261126215500000000001",
        b"disbursement_id,beneficiary_type,beneficiary,amount,narrative\nB1,account,1/1/1,1.00,x\n",
        b"disbursement_id,beneficiary_type,beneficiary,amount,narrative\n\"unterminated",
        &[0xff; 64],
        &[0x80; 16],
        &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    for (name, target) in TARGETS {
        for case in cases {
            let outcome = std::panic::catch_unwind(|| target(case));
            assert!(outcome.is_ok(), "fuzz target {name} panicked on {case:?}");
        }
    }
}
