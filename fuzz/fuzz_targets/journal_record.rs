#![no_main]
//! See `ponte_switch::fuzzing::journal_record`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte_switch::fuzzing::journal_record(data));
