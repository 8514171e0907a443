//! The `ponte` command and what it is built from, apart from the switch
//! itself (`ponte-switch`): this crate is a client of the switch through the
//! participant SDK, as every bank, operator and paying agency is.
//!
//! # Layout
//! - `main.rs`: the `ponte` binary and its commands.
//! - [`demo`]: `ponte demo`, a whole country in one process.
//! - [`fuzzing`]: the fuzz targets (every parser of outside input), here
//!   because they reach parsers on both sides of the wire.
//! - `tests/`: the whole system end to end: the binary or an in-process
//!   switch on real sockets with mTLS, driven through the SDK.

pub mod demo;
pub mod fuzzing;
