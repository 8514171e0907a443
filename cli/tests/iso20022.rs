//! The ISO 20022 gateway over real HTTPS with mTLS, against a real switch:
//! ISO and gRPC participants paying each other in one cycle with one
//! netting, refusals, timeouts, duplicates, returns, status requests, a
//! bank acting as another, and a table of bad input. Every document sent or
//! received is validated against its official XSD with `xmllint`.

mod common;

use common::*;
use ponte_domain::{Amount, EndToEndId};
use ponte_iso20022::model::*;
use ponte_iso20022::{MessageKind, validate_with_xmllint};
use ponte_sdk::iso20022::{IsoClient, IsoInbox};
use ponte_sdk::{PaymentOutcome, ReportFormat};
use ponte_switch::iso20022::convert::{NOT_PROVIDED, account_to_iso, agent};
use ponte_switch::server;
use std::sync::{Arc, Mutex};

async fn start() -> TestSwitch {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.iso20022_listen = Some(([127, 0, 0, 1], 0).into());
    let switch = server::start(config.clone()).await.expect("switch starts");
    TestSwitch { dir, switch: Some(switch), config }
}

async fn iso(switch: &TestSwitch, name: &str) -> IsoClient {
    let addr = switch.switch.as_ref().unwrap().iso20022_addr.expect("gateway on");
    IsoClient::from_dev_dir(addr, &switch.certs(), name).await.unwrap()
}

/// Which message a document is, by its namespace.
fn kind_of(xml: &str) -> MessageKind {
    MessageKind::ALL.into_iter().find(|k| xml.contains(k.namespace())).unwrap_or_else(|| panic!("unknown: {xml}"))
}

fn valid(xml: &str) {
    validate_with_xmllint(kind_of(xml), xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
}

fn header(n: usize) -> BatchHeader {
    BatchHeader {
        MsgId: format!("MSG{}", now_ms()),
        CreDtTm: "2026-12-07T12:00:00Z".into(),
        NbOfTxs: n.to_string(),
        SttlmInf: SttlmInf { SttlmMtd: "CLRG".into() },
        ..Default::default()
    }
}

/// One payment from `payer` to an account at `payee`.
fn transfer(id: &EndToEndId, payer: u32, payee: u32, amount: &str) -> CreditTransferTx {
    CreditTransferTx {
        PmtId: PaymentId { EndToEndId: id.to_string(), ..Default::default() },
        IntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: amount.into() },
        ChrgBr: "SLEV".into(),
        DbtrAcct: Some(account_to_iso(&account(payer, "1234"))),
        DbtrAgt: agent(payer),
        CdtrAgt: agent(payee),
        CdtrAcct: Some(account_to_iso(&account(payee, "5678"))),
        RmtInf: Some(Remittance { Ustrd: vec!["ISO".into()] }),
        ..Default::default()
    }
}

fn pacs008(txs: Vec<CreditTransferTx>) -> String {
    let xml = ponte_iso20022::write_pacs008(&CreditTransfer { GrpHdr: header(txs.len()), CdtTrfTxInf: txs });
    valid(&xml);
    xml
}

/// Posts a document; the pacs.002 answer (validated) read back.
async fn post_ok(client: &IsoClient, xml: String) -> StatusReport {
    let (status, body) = client.post(xml).await.unwrap();
    assert_eq!(status, 200, "{body}");
    valid(&body);
    match ponte_iso20022::read(body.as_bytes()).unwrap() {
        ponte_iso20022::Inbound::StatusReport(report) => report,
        other => panic!("{other:?}"),
    }
}

fn statuses(report: &StatusReport) -> Vec<(String, Option<String>)> {
    report
        .TxInfAndSts
        .iter()
        .map(|s| {
            let reason =
                s.StsRsnInf.first().and_then(|r| r.Rsn.as_ref()).and_then(|r| r.Cd.clone().or(r.Prtry.clone()));
            (s.TxSts.clone().unwrap_or_default(), reason)
        })
        .collect()
}

/// An ISO payee: reads its inbox, validates every document, answers every
/// pacs.008 with `decide`, and keeps what it got.
#[derive(Clone, Default)]
struct IsoPayee {
    documents: Arc<Mutex<Vec<String>>>,
}

