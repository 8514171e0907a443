#![no_main]
//! See `ponte_switch::fuzzing::disbursement_csv`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ponte_switch::fuzzing::disbursement_csv(data));
