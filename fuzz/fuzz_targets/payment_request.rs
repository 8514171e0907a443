#![no_main]
//! See `ponte_switch::fuzzing::payment_request`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte_switch::fuzzing::payment_request(data));
