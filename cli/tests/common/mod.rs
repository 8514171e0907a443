//! Shared harness: a real switch (redb journal with fsync, gRPC over TCP with
//! mTLS on loopback) on a temporary directory, and SDK clients for it.
//!
//! With `PONTE_TEST_E2E_ON_CQL=1` and `PONTE_TEST_CQL=HOST:PORT` (the second
//! pass of `scripts/test-all`) every switch keeps its journal in a fresh
//! keyspace of that Cassandra instead, so the same end-to-end tests prove
//! the distributed backend.
#![allow(dead_code)]

use ponte_domain::{Account, AccountType, Amount, EndToEndId, IdKind, ParticipantId, ReasonCode};
use ponte_sdk::{Client, Decision, Identity, InboxHandle, InboxHandler, IncomingPayment, OperatorClient, Payment};
use ponte_switch::server::{self, Config, DevParticipant, RunningSwitch};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const A: u32 = 10000001;
pub const B: u32 = 10000002;
pub const C: u32 = 10000003;

pub fn pid(code: u32) -> ParticipantId {
    ParticipantId::new(code).unwrap()
}

pub fn account(code: u32, number: &str) -> Account {
    Account::new(pid(code), "1", number, AccountType::Checking).unwrap()
}

/// The journal store for a new test switch: None (embedded), or a fresh
/// Cassandra keyspace when `PONTE_TEST_E2E_ON_CQL=1`.
pub fn test_store(tag: &str) -> Option<String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static KEYSPACES: AtomicU32 = AtomicU32::new(0);
    if std::env::var("PONTE_TEST_E2E_ON_CQL").ok().as_deref() != Some("1") {
        return None;
    }
    let address = std::env::var("PONTE_TEST_CQL").expect("PONTE_TEST_E2E_ON_CQL=1 needs PONTE_TEST_CQL=HOST:PORT");
    let n = KEYSPACES.fetch_add(1, Ordering::Relaxed);
    Some(format!("cql://{address}/{tag}_{}_{n}?lease_ttl_s=2", std::process::id()))
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        store: test_store("e2e"),
        listen: ([127, 0, 0, 1], 0).into(),
        metrics_listen: None,
        ..Config::default()
    };
    config.engine.payee_timeout_ms = 700;
    config.dev_participants = vec![
        DevParticipant { code: A.to_string(), name: "Bank A".into(), net_debit_cap: "1000.00".into() },
        DevParticipant { code: B.to_string(), name: "Bank B".into(), net_debit_cap: "1000.00".into() },
        DevParticipant { code: C.to_string(), name: "Wallet C".into(), net_debit_cap: "100.00".into() },
    ];
    config
}

pub struct TestSwitch {
    pub dir: tempfile::TempDir,
    pub switch: Option<RunningSwitch>,
    pub config: Config,
}

impl TestSwitch {
    pub async fn start() -> TestSwitch {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let switch = server::start(config.clone()).await.expect("switch starts");
        TestSwitch { dir, switch: Some(switch), config }
    }

    pub fn endpoint(&self) -> String {
        self.switch.as_ref().unwrap().endpoint()
    }

    pub fn certs(&self) -> std::path::PathBuf {
        self.config.certs_dir()
    }

    pub fn identity(&self, name: &str) -> Identity {
        Identity::from_dev_dir(&self.certs(), name).unwrap()
    }

    pub async fn client(&self, code: u32) -> Client {
        Client::connect(&self.endpoint(), pid(code), &self.identity(&code.to_string())).await.unwrap()
    }

    pub async fn operator(&self) -> OperatorClient {
        OperatorClient::connect(&self.endpoint(), &self.identity("operator")).await.unwrap()
    }

    /// Stops the switch and starts it again on the same data directory.
    pub async fn restart(&mut self) {
        self.switch.take().unwrap().stop().await;
        self.switch = Some(server::start(self.config.clone()).await.expect("switch restarts"));
    }

    pub async fn stop(mut self) {
        if let Some(switch) = self.switch.take() {
            switch.stop().await;
        }
    }
}

pub type DecideFn = dyn Fn(&IncomingPayment) -> Decision + Send + Sync;

/// A payee whose answers come from a function, with an optional delay, and
/// that records every notice it gets.
#[derive(Clone, Default)]
pub struct Payee {
    pub decide: Option<Arc<DecideFn>>,
    pub delay: Duration,
    pub seen: Arc<Mutex<Vec<IncomingPayment>>>,
    pub settled: Arc<Mutex<Vec<EndToEndId>>>,
    pub cancelled: Arc<Mutex<Vec<(EndToEndId, ReasonCode)>>>,
    pub returned: Arc<Mutex<Vec<ponte_sdk::ReturnNotice>>>,
    pub recalls: Arc<Mutex<Vec<ponte_sdk::Recall>>>,
}

impl Payee {
    pub fn accepting() -> Payee {
        Payee::default()
    }