impl IsoPayee {
    fn spawn(
        client: IsoClient,
        mut inbox: IsoInbox,
        decide: fn(&CreditTransferTx) -> Option<&'static str>,
    ) -> IsoPayee {
        let payee = IsoPayee::default();
        let kept = payee.documents.clone();
        tokio::spawn(async move {
            while let Ok(Some(document)) = inbox.next_document().await {
                valid(&document);
                kept.lock().unwrap().push(document.clone());
                let Ok(ponte_iso20022::Inbound::CreditTransfer(payments)) = ponte_iso20022::read(document.as_bytes())
                else {
                    continue;
                };
                let answers = payments
                    .CdtTrfTxInf
                    .iter()
                    .filter_map(|tx| {
                        let answer = decide(tx)?;
                        let (status, reason) = match answer {
                            "ACCP" => ("ACCP", vec![]),
                            code => (
                                "RJCT",
                                vec![StatusReason { Rsn: Some(CodeOrProprietary::code(code)), AddtlInf: vec![] }],
                            ),
                        };
                        Some(TxStatus {
                            OrgnlEndToEndId: Some(tx.PmtId.EndToEndId.clone()),
                            TxSts: Some(status.into()),
                            StsRsnInf: reason,
                            ..Default::default()
                        })
                    })
                    .collect::<Vec<_>>();
                if answers.is_empty() {
                    continue;
                }
                let report = StatusReport {
                    GrpHdr: Header {
                        MsgId: "ANSWER".into(),
                        CreDtTm: "2026-12-07T12:00:00Z".into(),
                        ..Default::default()
                    },
                    OrgnlGrpInfAndSts: None,
                    TxInfAndSts: answers,
                };
                let xml = ponte_iso20022::write_pacs002(&report);
                valid(&xml);
                let (status, body) = client.post(xml).await.unwrap();
                assert_eq!(status, 202, "{body}");
            }
        });
        payee
    }

    fn containing(&self, what: &str) -> Vec<String> {
        self.documents.lock().unwrap().iter().filter(|d| d.contains(what)).cloned().collect()
    }
}

async fn iso_payee(switch: &TestSwitch, code: u32, decide: fn(&CreditTransferTx) -> Option<&'static str>) -> IsoPayee {
    let client = iso(switch, &code.to_string()).await;
    let inbox = client.inbox().await.unwrap();
    IsoPayee::spawn(client, inbox, decide)
}

