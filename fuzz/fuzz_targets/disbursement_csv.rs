#![no_main]
//! See `ponte::fuzzing::disbursement_csv`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte::fuzzing::disbursement_csv(data));
