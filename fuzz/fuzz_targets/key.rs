#![no_main]
//! See `ponte_switch::fuzzing::key`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte_switch::fuzzing::key(data));
