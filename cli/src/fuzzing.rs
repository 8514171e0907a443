//! Fuzz targets: every parser that takes outside input, as plain functions.
//!
//! `fuzz/` drives them with libFuzzer (`cargo +nightly fuzz run NAME`), and
//! `cli/tests/fuzz_corpus.rs` replays the kept corpus (`fuzz/corpus/NAME/`)
//! on stable in CI. Each must return for any input — an error is fine; a
//! panic, a hang or an unbounded allocation is a bug — and checks what its
//! parser promises (round trips, canonical forms, who may act).

use ponte_directory::country::PROFILES;
use ponte_directory::keys::{Country, KeyType, parse_existing};
use ponte_domain::{Amount, EndToEndId, ParticipantId};
use ponte_ledger::decode_events;
use ponte_proto::v1 as pb;
use prost::Message;

/// A fuzz target: takes any bytes, returns or panics.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("amount", amount),
    ("key", key),
    ("payment_request", payment_request),
    ("envelope_upload", envelope_upload),
    ("disbursement_csv", disbursement_csv),
    ("journal_record", journal_record),
    ("iso20022", iso20022),
];

/// An ISO 20022 document as the gateway reads it: whatever reads writes
/// back to a document that reads the same, and each payment in a pacs.008
/// goes through the same checks as a gRPC one, only ever for its own payer.
pub fn iso20022(data: &[u8]) {
    use ponte_iso20022::Inbound;
    let Ok(inbound) = ponte_iso20022::read(data) else { return };
    let again = match &inbound {
        Inbound::CreditTransfer(m) => ponte_iso20022::write_pacs008(m),
        Inbound::StatusReport(m) => ponte_iso20022::write_pacs002(m),
        Inbound::Return(m) => ponte_iso20022::write_pacs004(m),
        Inbound::StatusRequest(m) => ponte_iso20022::write_pacs028(m),
        Inbound::CancellationRequest(m) => ponte_iso20022::write_camt056(m),
        Inbound::Resolution(m) => ponte_iso20022::write_camt029(m),
    };
    let reread = ponte_iso20022::read(again.as_bytes()).expect("a document the gateway writes reads back");
    assert_eq!(reread.kind(), inbound.kind());
    assert_eq!(reread.transactions(), inbound.transactions());
    match &inbound {
        Inbound::CreditTransfer(m) => {
            let caller = ParticipantId::new(10000001).expect("a valid code");
            for tx in &m.CdtTrfTxInf {
                let Ok(request) = ponte_switch::iso20022::convert::payment_request(tx) else { continue };
                if let Ok(order) = ponte_switch::grpc::payments::payment_order(Country::DEFAULT, caller, &request) {
                    assert_eq!((order.payer.participant, order.id.participant()), (caller, caller));
                    assert!(order.amount > Amount::ZERO);
                }
            }
        }
        Inbound::StatusReport(m) => {
            for tx in &m.TxInfAndSts {
                let _ = ponte_switch::iso20022::convert::decision(tx);
            }
        }
        Inbound::Return(m) => {
            for tx in &m.TxInf {
                let _ = ponte_switch::iso20022::convert::return_request(tx);
            }
        }
        Inbound::StatusRequest(_) => {}
        Inbound::CancellationRequest(m) => {
            for tx in m.Undrlyg.iter().flat_map(|u| u.TxInf.iter()) {
                let _ = ponte_switch::iso20022::convert::recall_request(tx);
            }
        }
        Inbound::Resolution(m) => {
            for tx in m.CxlDtls.iter().flat_map(|d| d.TxInfAndSts.iter()) {
                let _ = ponte_switch::iso20022::convert::recall_refusal(tx);
            }
        }
    }
}

/// Amount text: whatever parses prints back to the same amount.
pub fn amount(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(amount) = Amount::parse_non_negative(text) {
        let again = Amount::parse_non_negative(&amount.to_string()).expect("an amount's own text parses");
        assert_eq!(again, amount, "{text:?}");
    }
    if let Ok(amount) = Amount::parse_positive(text) {
        assert!(amount > Amount::ZERO, "{text:?}");
    }
    let _ = ponte_wire::amount_any("amount", text);
}

/// Directory keys (first byte picks the kind) and end-to-end ids: a key's
/// canonical form is a fixed point of parsing.
pub fn key(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let kinds = KeyType::ALL;
    let kind = kinds[usize::from(first) % kinds.len()];
    for &country in PROFILES {
        if let Ok(key) = parse_existing(country, kind, text) {
            let again = parse_existing(country, kind, key.value()).expect("a key's canonical form parses");
            assert_eq!(again, key, "{text:?}");
        }
    }
    if let Ok(id) = EndToEndId::parse(text) {
        assert_eq!(EndToEndId::parse(id.as_str()).ok(), Some(id));
    }
}

/// A protobuf payment request into a domain payment order: only ever for
/// the caller's own accounts and ids.
pub fn payment_request(data: &[u8]) {
    let Ok(request) = pb::PaymentRequest::decode(data) else { return };
    let caller = ParticipantId::new(10000001).expect("valid code");
    if let Ok(order) = ponte_switch::grpc::payments::payment_order(Country::DEFAULT, caller, &request) {
        assert_eq!(order.payer.participant, caller);
        assert_eq!(order.id.participant(), caller);
        assert!(order.amount > Amount::ZERO);
    }
}

/// A protobuf envelope upload message into an envelope header and items.
pub fn envelope_upload(data: &[u8]) {
    let Ok(upload) = pb::EnvelopeUpload::decode(data) else { return };
    let agency = ParticipantId::new(10000001).expect("valid code");
    if let Some(header) = &upload.header {
        let _ = ponte_sdk::wire::header_from_wire(agency, header);
    }
    for (index, item) in upload.items.iter().enumerate() {
        if let Ok(item) = ponte_switch::grpc::disbursements::item_from_wire(Country::DEFAULT, index, item) {
            assert!(item.amount > Amount::ZERO);
        }
    }
}

/// The disbursement CSV reader: items, or at most 100 problems with lines.
pub fn disbursement_csv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ponte_sdk::disbursement::read_csv(&Country::DEFAULT, text) {
        Ok(items) => assert!(items.iter().all(|i| i.amount > Amount::ZERO && !i.disbursement_id.is_empty())),
        Err(problems) => assert!(!problems.is_empty() && problems.len() <= 100),
    }
}

/// A journal record (as a torn or damaged file could hold): decoding stops
/// at the first error, never panics.
pub fn journal_record(data: &[u8]) {
    for event in decode_events(data) {
        if event.is_err() {
            break;
        }
    }
}
