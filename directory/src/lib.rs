//! Ponte's alias directory: the rules of a national key registry.
//!
//! Payers pay a phone number, an email, a national id or a random key, not
//! an account number; the directory maps a key to an account and guards
//! that mapping. This crate is pure (no I/O, no clock, no randomness: time
//! and random bytes are arguments), so the switch's engine can own it.
//!
//! # Layout
//! - [`keys`]: key types, validation, canonical forms, masking.
//! - [`country`]: country profiles chosen by configuration (national ids,
//!   phone country codes); [`country::Brazil`] by default: CPF/CNPJ.
//! - [`registry`]: entries, their limits and holders, lookups with masked
//!   owners, reconciliation digests.
//! - [`claims`]: ownership and portability claims with a resolution window.
//! - [`lookups`]: who may look keys up and how often: end users' and
//!   participants' buckets, participant categories A to H.
//! - [`buckets`]: the token buckets under those limits.
//! - [`sharded`]: the map under the registry, which grows 1/256 at a time.
//!
//! The switch's engine (`ponte-ledger`) owns one directory and journals
//! every change of its entries and claims.

pub mod buckets;
pub mod claims;
pub mod country;
mod key_error;
pub mod keys;
pub mod lookups;
pub mod registry;
pub mod sharded;
