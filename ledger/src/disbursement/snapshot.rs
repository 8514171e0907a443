//! Envelopes in an engine snapshot: everything durable, in a fixed order
//! (maps sorted), so that two engines in the same state write the same bytes.

use super::{Disbursements, Envelope};
use ponte_domain::{EndToEndId, ParticipantId};
use std::collections::{BTreeMap, VecDeque};

/// An item's place: (envelope number, index in it).
type ItemAt = (u64, u32);

/// The durable part of [`Disbursements`]; `by_reference` is rebuilt from
/// the envelopes. The driver's place is not durable (a replay starts each
/// envelope's scan over, and forgets the offline-payee `deferred` list), so
/// the image holds what a replay would: every sealed envelope with an item
/// not yet started is active, and each scan starts at its first item.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Image {
    envelopes: Vec<(u64, Envelope)>,
    ledger: Vec<(ParticipantId, Vec<(u128, ItemAt)>)>,
    in_flight: Vec<(EndToEndId, ItemAt)>,
    active: Vec<u64>,
    id_counter: u64,
    next_number: u64,
}

impl Disbursements {
    pub(crate) fn image(&self) -> Image {
        let mut ledger: Vec<_> = self
            .ledger
            .iter()
            .map(|(agency, ids)| {
                let mut ids: Vec<_> = ids.iter().map(|(id, at)| (*id, *at)).collect();
                ids.sort_unstable();
                (*agency, ids)
            })
            .collect();
        ledger.sort_unstable_by_key(|(agency, _)| *agency);
        let mut in_flight: Vec<_> = self.in_flight.iter().map(|(id, at)| (*id, *at)).collect();
        in_flight.sort_unstable();
        let mut active: Vec<(i64, u64)> = self
            .envelopes
            .iter()
            .filter_map(|(n, e)| {
                let sealed = e.sealed_at?;
                e.slots.iter().any(|s| s.transfer.is_none() && s.flagged.is_none()).then_some((sealed, *n))
            })
            .collect();
        active.sort_unstable();
        let envelopes = self.envelopes.iter().map(|(n, e)| (*n, Envelope { next: 0, ..e.clone() })).collect();
        Image {
            envelopes,
            ledger,
            in_flight,
            active: active.into_iter().map(|(_, n)| n).collect(),
            id_counter: self.id_counter,
            next_number: self.next_number,
        }
    }

    pub(crate) fn from_image(image: Image) -> Disbursements {
        let envelopes: BTreeMap<u64, Envelope> = image.envelopes.into_iter().collect();
        let by_reference = envelopes.iter().map(|(n, e)| ((e.header.agency, e.header.reference.clone()), *n)).collect();
        let archived_items = envelopes.values().map(|e| u64::from(e.archived_through)).sum();
        Disbursements {
            envelopes,
            by_reference,
            ledger: image.ledger.into_iter().map(|(agency, ids)| (agency, ids.into_iter().collect())).collect(),
            in_flight: image.in_flight.into_iter().collect(),
            active: VecDeque::from(image.active),
            deferred: VecDeque::new(),
            id_counter: image.id_counter,
            next_number: image.next_number,
            archived_items,
            evict_at: 0,
        }
    }
}

/// A hash map written in key order.
pub(crate) mod sorted_map {
    use std::collections::HashMap;
    use std::hash::Hash;

    pub fn serialize<K, V, S>(map: &HashMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Ord + serde::Serialize,
        V: serde::Serialize,
        S: serde::Serializer,
    {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        serializer.collect_seq(entries)
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Eq + Hash + serde::Deserialize<'de>,
        V: serde::Deserialize<'de>,
        D: serde::Deserializer<'de>,
    {
        let entries: Vec<(K, V)> = serde::Deserialize::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}
