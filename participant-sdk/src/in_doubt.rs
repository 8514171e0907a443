//! Payments in doubt: a call that failed after it may have reached the
//! switch (the connection cut, the answer lost in a failover, a deadline).
//!
//! The switch executes an end-to-end id at most once, and answers the same
//! id with the same content with that one outcome. So the SDK finds a
//! doubtful payment's true outcome by itself: it asks its status by id (a
//! final state is the answer; NOT_FOUND means it was not made) and sends it
//! again with the same id and content (which either makes it, once, or
//! waits for the outcome of the one already made), with capped backoff,
//! until it knows or its patience ([`Client::with_in_doubt_wait`]) ends.
//! A refusal the switch marks as made before executing anything
//! (`ponte-executed: no`) is not in doubt and is returned at once.

use crate::client::{Client, PaymentOutcome};
use crate::error::Error;
use ponte_domain::{EndToEndId, TransferState, TransferView};
use ponte_proto::v1 as pb;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Code;

/// How long a client keeps resolving a payment in doubt by default: longer
/// than a standby's takeover (lease TTL plus a poll) and the payee deadline.
pub const IN_DOUBT_WAIT_DEFAULT: Duration = Duration::from_secs(30);

/// First pause between two attempts; it doubles up to [`PAUSE_MAX`].
const PAUSE_FIRST: Duration = Duration::from_millis(50);
const PAUSE_MAX: Duration = Duration::from_secs(1);

/// How [`Client::submit_request`] begins: with a send (a new call), or by
/// asking what became of the payment (its fate unknown to this client).
pub(crate) enum Start {
    Send,
    Ask,
}

/// What one send of a payment (or return) gave.
pub(crate) type Sent = Result<tonic::Response<pb::PaymentResult>, tonic::Status>;

/// Whether a failed call may have executed: not if the switch said it
/// refused it first, nor if the connection was never made.
pub(crate) fn in_doubt(status: &tonic::Status) -> bool {
    if status.metadata().get(ponte_wire::EXECUTED_METADATA).is_some_and(|v| v == "no") || never_sent(status) {
        return false;
    }
    matches!(status.code(), Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::Unknown)
        || std::error::Error::source(status).is_some()
}

/// Whether the call failed to open a connection at all (nothing was sent).
fn never_sent(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// The outcome a final state stands for (`None` while pending).
fn outcome_of(view: &TransferView) -> Result<Option<PaymentOutcome>, Error> {
    Ok(match view.state {
        TransferState::Settled => Some(PaymentOutcome::Settled { at_ms: view.settled_at.unwrap_or_default() }),
        TransferState::Rejected => Some(PaymentOutcome::Rejected {
            reason: view.reason.ok_or_else(|| Error::Protocol(format!("{} rejected without a reason", view.id)))?,
        }),
        TransferState::Received | TransferState::Reserved => None,
    })
}

impl Client {
    /// Sends a payment or return (`send` sends it once) and returns its one
    /// true outcome, resolving it if the call leaves it in doubt.
    pub(crate) async fn send_until_known<F, Fut>(&self, id: &EndToEndId, send: F) -> Result<PaymentOutcome, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Sent>,
    {
        match send().await {
            Ok(result) => PaymentOutcome::from_wire(result.get_ref()),
            Err(status) if in_doubt(&status) => self.resolve_with(id, send).await,
            Err(status) => Err(status.into()),
        }
    }

    /// Finds the outcome of a payment whose fate this client does not know
    /// (a cut submit stream, or a restart of the bank's own system): its
    /// status if final, or else it is sent again with the same id and
    /// content, which makes it at most once. Returns [`Error::InDoubt`] if
    /// the switch could not be reached within the in-doubt wait.
    pub async fn resolve(&self, payment: &crate::Payment) -> Result<PaymentOutcome, Error> {
        self.submit_request(&payment.id, payment.to_wire(), Start::Ask).await
    }

    /// Submits `request` (of payment `id`) until its one outcome is known,
    /// sending it first or asking first what became of it.
    pub(crate) async fn submit_request(
        &self,
        id: &EndToEndId,
        request: pb::PaymentRequest,
        start: Start,
    ) -> Result<PaymentOutcome, Error> {
        let send = || {
            let (mut payments, request) = (self.raw(), request.clone());
            async move { payments.submit(request).await }
        };
        match start {
            Start::Send => self.send_until_known(id, send).await,
            Start::Ask => self.resolve_with(id, send).await,
        }
    }

    async fn resolve_with<F, Fut>(&self, id: &EndToEndId, send: F) -> Result<PaymentOutcome, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Sent>,
    {
        let deadline = Instant::now() + self.in_doubt_wait();
        let mut pause = PAUSE_FIRST;
        loop {
            // Whether the switch has just said it never made the id.
            let not_made = match self.status(id).await {
                Ok(view) => match outcome_of(&view)? {
                    Some(outcome) => return Ok(outcome),
                    None => false,
                },
                Err(Error::NotFound(_)) => true,
                Err(error) if error.is_retryable() => false,
                Err(error) => return Err(error),
            };
            // Not made, still pending, or not known: the same id and content
            // again makes it once, or waits for the one outcome it has.
            let last = match send().await {
                Ok(result) => return PaymentOutcome::from_wire(result.get_ref()),
                Err(status) if in_doubt(&status) => Error::from(status),
                // Refused before executing, and never made before: nothing
                // was made, which is an answer.
                Err(status) if not_made => return Err(status.into()),
                Err(status) => Error::from(status),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::InDoubt { id: id.to_string(), detail: last.to_string() });
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(PAUSE_MAX);
        }
    }
}
