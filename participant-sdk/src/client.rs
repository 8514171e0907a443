//! The participant client: payments out, status, returns.

use crate::error::Error;
use crate::wire;
use ponte_directory::keys::Country;
use ponte_domain::{Account, Amount, CURRENCY, EndToEndId, IdKind, ParticipantId, ReasonCode, TransferView};
use ponte_proto::v1 as pb;
use ponte_proto::v1::payments_client::PaymentsClient;
use std::path::Path;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// A participant's (or the operator's) TLS credentials: the switch's CA
/// certificate and the caller's own certificate and key, all PEM.
#[derive(Clone)]
pub struct Identity {
    ca: Certificate,
    identity: tonic::transport::Identity,
    domain_name: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("domain_name", &self.domain_name).finish_non_exhaustive()
    }
}

impl Identity {
    pub fn from_pem(ca_pem: impl AsRef<[u8]>, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Identity {
        Identity {
            ca: Certificate::from_pem(ca_pem),
            identity: tonic::transport::Identity::from_pem(cert_pem, key_pem),
            domain_name: "localhost".into(),
        }
    }

    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Identity, Error> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::Identity(format!("{}: {e}", p.display())));
        Ok(Identity::from_pem(read(ca)?, read(cert)?, read(key)?))
    }

    /// Reads `ca.pem`, `NAME.pem` and `NAME.key` from a directory, as
    /// `ponte serve` writes them on first start (`ponte-data/certs`).
    pub fn from_dev_dir(dir: &Path, name: &str) -> Result<Identity, Error> {
        Identity::from_files(&dir.join("ca.pem"), &dir.join(format!("{name}.pem")), &dir.join(format!("{name}.key")))
    }

    /// The name the switch's server certificate must carry (default `localhost`).
    pub fn with_domain_name(mut self, name: impl Into<String>) -> Identity {
        self.domain_name = name.into();
        self
    }

    /// An mTLS channel to `endpoint`, for calling the generated `ponte_proto` clients directly.
    pub async fn channel(&self, endpoint: &str) -> Result<Channel, Error> {
        let connect = |message: String| Error::Connect { endpoint: endpoint.to_owned(), message };
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(self.domain_name.clone());
        Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| connect(e.to_string()))?
            .tls_config(tls)
            .map_err(|e| connect(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| match crate::error::refused_certificate(&e) {
                Some(why) => Error::Unauthenticated(why),
                None => connect(format!("{e} ({})", source_chain(&e))),
            })
    }
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts.join(": ")
}

/// A payment to submit.
#[derive(Debug, Clone)]
pub struct Payment {
    pub id: EndToEndId,
    pub payer: Account,
    pub payee: Account,
    pub amount: Amount,
    pub remittance: String,
}

impl Payment {
    pub(crate) fn to_wire(&self) -> pb::PaymentRequest {
        let target = pb::payee::Target::Account(wire::account_to_wire(&self.payee));
        payment_request(&self.id, &self.payer, target, self.amount, &self.remittance, None)
    }
}

/// The one place a payment request is put on the wire, whatever the payee.
fn payment_request(
    id: &EndToEndId,
    payer: &Account,
    target: pb::payee::Target,
    amount: Amount,
    remittance: &str,
    lookup_by: Option<pb::EndUser>,
) -> pb::PaymentRequest {
    pb::PaymentRequest {
        end_to_end_id: id.to_string(),
        payer: Some(wire::account_to_wire(payer)),
        payee: Some(pb::Payee { target: Some(target) }),
        amount: amount.to_string(),
        currency: CURRENCY.to_owned(),
        remittance: remittance.to_owned(),
        lookup_by,
    }
}

/// A payment to whoever a directory key names (phone, email, national id,
/// random key); the switch resolves the key.
#[derive(Debug, Clone)]
pub struct KeyPayment {
    pub id: EndToEndId,
    pub payer: Account,
    pub payee_key: ponte_directory::keys::Key,
    /// The end user who looked the key up (gives the lookup's token back).
    pub lookup_by: Option<ponte_directory::lookups::EndUser>,
    pub amount: Amount,
    pub remittance: String,
}

impl KeyPayment {
    pub(crate) fn to_wire(&self) -> pb::PaymentRequest {
        let target = pb::payee::Target::Key(wire::key_to_wire(&self.payee_key));
        let lookup_by = self.lookup_by.as_ref().map(wire::end_user_to_wire);
        payment_request(&self.id, &self.payer, target, self.amount, &self.remittance, lookup_by)
    }
}

/// A return of (part of) a payment this participant received.
#[derive(Debug, Clone)]
pub struct Return {
    pub id: EndToEndId,
    pub original: EndToEndId,
    pub amount: Amount,
    pub reason: ReasonCode,
    pub remittance: String,
}

/// The final outcome of a payment or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Money moved; the payee has been told to credit its customer.
    Settled { at_ms: i64 },
    /// Nothing moved. `reason.is_transient()` tells whether the same payment
    /// under a new end-to-end id may succeed later.
    Rejected { reason: ReasonCode },
}

