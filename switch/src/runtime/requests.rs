//! What travels to the engine thread: each kind of request with the
//! channel its answer goes back on.

use ponte_domain::{EndToEndId, ParticipantId, TimestampMs};
use ponte_ledger::op::Operation;
use ponte_ledger::{Effect, Engine, Outcome, Output, op};
use tokio::sync::{mpsc, oneshot};

/// Where the final outcome of a payment or return goes.
#[derive(Debug)]
pub enum Waiter {
    /// A unary call.
    Once(oneshot::Sender<Outcome>),
    /// A submit stream. Its channel has room for every permit the stream
    /// holds, so the journal thread's `try_send` never finds it full.
    Stream(mpsc::Sender<(EndToEndId, Outcome)>),
}

impl Waiter {
    pub(super) fn send(self, id: EndToEndId, outcome: Outcome) {
        match self {
            // A caller that went away no longer needs the answer; the
            // outcome stays queryable by id.
            Waiter::Once(tx) => drop(tx.send(outcome)),
            Waiter::Stream(tx) => drop(tx.try_send((id, outcome))),
        }
    }
}

/// One request to the engine thread, each kind with the channel its
/// answer goes back on. The pairing of an operation with its result type is
/// fixed here, when the request is made, so the engine thread never has to
/// guess what a reply is for.
pub enum Request {
    /// A payment: answered at once if final, else when its payee answers.
    Submit(op::Submit, Waiter),
    /// A return (final at once, or refused).
    /// A return settles or is refused at once (or asks for its original
    /// from the archive), so it waits on no payee: its answer comes after
    /// the fsync like any other.
    Return(op::Return, oneshot::Sender<ponte_ledger::op::Submitted>),
    /// A payee's answer; nothing goes back.
    Answer(op::Answer),
    /// A payee's inbox stream opened or closed; passed on to the journal
    /// thread as the same value.
    Inbox(InboxChange),
    /// Any other operation, with a reply channel of its own result type
    /// (see [`EngineHandle::ask`]).
    Ask(Box<dyn Job>),
}

/// A payee's inbox stream opening or closing: the engine counts who is
/// online, and the journal thread which streams it sends frames to.
pub enum InboxChange {
    Opened { participant: ParticipantId, stream: u64, frames: mpsc::Sender<Vec<Effect>> },
    Closed { participant: ParticipantId, stream: u64 },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Submit(submit, _) => write!(f, "Submit({})", submit.0.id),
            Request::Return(give_back, _) => write!(f, "Return({})", give_back.0.id),
            Request::Answer(answer) => write!(f, "Answer({})", answer.id),
            Request::Inbox(InboxChange::Opened { participant, stream, .. }) => {
                write!(f, "InboxOpened({participant}, {stream})")
            }
            Request::Inbox(InboxChange::Closed { participant, stream }) => {
                write!(f, "InboxClosed({participant}, {stream})")
            }
            Request::Ask(_) => f.write_str("Ask"),
        }
    }
}

impl Request {
    /// Starts loading the transfer this request will look up (see
    /// [`Engine::prefetch`]).
    pub(super) fn prefetch(&self, engine: &Engine) {
        match self {
            Request::Submit(submit, _) => engine.prefetch(submit),
            Request::Return(give_back, _) => engine.prefetch(give_back),
            Request::Answer(answer) => engine.prefetch(answer),
            _ => {}
        }
    }
}

/// An operation and the channel for its result, behind one type so the
/// request queue can carry any of them.
pub trait Job: Send {
    /// Executes the operation; what comes back sends its result, and is
    /// called by the journal thread once the batch is durable.
    fn run(self: Box<Self>, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Reply;
}

/// Sends one operation's result to its caller.
pub type Reply = Box<dyn FnOnce() + Send>;

pub(super) struct Asked<O: Operation> {
    pub(super) operation: O,
    pub(super) reply: oneshot::Sender<O::Result>,
}

impl<O> Job for Asked<O>
where
    O: Operation + Send + 'static,
    O::Result: Send + 'static,
{
    fn run(self: Box<Self>, engine: &mut Engine, now: TimestampMs, out: &mut Output) -> Reply {
        let result = engine.execute(now, self.operation, out);
        let reply = self.reply;
        // A caller that went away no longer needs the answer.
        Box::new(move || drop(reply.send(result)))
    }
}