fn accept(_: &CreditTransferTx) -> Option<&'static str> {
    Some("ACCP")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iso_and_grpc_banks_pay_each_other_in_one_cycle_with_one_netting() {
    let switch = start().await;
    // A speaks ISO 20022 both ways; B is a gRPC bank; C speaks ISO as a payee.
    let a_iso = iso(&switch, &A.to_string()).await;
    let a_payee = iso_payee(&switch, A, accept).await;
    let c_payee = iso_payee(&switch, C, accept).await;
    let b = switch.client(B).await;
    let b_inbox = Payee::accepting();
    let b_handle = b_inbox.serve(&b).await;

    // ISO -> gRPC, and ISO -> ISO, in one document.
    let (to_b, to_c) = (payment_id(A), payment_id(A));
    let report = post_ok(&a_iso, pacs008(vec![transfer(&to_b, A, B, "100.25"), transfer(&to_c, A, C, "7")])).await;
    assert_eq!(statuses(&report), [("ACSC".into(), None), ("ACSC".into(), None)]);
    assert_eq!(report.OrgnlGrpInfAndSts.as_ref().unwrap().GrpSts.as_deref(), Some("ACSC"));
    assert_eq!(report.TxInfAndSts[1].OrgnlEndToEndId.as_deref(), Some(to_c.as_str()));
    eventually("B told settled", || b_inbox.settled.lock().unwrap().contains(&to_b)).await;
    assert_eq!(b_inbox.seen.lock().unwrap()[0].amount, Amount::parse_positive("100.25").unwrap());
    // C got the payment (pacs.008, with its deadline) and then its credit (camt.054).
    eventually("C's camt.054", || !c_payee.containing("camt.054").is_empty()).await;
    let delivered = c_payee.containing("pacs.008")[0].clone();
    assert!(delivered.contains(to_c.as_str()) && delivered.contains("<RjctTm>"), "{delivered}");
    assert!(c_payee.containing("camt.054")[0].contains("<Amt Ccy=\"BRL\">7.00</Amt>"));

    // gRPC -> ISO.
    let from_b = payment(&b, A, "40.00");
    assert!(matches!(b.submit(&from_b).await.unwrap(), PaymentOutcome::Settled { .. }));
    eventually("A's camt.054", || !a_payee.containing(from_b.id.as_str()).is_empty()).await;

    // One cycle, one netting: A -107.25 + 40, B +100.25 - 40, C +7.
    let operator = switch.operator().await;
    let cycle = operator.close_cycle().await.unwrap().id;
    let (_, json) = operator.cycle_report(cycle, ReportFormat::Json).await.unwrap();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let net = |code: u32| {
        report["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["participant"].as_str() == Some(code.to_string().as_str()))
            .unwrap()["net_position"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!((net(A), net(B), net(C)), ("-67.25".into(), "60.25".into(), "7.00".into()));
    assert_eq!(report["movements"], 3);
    let (_, camt053) = operator.cycle_report(cycle, ReportFormat::Camt053).await.unwrap();
    valid(&camt053);
    // Each ISO bank reads its own camt.053 of the cycle: its position only.
    let (status, statement) = a_iso.statement(cycle).await.unwrap();
    assert_eq!(status, 200, "{statement}");
    valid(&statement);
    assert_eq!(statement.matches("<Stmt>").count(), 1, "A's statement only: {statement}");
    assert!(statement.contains("<Id>10000001</Id>") && !statement.contains("<Id>10000002</Id>"), "{statement}");
    assert!(statement.contains("<Amt Ccy=\"BRL\">67.25</Amt>"), "A's net position: {statement}");
    let (status, unknown) = a_iso.statement(cycle + 100).await.unwrap();
    assert_eq!(status, 404, "{unknown}");
    b_handle.stop().await;
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_timeouts_duplicates_returns_and_status_requests() {
    let switch = start().await;
    let a_iso = iso(&switch, &A.to_string()).await;
    let a_payee = iso_payee(&switch, A, accept).await;
    // C refuses payments of 13.00 with AC06, never answers 99.00, accepts the rest.
    let c_payee = iso_payee(&switch, C, |tx| match tx.IntrBkSttlmAmt.value.as_str() {
        "13.00" => Some("AC06"),
        "99.00" => None,
        _ => Some("ACCP"),
    })
    .await;

    let (refused, silent, offline, good) = (payment_id(A), payment_id(A), payment_id(A), payment_id(A));
    let report = post_ok(
        &a_iso,
        pacs008(vec![
            transfer(&refused, A, C, "13"),
            transfer(&silent, A, C, "99"),
            transfer(&offline, A, B, "1"),
            transfer(&good, A, C, "5.5"),
        ]),
    )
    .await;
    assert_eq!(
        statuses(&report),
        [
            ("RJCT".into(), Some("AC06".into())),
            ("RJCT".into(), Some("AB03".into())),
            ("RJCT".into(), Some("AB08".into())),
            ("ACSC".into(), None)
        ]
    );
    assert_eq!(report.OrgnlGrpInfAndSts.as_ref().unwrap().GrpSts.as_deref(), Some("PART"));
    // The payee is told the payment it did not answer is not going ahead.
    eventually("C told of the timeout", || {
        c_payee.containing("pacs.002").iter().any(|d| d.contains(silent.as_str()) && d.contains("AB03"))
    })
    .await;

    // The same id and content again: the same outcome, executed once.
    let again = post_ok(&a_iso, pacs008(vec![transfer(&good, A, C, "5.50")])).await;
    assert_eq!(statuses(&again), [("ACSC".into(), None)]);
    // The same id with other content: AM05.
    let changed = post_ok(&a_iso, pacs008(vec![transfer(&good, A, C, "5.51")])).await;
    assert_eq!(statuses(&changed), [("RJCT".into(), Some("AM05".into()))]);
    // The same id twice in one document: the second is AM05, the first goes on.
    let twice = payment_id(A);
    let both = post_ok(&a_iso, pacs008(vec![transfer(&twice, A, C, "1"), transfer(&twice, A, C, "1")])).await;
    assert_eq!(statuses(&both), [("ACSC".into(), None), ("RJCT".into(), Some("AM05".into()))]);

    // C returns part of the good payment with pacs.004; A gets it as pacs.004.
    let c_iso = iso(&switch, &C.to_string()).await;
    let return_id = EndToEndId::generate(ponte_domain::IdKind::Return, pid(C), now_ms());
    let give_back = |amount: &str, reason: &str| {
        let xml = ponte_iso20022::write_pacs004(&PaymentReturn {
            GrpHdr: header(1),
            TxInf: vec![ReturnTx {
                RtrId: Some(return_id.to_string()),
                OrgnlEndToEndId: Some(good.to_string()),
                OrgnlIntrBkSttlmAmt: None,
                RtrdIntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: amount.into() },
                ChrgBr: Some("SLEV".into()),
                RtrRsnInf: vec![ReturnReason { Rsn: Some(CodeOrProprietary::code(reason)), AddtlInf: vec![] }],
            }],
        });
        valid(&xml);
        xml
    };
    let returned = post_ok(&c_iso, give_back("2.50", "MD06")).await;
    assert_eq!(statuses(&returned), [("ACSC".into(), None)]);
    assert_eq!(returned.TxInfAndSts[0].OrgnlTxId.as_deref(), Some(return_id.as_str()));
    eventually("A's pacs.004", || !a_payee.containing("pacs.004").is_empty()).await;
    assert!(a_payee.containing("pacs.004")[0].contains(return_id.as_str()));
    // More than the original: AM09. Not a return reason: CH16.
    let other_return = EndToEndId::generate(ponte_domain::IdKind::Return, pid(C), now_ms());
    let over = give_back("100.00", "MD06").replace(return_id.as_str(), other_return.as_str());
    assert_eq!(statuses(&post_ok(&c_iso, over).await), [("RJCT".into(), Some("AM09".into()))]);
    let third_return = EndToEndId::generate(ponte_domain::IdKind::Return, pid(C), now_ms());
    let not_a_reason = give_back("1.00", "AM04").replace(return_id.as_str(), third_return.as_str());
    assert_eq!(statuses(&post_ok(&c_iso, not_a_reason).await), [("RJCT".into(), Some("CH16".into()))]);

    // Status requests: settled, refused, returned, and unknown.
    let unknown = payment_id(A);
    let request = ponte_iso20022::write_pacs028(&StatusRequest {
        GrpHdr: Header { MsgId: "Q1".into(), CreDtTm: "2026-12-07T12:00:00Z".into(), ..Default::default() },
        TxInf: [&good, &refused, &return_id, &unknown]
            .iter()
            .map(|id| StatusRequestTx { StsReqId: Some("Q".into()), OrgnlEndToEndId: Some(id.to_string()) })
            .collect(),
    });
    valid(&request);
    let status = post_ok(&a_iso, request).await;
    assert_eq!(
        statuses(&status),
        [
            ("ACSC".into(), None),
            ("RJCT".into(), Some("AC06".into())),
            ("ACSC".into(), None),
            (String::new(), Some("NOTFOUND".into()))
        ]
    );

    // A payee answer the switch cannot take refuses the whole document.
    let bad_answer = ponte_iso20022::write_pacs002(&StatusReport {
        GrpHdr: Header { MsgId: "A1".into(), CreDtTm: "2026-12-07T12:00:00Z".into(), ..Default::default() },
        OrgnlGrpInfAndSts: None,
        TxInfAndSts: vec![TxStatus {
            OrgnlEndToEndId: Some(good.to_string()),
            TxSts: Some("RJCT".into()),
            StsRsnInf: vec![StatusReason { Rsn: Some(CodeOrProprietary::code("MD06")), AddtlInf: vec![] }],
            ..Default::default()
        }],
    });
    let (code, body) = c_iso.post(bad_answer).await.unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("a return reason, not a reason to refuse a payment"), "{body}");
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_acting_as_another_and_bad_input_execute_nothing() {
    let switch = start().await;
    let a_iso = iso(&switch, &A.to_string()).await;
    let _c_payee = iso_payee(&switch, C, accept).await;
    let a = switch.client(A).await;
    let not_executed = |id: EndToEndId| {
        let a = a.clone();
        async move {
            let error = a.status(&id).await.unwrap_err();
            assert!(matches!(error, ponte_sdk::Error::NotFound(_)), "{id} was executed: {error:?}");
        }
    };

    // A pays from B's agent: 403, and the good transaction beside it is not executed either.
    let (mine, theirs) = (payment_id(A), payment_id(A));
    let mut as_b = transfer(&theirs, A, C, "1");
    as_b.DbtrAgt = agent(B);
    let (code, body) = a_iso.post(pacs008(vec![transfer(&mine, A, C, "1"), as_b])).await.unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("caller is participant 10000001"), "{body}");
    not_executed(mine).await;
    not_executed(theirs).await;
    // The operator's certificate cannot use the gateway.
    let (code, _) = iso(&switch, "operator").await.post(pacs008(vec![transfer(&mine, A, C, "1")])).await.unwrap();
    assert_eq!(code, 403);

    // Refused per transaction with an ISO reason; nothing executed.
    let id = payment_id(A);
    let good = pacs008(vec![transfer(&id, A, C, "1.00")]);
    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1)
    };
    let rejected = [
        ("wrong currency", with("Ccy=\"BRL\"", "Ccy=\"USD\""), "AM03"),
        ("over-precise amount", with(">1.00<", ">1.001<"), "AM12"),
        ("zero amount", with(">1.00<", ">0<"), "AM12"),
        ("end-to-end id of another bank", good.replace(id.as_str(), payment_id(B).as_str()), "FF08"),
        ("malformed end-to-end id", with(id.as_str(), "E123"), "FF08"),
        ("other charges", with(">SLEV<", ">DEBT<"), "CH16"),
        ("unknown account type", with(">CACC<", ">XXXX<"), "AC02"),
        (
            "a key and an account",
            with("<Tp><Cd>CACC</Cd></Tp></CdtrAcct>", "<Tp><Cd>CACC</Cd></Tp><Prxy><Id>x</Id></Prxy></CdtrAcct>"),
            "CH16",
        ),
    ];
    for (name, xml, reason) in rejected {
        let report = post_ok(&a_iso, xml).await;
        assert_eq!(statuses(&report), [("RJCT".into(), Some(reason.into()))], "{name}");
    }
    not_executed(id).await;

    // Refused whole with an HTTP error and a reason.
    let root = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.09\">";
    let body = good.split_once("?>").unwrap().1.to_owned();
    let http = [
        ("schema-invalid", with("<ChrgBr>", "<Unknown/><ChrgBr>"), 400, "Unknown"),
        ("wrong namespace", good.replace("pacs.008.001.09", "pacs.008.001.12"), 400, "namespace"),
        (
            "XXE",
            format!("<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}", body.replace(">ISO<", ">&x;<")),
            400,
            "DOCTYPE",
        ),
        (
            "entity expansion",
            format!(
                "<!DOCTYPE d [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>{}",
                body.replace(">ISO<", ">&b;<")
            ),
            400,
            "DOCTYPE",
        ),
        ("missing ids", with(&format!("<EndToEndId>{id}</EndToEndId>"), ""), 400, "EndToEndId"),
        ("count differs", with("<NbOfTxs>1</NbOfTxs>", "<NbOfTxs>2</NbOfTxs>"), 400, "NbOfTxs"),
        ("not XML", "{\"amount\": 1}".into(), 400, "well-formed"),
        ("a camt.054", good.replace("pacs.008.001.09", "camt.054.001.08"), 400, "gateway writes"),
        ("10 MiB", format!("{root}{}", "<a/>".repeat(10 * 1024 * 1024 / 4)), 413, "at most"),
    ];
    for (name, xml, status, reason) in http {
        let (code, text) = a_iso.post(xml).await.unwrap();
        assert_eq!(code, status, "{name}: {text}");
        assert!(text.contains(reason), "{name}: {text}");
    }
    not_executed(id).await;

    // The switch is healthy after all of it: the good document settles.
    let report = post_ok(&a_iso, good).await;
    assert_eq!(statuses(&report), [("ACSC".into(), None)]);
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iso_bank_pays_a_key_and_plain_http_clients_get_clear_answers() {
    let switch = start().await;
    let a_iso = iso(&switch, &A.to_string()).await;
    let _c_payee = iso_payee(&switch, C, accept).await;
    let c = switch.client(C).await;
    let owner = ponte_sdk::Owner {
        kind: ponte_sdk::OwnerKind::Person,
        id: "52998224725".into(),
        name: "Maria da Silva".into(),
    };
    c.register_key(ponte_directory::keys::KeyType::Email, "ana@example.com", &account(C, "42"), &owner).await.unwrap();
    let id = payment_id(A);
    let mut to_key = transfer(&id, A, C, "3.00");
    to_key.CdtrAgt =
        Agent { FinInstnId: FinInstnId { ClrSysMmbId: None, Othr: Some(GenericId { Id: NOT_PROVIDED.into() }) } };
    to_key.CdtrAcct = Some(CashAccount {
        Id: AccountId { Othr: GenericAccountId { Id: NOT_PROVIDED.into(), Issr: None } },
        Tp: None,
        Prxy: Some(Proxy { Tp: Some(CodeOrProprietary::code("EMAL")), Id: "ANA@example.com".into() }),
    });
    let report = post_ok(&a_iso, pacs008(vec![to_key])).await;
    assert_eq!(statuses(&report), [("ACSC".into(), None)]);
    let view = c.status(&id).await.unwrap();
    assert_eq!(view.payee, account(C, "42"));

    // An empty body is no document.
    let (code, text) = a_iso.post(String::new()).await.unwrap();
    assert_eq!((code, text.contains("no root element")), (400, true), "{text}");
    switch.stop().await;
}

/// A camt.056 from `from` recalling `original` for `reason`, validated.
fn camt056(from: u32, original: &EndToEndId, reason: &str) -> String {
    let xml = ponte_iso20022::write_camt056(&CancellationRequest {
        Assgnmt: Assignment {
            Id: format!("CASE{}", now_ms()),
            Assgnr: PartyChoice { Agt: agent(from) },
            Assgne: PartyChoice { Agt: agent(from) },
            CreDtTm: "2026-12-07T12:00:00Z".into(),
        },
        Undrlyg: vec![Underlying {
            TxInf: vec![CancellationTx {
                CxlId: Some("CXL1".into()),
                OrgnlEndToEndId: Some(original.to_string()),
                CxlRsnInf: vec![CancellationReason {
                    Orgtr: None,
                    Rsn: Some(CodeOrProprietary::code(reason)),
                    AddtlInf: vec!["sent twice".into()],
                }],
                ..Default::default()
            }],
        }],
        ..Default::default()
    });
    valid(&xml);
    xml
}

/// A camt.029 from `from` answering the recall of `original` with `status`
/// (RJCR, or ACCR which the gateway refuses) and `reason`, validated.
fn camt029(from: u32, original: &EndToEndId, status: &str, reason: &str) -> String {
    let xml = ponte_iso20022::write_camt029(&Resolution {
        Assgnmt: Assignment {
            Id: format!("RES{}", now_ms()),
            Assgnr: PartyChoice { Agt: agent(from) },
            Assgne: PartyChoice { Agt: agent(from) },
            CreDtTm: "2026-12-07T12:00:00Z".into(),
        },
        RslvdCase: None,
        Sts: InvestigationStatus { Conf: status.into() },
        CxlDtls: vec![CancellationDetails {
            TxInfAndSts: vec![CancellationTxStatus {
                OrgnlEndToEndId: Some(original.to_string()),
                TxCxlSts: Some(status.into()),
                CxlStsRsnInf: vec![CancellationReason {
                    Orgtr: None,
                    Rsn: Some(CodeOrProprietary::code(reason)),
                    AddtlInf: vec![],
                }],
                ..Default::default()
            }],
        }],
    });
    valid(&xml);
    xml
}

/// Posts a camt.056; the camt.029 answer (validated): each recall's
/// `TxCxlSts` with its reason code.
async fn recall_ok(client: &IsoClient, xml: String) -> Vec<(String, Option<String>)> {
    let (status, body) = client.post(xml).await.unwrap();
    assert_eq!(status, 200, "{body}");
    valid(&body);
    let ponte_iso20022::Inbound::Resolution(answer) = ponte_iso20022::read(body.as_bytes()).unwrap() else {
        panic!("{body}")
    };
    answer
        .CxlDtls
        .iter()
        .flat_map(|d| d.TxInfAndSts.iter())
        .map(|s| {
            let reason =
                s.CxlStsRsnInf.first().and_then(|r| r.Rsn.as_ref()).and_then(|r| r.Cd.clone().or(r.Prtry.clone()));
            (s.TxCxlSts.clone().unwrap_or_default(), reason)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recalls_between_iso_and_grpc_banks_close_by_a_return_or_a_refusal() {
    use ponte_sdk::RecallState;
    let switch = start().await;
    // A and C speak ISO 20022; B is a gRPC bank.
    let (a_iso, c_iso) = (iso(&switch, &A.to_string()).await, iso(&switch, &C.to_string()).await);
    let a_payee = iso_payee(&switch, A, accept).await;
    let c_payee = iso_payee(&switch, C, accept).await;
    let b = switch.client(B).await;
    let b_side = Payee::accepting();
    let b_handle = b_side.serve(&b).await;
    let (to_c, to_c_again, to_b) = (payment_id(A), payment_id(A), payment_id(A));
    let paid = pacs008(vec![
        transfer(&to_c, A, C, "10.00"),
        transfer(&to_c_again, A, C, "20.00"),
        transfer(&to_b, A, B, "3.00"),
    ]);
    assert!(statuses(&post_ok(&a_iso, paid).await).iter().all(|(s, _)| s == "ACSC"));

    // ISO -> ISO, refused: A recalls, C hears it as a camt.056 and refuses
    // with a camt.029; A hears the refusal as a camt.029.
    assert_eq!(recall_ok(&a_iso, camt056(A, &to_c, "DUPL")).await, [("PDCR".into(), None)]);
    eventually("C's camt.056", || !c_payee.containing("camt.056").is_empty()).await;
    let asked = c_payee.containing("camt.056")[0].clone();
    assert!(asked.contains(to_c.as_str()) && asked.contains("<Cd>DUPL</Cd>"), "{asked}");
    assert!(asked.contains("<AddtlInf>sent twice</AddtlInf>"), "{asked}");
    let (code, body) = c_iso.post(camt029(C, &to_c, "RJCR", "LEGL")).await.unwrap();
    assert_eq!(code, 202, "{body}");
    eventually("A's camt.029", || !a_payee.containing("camt.029").is_empty()).await;
    let told = a_payee.containing("camt.029")[0].clone();
    assert!(told.contains("<TxCxlSts>RJCR</TxCxlSts>") && told.contains("<Cd>LEGL</Cd>"), "{told}");
    // The same recall again answers how it closed.
    assert_eq!(recall_ok(&a_iso, camt056(A, &to_c, "DUPL")).await, [("RJCR".into(), Some("LEGL".into()))]);

    // ISO -> ISO, accepted by a pacs.004: A gets the pacs.004 and a camt.029 ACCR.
    assert_eq!(recall_ok(&a_iso, camt056(A, &to_c_again, "FRAD")).await, [("PDCR".into(), None)]);
    let return_id = EndToEndId::generate(ponte_domain::IdKind::Return, pid(C), now_ms());
    let give_back = ponte_iso20022::write_pacs004(&PaymentReturn {
        GrpHdr: header(1),
        TxInf: vec![ReturnTx {
            RtrId: Some(return_id.to_string()),
            OrgnlEndToEndId: Some(to_c_again.to_string()),
            OrgnlIntrBkSttlmAmt: None,
            RtrdIntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: "20.00".into() },
            ChrgBr: Some("SLEV".into()),
            RtrRsnInf: vec![ReturnReason { Rsn: Some(CodeOrProprietary::code("FR01")), AddtlInf: vec![] }],
        }],
    });
    valid(&give_back);
    assert_eq!(statuses(&post_ok(&c_iso, give_back).await), [("ACSC".into(), None)]);
    eventually("A's camt.029 ACCR", || {
        a_payee.containing("<TxCxlSts>ACCR</TxCxlSts>").iter().any(|d| d.contains(return_id.as_str()))
    })
    .await;
    eventually("A's pacs.004", || a_payee.containing(return_id.as_str()).iter().any(|d| d.contains("pacs.004"))).await;

    // ISO payer -> gRPC payee: B hears of it on its inbox and refuses over gRPC.
    assert_eq!(recall_ok(&a_iso, camt056(A, &to_b, "TECH")).await, [("PDCR".into(), None)]);
    eventually("B is asked", || !b_side.recalls_of(&to_b).is_empty()).await;
    assert_eq!(b_side.recalls_of(&to_b)[0].reason, ponte_domain::ReasonCode::TechnicalProblem);
    b.refuse_recall(&to_b, ponte_domain::ReasonCode::AgentDecision).await.unwrap();
    eventually("A's camt.029 AGNT", || a_payee.containing("<Cd>AGNT</Cd>").iter().any(|d| d.contains(to_b.as_str())))
        .await;

    // gRPC payer -> ISO payee: B recalls, C returns with a pacs.004, B is told.
    let from_b = payment(&b, C, "4.00");
    assert!(b.submit(&from_b).await.unwrap().is_settled());
    assert_eq!(
        b.recall(&from_b.id, ponte_domain::ReasonCode::CustomerDecision, "").await.unwrap().state,
        RecallState::Open
    );
    eventually("C's camt.056 from B", || c_payee.containing(from_b.id.as_str()).iter().any(|d| d.contains("camt.056")))
        .await;
    let back = EndToEndId::generate(ponte_domain::IdKind::Return, pid(C), now_ms());
    let give_back = ponte_iso20022::write_pacs004(&PaymentReturn {
        GrpHdr: header(1),
        TxInf: vec![ReturnTx {
            RtrId: Some(back.to_string()),
            OrgnlEndToEndId: Some(from_b.id.to_string()),
            OrgnlIntrBkSttlmAmt: None,
            RtrdIntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: "4.00".into() },
            ChrgBr: Some("SLEV".into()),
            RtrRsnInf: vec![ReturnReason { Rsn: Some(CodeOrProprietary::code("MD06")), AddtlInf: vec![] }],
        }],
    });
    assert_eq!(statuses(&post_ok(&c_iso, give_back).await), [("ACSC".into(), None)]);
    eventually("B told its recall was accepted", || {
        b_side
            .recalls_of(&from_b.id)
            .iter()
            .any(|r| matches!(r.state, RecallState::Accepted { return_id, .. } if return_id == back))
    })
    .await;

    // Refused by the switch, with a camt.029 RJCR: a payment of someone
    // else (NOOR, nothing revealed), a return reason as a recall reason.
    assert_eq!(recall_ok(&c_iso, camt056(C, &to_b, "DUPL")).await, [("RJCR".into(), Some("NOOR".into()))]);
    assert_eq!(recall_ok(&a_iso, camt056(A, &to_c, "MD06")).await, [("RJCR".into(), Some("INVALID_FIELD".into()))]);
    // A bank recalling as another: 403. A camt.029 accepting: 400 (return it instead).
    let (code, body) = a_iso.post(camt056(B, &to_b, "DUPL")).await.unwrap();
    assert_eq!(code, 403, "{body}");
    let (code, body) = c_iso.post(camt029(C, &to_c, "ACCR", "LEGL")).await.unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("pacs.004"), "{body}");
    let (code, body) = c_iso.post(camt029(C, &to_c, "RJCR", "MD06")).await.unwrap();
    assert_eq!(code, 400, "{body}");
    // Refusing a recall already closed: taken by none, said so.
    let (code, body) = c_iso.post(camt029(C, &to_c_again, "RJCR", "LEGL")).await.unwrap();
    assert_eq!(code, 422, "{body}");
    b_handle.stop().await;
    switch.stop().await;
}