impl PaymentOutcome {
    pub fn is_settled(&self) -> bool {
        matches!(self, PaymentOutcome::Settled { .. })
    }

    pub(crate) fn from_wire(result: &pb::PaymentResult) -> Result<PaymentOutcome, Error> {
        match pb::PaymentStatus::try_from(result.status) {
            Ok(pb::PaymentStatus::Settled) => Ok(PaymentOutcome::Settled { at_ms: result.settled_at_ms }),
            Ok(pb::PaymentStatus::Rejected) => {
                Ok(PaymentOutcome::Rejected { reason: wire::reason_from_wire(result.reason.as_ref())? })
            }
            _ => Err(Error::Protocol(format!("result for {} is not final", result.end_to_end_id))),
        }
    }
}

/// One result from a submit stream.
#[derive(Debug)]
pub struct StreamedResult {
    /// The end-to-end id as the caller sent it.
    pub end_to_end_id: String,
    /// The outcome, or why the payment was not executed at all.
    pub outcome: Result<PaymentOutcome, Error>,
}

/// A connection to the switch as one participant. Cheap to clone; clones
/// share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    participant: ParticipantId,
    /// The country whose key rules keys are read by (the switch's).
    country: Country,
    payments: PaymentsClient<Channel>,
    pub(crate) directory: ponte_proto::v1::directory_client::DirectoryClient<Channel>,
    pub(crate) disbursements: ponte_proto::v1::disbursements_client::DisbursementsClient<Channel>,
    /// How long a payment in doubt is resolved before [`Error::InDoubt`].
    in_doubt_wait: std::time::Duration,
}

impl Client {
    /// Connects to `endpoint` (e.g. `https://127.0.0.1:7700`) as `participant`.
    pub async fn connect(endpoint: &str, participant: ParticipantId, identity: &Identity) -> Result<Client, Error> {
        let channel = identity.channel(endpoint).await?;
        Ok(Client {
            participant,
            country: Country::DEFAULT,
            payments: PaymentsClient::new(channel.clone()).max_decoding_message_size(16 * 1024 * 1024),
            directory: ponte_proto::v1::directory_client::DirectoryClient::new(channel.clone())
                .max_decoding_message_size(64 * 1024 * 1024),
            disbursements: ponte_proto::v1::disbursements_client::DisbursementsClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(8 * 1024 * 1024),
            in_doubt_wait: crate::in_doubt::IN_DOUBT_WAIT_DEFAULT,
        })
    }

    /// How long [`Client::submit`], [`Client::submit_to_key`] and
    /// [`Client::return_payment`] keep resolving a payment left in doubt by
    /// a failed call (asking its status, sending it again with the same id)
    /// before they give up with [`Error::InDoubt`]. Default 30 s.
    pub fn with_in_doubt_wait(mut self, wait: std::time::Duration) -> Client {
        self.in_doubt_wait = wait;
        self
    }

    pub fn in_doubt_wait(&self) -> std::time::Duration {
        self.in_doubt_wait
    }

    pub fn participant(&self) -> ParticipantId {
        self.participant
    }

    /// Reads keys to `country`'s rules: set it to the switch's
    /// `[engine] country` (the default is Brazil, `BR`).
    pub fn with_country(mut self, country: Country) -> Client {
        self.country = country;
        self
    }

    pub fn country(&self) -> Country {
        self.country
    }

    pub(crate) fn raw(&self) -> PaymentsClient<Channel> {
        self.payments.clone()
    }

    /// A fresh payment end-to-end id made by this participant, now.
    pub fn new_payment_id(&self) -> EndToEndId {
        EndToEndId::generate(IdKind::Payment, self.participant, now_ms())
    }

    /// A fresh return id made by this participant, now.
    pub fn new_return_id(&self) -> EndToEndId {
        EndToEndId::generate(IdKind::Return, self.participant, now_ms())
    }

    /// Submits one payment and waits for its final outcome. If the call
    /// fails after it may have reached the switch (a cut connection, a lost
    /// answer), the payment's true outcome is found by id before this
    /// returns (see [`Client::with_in_doubt_wait`]); an error then means it
    /// was not made, or [`Error::InDoubt`] that the switch stayed out of reach.
    pub async fn submit(&self, payment: &Payment) -> Result<PaymentOutcome, Error> {
        self.submit_request(&payment.id, payment.to_wire(), crate::in_doubt::Start::Send).await
    }

    /// Pays the account a directory key names, and waits for the outcome
    /// (resolved as [`Client::submit`] does). An unregistered key is
    /// rejected with BE23.
    pub async fn submit_to_key(&self, payment: &KeyPayment) -> Result<PaymentOutcome, Error> {
        self.submit_request(&payment.id, payment.to_wire(), crate::in_doubt::Start::Send).await
    }

