#![no_main]
//! See `ponte::fuzzing::iso20022`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::iso20022(data));
