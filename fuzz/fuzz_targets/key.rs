#![no_main]
//! See `ponte::fuzzing::key`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::key(data));
