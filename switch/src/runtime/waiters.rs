//! Callers waiting for the final outcome of pending payments.

use super::requests::Waiter;
use ponte_domain::EndToEndId;
use std::collections::HashMap;

/// Callers waiting for the final outcome of pending ids, with when each
/// call came in. Every streamed or unary payment passes through here once,
/// and nearly always alone, so the first waiter is kept inline (an empty
/// `more` does not allocate) and the map uses the engine's fast seeded hash.
#[derive(Default)]
pub(super) struct Waiters(HashMap<EndToEndId, Waiting, foldhash::fast::RandomState>);

pub(super) struct Waiting {
    pub(super) first: (Waiter, std::time::Instant),
    /// The same id submitted again while pending (a retry).
    pub(super) more: Vec<(Waiter, std::time::Instant)>,
}

impl Waiters {
    /// Adds a waiter for `id`. Over `max` for one id the waiter is dropped:
    /// its caller sees the call end and can query the id's status.
    pub(super) fn add(&mut self, id: EndToEndId, waiter: Waiter, intake: std::time::Instant, max: usize) {
        use std::collections::hash_map::Entry;
        match self.0.entry(id) {
            Entry::Vacant(slot) if max > 0 => {
                slot.insert(Waiting { first: (waiter, intake), more: Vec::new() });
            }
            Entry::Vacant(_) => {}
            Entry::Occupied(mut slot) => {
                let waiting = slot.get_mut();
                if 1 + waiting.more.len() < max {
                    waiting.more.push((waiter, intake));
                }
            }
        }
    }

    /// Takes every waiter of `id`, in the order they came.
    pub(super) fn take(&mut self, id: &EndToEndId, mut each: impl FnMut(Waiter, std::time::Instant)) {
        if let Some(Waiting { first: (waiter, intake), more }) = self.0.remove(id) {
            each(waiter, intake);
            more.into_iter().for_each(|(waiter, intake)| each(waiter, intake));
        }
    }
}
