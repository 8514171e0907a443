#![no_main]
//! See `ponte_switch::fuzzing::envelope_upload`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte_switch::fuzzing::envelope_upload(data));
