#![no_main]
//! See `ponte::fuzzing::payment_request`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::payment_request(data));
