#![no_main]
//! See `ponte::fuzzing::journal_record`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::journal_record(data));
