//! Payee deadlines of reserved transfers, in due order.

use crate::table::TransferTable;
use ponte_domain::{TimestampMs, TransferState};
use std::collections::VecDeque;

/// Payee deadlines in due order, each with its transfer's slab position.
///
/// Settling or rejecting a transfer leaves its queue entry in place: an
/// entry is live while its transfer is still reserved with that deadline,
/// which [`DeadlineQueue::next`] reads from the slab. Entries are in
/// deadline order, which is arrival order, so that check reads the slab
/// front to back as the prefetcher likes it, and recording or answering a
/// payment touches no second index (a map of pending ids, kept before,
/// cost an insert and a removal per payment, ~9% of the engine thread
/// under load). Entries live at most one payee timeout.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    queue: VecDeque<(TimestampMs, usize)>,
}

impl DeadlineQueue {
    /// Queues the deadline of the transfer at slab `position`.
    pub fn push(&mut self, deadline: TimestampMs, position: usize) {
        match self.queue.back() {
            Some(&(last, _)) if last > deadline => {
                // Only after a restart with a shorter payee timeout: keep order.
                let at = self.queue.partition_point(|&(d, _)| d <= deadline);
                self.queue.insert(at, (deadline, position));
            }
            _ => self.queue.push_back((deadline, position)),
        }
    }

    /// The earliest pending deadline, if any (stale entries at the front are dropped).
    pub fn next(&mut self, transfers: &TransferTable) -> Option<TimestampMs> {
        while let Some(&(deadline, position)) = self.queue.front() {
            // An evicted transfer was final: its entry is stale.
            let live = transfers.holds(position) && {
                let transfer = transfers.at(position);
                transfer.state == TransferState::Reserved && transfer.deadline == deadline
            };
            if live {
                return Some(deadline);
            }
            self.queue.pop_front();
        }
        None
    }

    /// Removes the earliest pending deadline due at or before `now`, with
    /// its transfer's slab position.
    pub fn pop_due(&mut self, now: TimestampMs, transfers: &TransferTable) -> Option<(TimestampMs, usize)> {
        let deadline = self.next(transfers).filter(|&deadline| deadline <= now)?;
        let (_, position) = self.queue.pop_front().expect("next() saw it");
        Some((deadline, position))
    }

    /// Entries held, live or stale.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Every queued `(deadline, slab position)`, live or stale, for invariant checks.
    pub fn queued(&self) -> std::collections::HashSet<(TimestampMs, usize)> {
        self.queue.iter().copied().collect()
    }
}