    pub fn deciding(decide: impl Fn(&IncomingPayment) -> Decision + Send + Sync + 'static) -> Payee {
        Payee { decide: Some(Arc::new(decide)), ..Payee::default() }
    }

    pub fn slow(delay: Duration) -> Payee {
        Payee { delay, ..Payee::default() }
    }

    pub async fn serve(&self, client: &Client) -> InboxHandle {
        let mut handle = client.serve_inbox(self.clone());
        tokio::time::timeout(Duration::from_secs(10), handle.connected()).await.expect("inbox connects");
        handle
    }
}

impl InboxHandler for Payee {
    async fn on_payment(&self, payment: IncomingPayment) -> Decision {
        self.seen.lock().unwrap().push(payment.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match &self.decide {
            Some(decide) => decide(&payment),
            None => Decision::Accept,
        }
    }

    async fn on_settled(&self, id: EndToEndId, _at_ms: i64) {
        self.settled.lock().unwrap().push(id);
    }

    async fn on_cancelled(&self, id: EndToEndId, reason: ReasonCode) {
        self.cancelled.lock().unwrap().push((id, reason));
    }

    async fn on_returned(&self, notice: ponte_sdk::ReturnNotice) {
        self.returned.lock().unwrap().push(notice);
    }

    async fn on_recall(&self, recall: ponte_sdk::Recall) {
        self.recalls.lock().unwrap().push(recall);
    }
}

impl Payee {
    /// The recall notices received for `original`, in order.
    pub fn recalls_of(&self, original: &EndToEndId) -> Vec<ponte_sdk::Recall> {
        self.recalls.lock().unwrap().iter().filter(|r| r.original == *original).cloned().collect()
    }
}

pub fn payment(client: &Client, payee: u32, amount: &str) -> Payment {
    Payment {
        id: client.new_payment_id(),
        payer: account(client.participant().code(), "1234"),
        payee: account(payee, "5678"),
        amount: Amount::parse_positive(amount).unwrap(),
        remittance: "test".into(),
    }
}

pub fn payment_id(code: u32) -> EndToEndId {
    EndToEndId::generate(IdKind::Payment, pid(code), now_ms())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Waits (bounded) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A `ponte serve` process (the real binary), killed with SIGKILL when dropped.
pub struct PonteProcess {
    pub child: std::process::Child,
    pub endpoint: String,
}

impl Drop for PonteProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ponte serve` on `dir` (and `store`, if given) at `port` with
/// `extra` arguments, and waits (60 s at most) until it says it is serving.
pub fn spawn_ponte(dir: &std::path::Path, port: u16, store: Option<&str>, extra: &[&str]) -> PonteProcess {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ponte"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(store.map(|s| ["--store", s]).into_iter().flatten())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", "off"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ponte binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(endpoint) = line.strip_prefix("Ponte switch serving on ") {
                let _ = tx.send(endpoint.to_owned());
            }
        }
    });
    let endpoint = rx.recv_timeout(Duration::from_secs(60)).expect("switch reports it is serving");
    PonteProcess { child, endpoint }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Clients for A and B and the operator of a `ponte` process on `dir`.
pub async fn process_clients(dir: &std::path::Path, endpoint: &str) -> (Client, Client, OperatorClient) {
    let certs = dir.join("certs");
    let id = |name: &str| Identity::from_dev_dir(&certs, name).unwrap();
    let a = Client::connect(endpoint, pid(A), &id(&A.to_string())).await.unwrap();
    let b = Client::connect(endpoint, pid(B), &id(&B.to_string())).await.unwrap();
    (a, b, OperatorClient::connect(endpoint, &id("operator")).await.unwrap())
}

/// Validates `xml` against the official ISO 20022 schema `iso20022/xsd/{xsd}`
/// with xmllint (Debian's libxml2-utils; `scripts/test-all` installs it).
pub fn validate_iso20022(xsd: &str, xml: &str) -> Result<(), String> {
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../iso20022/xsd").join(xsd);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("document.xml");
    std::fs::write(&file, xml).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint must be installed (Debian: libxml2-utils; scripts/test-all installs it)");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Every page of `client`'s transfers in `cycle`, read `page_size` at a
/// time; checks each page's bound and that no transfer comes twice.
pub async fn all_pages(client: &Client, cycle: u64, page_size: u32) -> Vec<ponte_domain::TransferView> {
    let (mut all, mut token, mut pages) = (Vec::<ponte_domain::TransferView>::new(), String::new(), 0);
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = client.cycle_transfers_page(cycle, page_size, &token).await.unwrap();
        pages += 1;
        assert!(page.transfers.len() <= page_size as usize, "a page of {} for size {page_size}", page.transfers.len());
        for t in page.transfers {
            assert!(seen.insert(t.id), "{} twice across pages", t.id);
            all.push(t);
        }
        match page.next_page_token {
            Some(next) => token = next,
            None => break,
        }
        assert!(pages < 1_000_000, "pages end");
    }
    all
}

/// `GET path` over plain HTTP/1.0 on the local `port` (the metrics
/// listener): the status code and the body.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}
