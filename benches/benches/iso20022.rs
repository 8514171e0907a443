//! The ISO 20022 gateway's XML work per payment, alone: the five
//! documents a payment costs the switch (the payer's pacs.008 read, its
//! pacs.002 written, the payee's pacs.008 written, the payee's pacs.002
//! read, its camt.054 written), 256 transactions each, as the load test
//! sends them. What the gRPC path does with protobuf instead.
//!
//! `cargo bench -p ponte-benches --bench iso20022`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ponte_iso20022::model::*;

const TXS: usize = 256;
const E2E: &str = "E10000001202612071200abcdefghijk";

fn agent(code: &str) -> Agent {
    Agent {
        FinInstnId: FinInstnId { ClrSysMmbId: Some(ClrSysMmbId { ClrSysId: None, MmbId: code.into() }), Othr: None },
    }
}

fn account(branch: &str, number: &str) -> CashAccount {
    CashAccount {
        Id: AccountId { Othr: GenericAccountId { Id: number.into(), Issr: Some(branch.into()) } },
        Tp: Some(CodeOrProprietary::code("CACC")),
        Prxy: None,
    }
}

fn documents() -> (CreditTransfer, StatusReport, Notification) {
    let payments = CreditTransfer {
        GrpHdr: BatchHeader {
            MsgId: "M1".into(),
            CreDtTm: "2026-12-07T12:00:00.000Z".into(),
            NbOfTxs: TXS.to_string(),
            SttlmInf: SttlmInf { SttlmMtd: "CLRG".into() },
            ..Default::default()
        },
        CdtTrfTxInf: (0..TXS)
            .map(|_| CreditTransferTx {
                PmtId: PaymentId { EndToEndId: E2E.into(), ..Default::default() },
                IntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: "10.50".into() },
                ChrgBr: "SLEV".into(),
                DbtrAcct: Some(account("0001", "12345")),
                DbtrAgt: agent("10000001"),
                CdtrAgt: agent("10000002"),
                CdtrAcct: Some(account("0002", "777")),
                RmtInf: Some(Remittance { Ustrd: vec!["invoice 42".into()] }),
                ..Default::default()
            })
            .collect(),
    };
    let statuses = StatusReport {
        GrpHdr: Header { MsgId: "R1".into(), CreDtTm: "2026-12-07T12:00:01.250Z".into(), ..Default::default() },
        OrgnlGrpInfAndSts: None,
        TxInfAndSts: (0..TXS)
            .map(|_| TxStatus {
                OrgnlEndToEndId: Some(E2E.into()),
                TxSts: Some("ACSC".into()),
                FctvIntrBkSttlmDt: Some(DateTime { DtTm: "2026-12-07T12:00:01.250Z".into() }),
                ..Default::default()
            })
            .collect(),
    };
    let entry = Entry {
        Amt: Amt { Ccy: "BRL".into(), value: "10.50".into() },
        CdtDbtInd: "CRDT".into(),
        Sts: CodeOrProprietary::code("BOOK"),
        BookgDt: Some(DateTime { DtTm: "2026-12-07T12:00:00.000Z".into() }),
        BkTxCd: BankTransactionCode {
            Domn: Domain { Cd: "PMNT".into(), Fmly: Family { Cd: "RCDT".into(), SubFmlyCd: "DMCT".into() } },
        },
        NtryDtls: vec![EntryDetails {
            TxDtls: vec![EntryTransaction { Refs: References { EndToEndId: Some(E2E.into()), TxId: None } }],
        }],
    };
    let credits = Notification {
        GrpHdr: Header { MsgId: "N1".into(), CreDtTm: "2026-12-07T12:00:00.000Z".into(), ..Default::default() },
        Ntfctn: vec![AccountNotification {
            Id: "N1".into(),
            CreDtTm: None,
            Acct: NotificationAccount {
                Id: AccountId { Othr: GenericAccountId { Id: "10000002".into(), Issr: None } },
                Ccy: Some("BRL".into()),
            },
            Ntry: vec![entry; TXS],
        }],
    };
    (payments, statuses, credits)
}

fn iso20022(c: &mut Criterion) {
    let (payments, statuses, credits) = documents();
    let pacs008 = ponte_iso20022::write_pacs008(&payments);
    let mut answers = statuses.clone();
    for tx in &mut answers.TxInfAndSts {
        tx.TxSts = Some("ACCP".into());
        tx.FctvIntrBkSttlmDt = None;
    }
    let pacs002 = ponte_iso20022::write_pacs002(&answers);
    let mut group = c.benchmark_group("iso20022");
    group.throughput(Throughput::Elements(TXS as u64));
    group.bench_function("check_pacs008_256", |b| b.iter(|| ponte_iso20022::check(pacs008.as_bytes()).unwrap()));
    group.bench_function("read_pacs008_256", |b| b.iter(|| ponte_iso20022::read(pacs008.as_bytes()).unwrap()));
    group.bench_function("write_pacs008_256", |b| b.iter(|| ponte_iso20022::write_pacs008(&payments).len()));
    group.bench_function("write_pacs002_256", |b| b.iter(|| ponte_iso20022::write_pacs002(&statuses).len()));
    group.bench_function("read_pacs002_256", |b| b.iter(|| ponte_iso20022::read(pacs002.as_bytes()).unwrap()));
    group.bench_function("write_camt054_256", |b| b.iter(|| ponte_iso20022::write_camt054(&credits).len()));
    group.finish();
}

criterion_group!(benches, iso20022);
criterion_main!(benches);
