#![no_main]
//! See `ponte::fuzzing::envelope_upload`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::envelope_upload(data));
