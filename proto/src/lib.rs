//! Ponte's wire contract: the `ponte.v1` gRPC services and messages, generated
//! from `proto/ponte/v1/ponte.proto` at build time. No logic lives here.

pub mod codec;

/// Version 1 of the contract.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ponte.v1");
}