    /// Opens a submit stream for high volume: send batches on the
    /// [`SubmitSender`], read outcomes (in completion order) from the
    /// [`SubmitReceiver`].
    pub async fn open_submit_stream(&self) -> Result<(SubmitSender, SubmitReceiver), Error> {
        let (tx, rx) = mpsc::channel(64);
        let response = self.payments.clone().submit_stream(ReceiverStream::new(rx)).await?;
        Ok((SubmitSender { tx }, SubmitReceiver { inner: response.into_inner() }))
    }

    /// The state of a payment or return this participant sent or received.
    pub async fn status(&self, id: &EndToEndId) -> Result<TransferView, Error> {
        let s =
            self.payments.clone().get_status(pb::StatusRequest { end_to_end_id: id.to_string() }).await?.into_inner();
        Ok(wire::transfer_from_wire(&s)?)
    }

    /// This participant's own payments and returns in settlement cycle
    /// `cycle`, in the order the switch recorded them, every page of them: their totals
    /// match its line in the central bank's report. A busy cycle is
    /// millions of transfers; [`Client::cycle_transfers_page`] reads one
    /// page at a time without holding them all.
    pub async fn cycle_transfers(&self, cycle: u64) -> Result<Vec<TransferView>, Error> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.cycle_transfers_page(cycle, CYCLE_TRANSFERS_PAGE_MAX, &token).await?;
            all.extend(page.transfers);
            match page.next_page_token {
                Some(next) => token = next,
                None => return Ok(all),
            }
        }
    }

    /// One page of [`Client::cycle_transfers`]: at most `page_size`
    /// transfers (0: the switch's default, 1,000; at most
    /// [`CYCLE_TRANSFERS_PAGE_MAX`]) after the page `page_token` names
    /// (empty: the first page; then the previous page's `next_page_token`).
    pub async fn cycle_transfers_page(
        &self,
        cycle: u64,
        page_size: u32,
        page_token: &str,
    ) -> Result<CycleTransfersPage, Error> {
        let request = pb::CycleTransfersRequest { cycle, page_size, page_token: page_token.to_owned() };
        let r = self.payments.clone().cycle_transfers(request).await?.into_inner();
        Ok(CycleTransfersPage {
            transfers: r.transfers.iter().map(wire::transfer_from_wire).collect::<Result<_, _>>()?,
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// Returns (part of) a settled payment this participant received.
    pub async fn return_payment(&self, r: &Return) -> Result<PaymentOutcome, Error> {
        let request = pb::ReturnRequest {
            return_id: r.id.to_string(),
            original_end_to_end_id: r.original.to_string(),
            amount: r.amount.to_string(),
            reason: r.reason.code().to_owned(),
            remittance: r.remittance.clone(),
            reason_code: i32::from(r.reason.number()),
        };
        self.send_until_known(&r.id, || {
            let (mut payments, request) = (self.payments.clone(), request.clone());
            async move { payments.r#return(request).await }
        })
        .await
    }
}

/// The most transfers one `CycleTransfers` page holds.
pub const CYCLE_TRANSFERS_PAGE_MAX: u32 = 10_000;

/// One page of a participant's transfers in a cycle.
#[derive(Debug, Clone)]
pub struct CycleTransfersPage {
    /// In the order the switch recorded them.
    pub transfers: Vec<TransferView>,
    /// The token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The sending half of a submit stream.
#[derive(Debug, Clone)]
pub struct SubmitSender {
    tx: mpsc::Sender<pb::SubmitBatch>,
}

impl SubmitSender {
    /// Sends a batch (at most 1,024 payments). Waits while the switch
    /// applies backpressure.
    pub async fn send(&self, payments: &[Payment]) -> Result<(), Error> {
        let batch = pb::SubmitBatch { payments: payments.iter().map(Payment::to_wire).collect() };
        self.send_wire(batch).await
    }

    /// Sends an already-encoded batch (for load generators).
    pub async fn send_wire(&self, batch: pb::SubmitBatch) -> Result<(), Error> {
        self.tx.send(batch).await.map_err(|_| Error::Unavailable("submit stream closed".into()))
    }
}

/// The receiving half of a submit stream.
#[derive(Debug)]
pub struct SubmitReceiver {
    inner: tonic::Streaming<pb::ResultBatch>,
}

impl SubmitReceiver {
    /// The next batch of results; `None` once the stream is over (after the
    /// sender is dropped and every payment has its outcome).
    pub async fn next(&mut self) -> Option<Result<Vec<StreamedResult>, Error>> {
        match self.inner.message().await {
            Ok(Some(batch)) => Some(Ok(batch
                .results
                .into_iter()
                .map(|r| {
                    let outcome = match &r.error {
                        Some(e) => Err(Error::from_item(e.grpc_code, e.message.clone())),
                        None => PaymentOutcome::from_wire(&r),
                    };
                    StreamedResult { end_to_end_id: r.end_to_end_id, outcome }
                })
                .collect())),
            Ok(None) => None,
            Err(status) => Some(Err(status.into())),
        }
    }

    /// The next raw batch, without conversion (for load generators).
    pub async fn next_wire(&mut self) -> Option<Result<pb::ResultBatch, Error>> {
        self.inner.message().await.map_err(Error::from).transpose()
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
