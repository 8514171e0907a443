#![no_main]
//! See `ponte::fuzzing::amount`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::amount(data));
