//! Envelope headers and items (`ponte.v1.Disbursements`).

use crate::{FieldError, account_from_wire, account_to_wire, amount_any, amount_positive, key_from_wire, key_to_wire};
use ponte_directory::keys::CountryProfile;
use ponte_disbursement::{Beneficiary, EnvelopeHeader, EnvelopeItem};
use ponte_domain::ParticipantId;
use ponte_proto::v1 as pb;

/// Parses an envelope header sent by `agency` (the wire header carries no
/// agency: it is the caller).
pub fn header_from_wire(agency: ParticipantId, h: &pb::EnvelopeHeader) -> Result<EnvelopeHeader, FieldError> {
    Ok(EnvelopeHeader {
        agency,
        reference: h.reference.clone(),
        programme: h.programme.clone(),
        cycle_reference: h.cycle_reference.clone(),
        currency: h.currency.clone(),
        paying_account: account_from_wire("header.paying_account", h.paying_account.as_ref())?,
        control_count: h.control_count,
        control_total: amount_any("header.control_total", &h.control_total)?,
    })
}

pub fn header_to_wire(h: &EnvelopeHeader) -> pb::EnvelopeHeader {
    pb::EnvelopeHeader {
        reference: h.reference.clone(),
        programme: h.programme.clone(),
        cycle_reference: h.cycle_reference.clone(),
        paying_account: Some(account_to_wire(&h.paying_account)),
        control_count: h.control_count,
        control_total: h.control_total.to_string(),
        currency: h.currency.clone(),
    }
}

/// Parses one item's fields, a key beneficiary to `country`'s rules (the
/// item's bounds are [`ponte_disbursement::check_item`]'s).
pub fn item_from_wire(country: &dyn CountryProfile, m: &pb::DisbursementItem) -> Result<EnvelopeItem, FieldError> {
    Ok(EnvelopeItem {
        disbursement_id: m.disbursement_id.clone(),
        beneficiary: beneficiary_from_wire(country, m.beneficiary.as_ref())?,
        amount: amount_positive("amount", &m.amount)?,
        narrative: m.narrative.clone(),
    })
}

pub fn item_to_wire(item: &EnvelopeItem) -> pb::DisbursementItem {
    pb::DisbursementItem {
        disbursement_id: item.disbursement_id.clone(),
        beneficiary: Some(beneficiary_to_wire(&item.beneficiary)),
        amount: item.amount.to_string(),
        narrative: item.narrative.clone(),
    }
}

pub fn beneficiary_to_wire(beneficiary: &Beneficiary) -> pb::disbursement_item::Beneficiary {
    match beneficiary {
        Beneficiary::Key(key) => pb::disbursement_item::Beneficiary::Key(key_to_wire(key)),
        Beneficiary::Account(account) => pb::disbursement_item::Beneficiary::Account(account_to_wire(account)),
    }
}

pub fn beneficiary_from_wire(
    country: &dyn CountryProfile,
    beneficiary: Option<&pb::disbursement_item::Beneficiary>,
) -> Result<Beneficiary, FieldError> {
    match beneficiary {
        Some(pb::disbursement_item::Beneficiary::Key(key)) => {
            Ok(Beneficiary::Key(key_from_wire(country, "key", Some(key))?))
        }
        Some(pb::disbursement_item::Beneficiary::Account(account)) => {
            Ok(Beneficiary::Account(account_from_wire("account", Some(account))?))
        }
        None => Err(FieldError::new("beneficiary", "a key or an account is required")),
    }
}
