use super::*;

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

fn credit_transfer(n: usize) -> CreditTransfer {
    CreditTransfer {
        GrpHdr: BatchHeader {
            MsgId: "M1".into(),
            CreDtTm: "2026-12-07T12:00:00Z".into(),
            NbOfTxs: n.to_string(),
            SttlmInf: SttlmInf { SttlmMtd: "CLRG".into() },
            ..Default::default()
        },
        CdtTrfTxInf: (0..n)
            .map(|_| CreditTransferTx {
                PmtId: PaymentId { EndToEndId: E2E.into(), ..Default::default() },
                IntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: "10.50".into() },
                ChrgBr: "SLEV".into(),
                Dbtr: Party { Nm: Some("Ana & <Bia>".into()), ..Default::default() },
                DbtrAcct: Some(account("0001", "12345")),
                DbtrAgt: agent("10000001"),
                CdtrAgt: agent("10000002"),
                Cdtr: Party::default(),
                CdtrAcct: Some(account("0002", "777")),
                RmtInf: Some(Remittance { Ustrd: vec!["rent\nDecember".into()] }),
                ..Default::default()
            })
            .collect(),
    }
}

fn xmllint_or_skip() -> bool {
    std::process::Command::new("xmllint").arg("--version").output().is_ok()
}

#[test]
fn every_document_written_validates_against_its_xsd_and_reads_back() {
    assert!(xmllint_or_skip(), "xmllint must be installed (scripts/test-all installs it)");
    let pacs008 = write_pacs008(&credit_transfer(3));
    assert!(!pacs008.contains('\n'), "one line: {pacs008}");
    validate_with_xmllint(MessageKind::Pacs008, &pacs008).unwrap();
    let Inbound::CreditTransfer(read_back) = read(pacs008.as_bytes()).unwrap() else { panic!() };
    assert_eq!(read_back.CdtTrfTxInf.len(), 3);
    let tx = &read_back.CdtTrfTxInf[0];
    assert_eq!(tx.Dbtr.Nm.as_deref(), Some("Ana & <Bia>"));
    assert_eq!(tx.RmtInf.as_ref().unwrap().Ustrd, ["rent\nDecember"], "the line break survives as a reference");
    assert_eq!(tx.IntrBkSttlmAmt, Amt { Ccy: "BRL".into(), value: "10.50".into() });

    let report = StatusReport {
        GrpHdr: Header { MsgId: "R1".into(), CreDtTm: "2026-12-07T12:00:01.250Z".into(), ..Default::default() },
        OrgnlGrpInfAndSts: Some(OriginalGroupStatus {
            OrgnlMsgId: "M1".into(),
            OrgnlMsgNmId: "pacs.008.001.09".into(),
            OrgnlNbOfTxs: Some("2".into()),
            GrpSts: Some("PART".into()),
        }),
        TxInfAndSts: vec![
            TxStatus {
                OrgnlEndToEndId: Some(E2E.into()),
                TxSts: Some("ACSC".into()),
                FctvIntrBkSttlmDt: Some(DateTime { DtTm: "2026-12-07T12:00:01.250Z".into() }),
                ..Default::default()
            },
            TxStatus {
                OrgnlEndToEndId: Some(E2E.into()),
                TxSts: Some("RJCT".into()),
                StsRsnInf: vec![StatusReason {
                    Rsn: Some(CodeOrProprietary::code("AM04")),
                    AddtlInf: vec!["payer participant's liquidity limit would be exceeded".into()],
                }],
                ..Default::default()
            },
        ],
    };
    let pacs002 = write_pacs002(&report);
    validate_with_xmllint(MessageKind::Pacs002, &pacs002).unwrap();
    let Inbound::StatusReport(read_back) = read(pacs002.as_bytes()).unwrap() else { panic!() };
    assert_eq!(read_back.TxInfAndSts[1].StsRsnInf[0].Rsn.as_ref().unwrap().Cd.as_deref(), Some("AM04"));

    let returned = PaymentReturn {
        GrpHdr: BatchHeader {
            MsgId: "T1".into(),
            CreDtTm: "2026-12-07T12:00:00Z".into(),
            NbOfTxs: "1".into(),
            SttlmInf: SttlmInf { SttlmMtd: "CLRG".into() },
            ..Default::default()
        },
        TxInf: vec![ReturnTx {
            RtrId: Some("D10000002202612071200abcdefghijk".into()),
            OrgnlEndToEndId: Some(E2E.into()),
            OrgnlIntrBkSttlmAmt: None,
            RtrdIntrBkSttlmAmt: Amt { Ccy: "BRL".into(), value: "1.00".into() },
            ChrgBr: Some("SLEV".into()),
            RtrRsnInf: vec![ReturnReason { Rsn: Some(CodeOrProprietary::code("MD06")), AddtlInf: vec![] }],
        }],
    };
    let pacs004 = write_pacs004(&returned);
    validate_with_xmllint(MessageKind::Pacs004, &pacs004).unwrap();
    assert!(matches!(read(pacs004.as_bytes()).unwrap(), Inbound::Return(r) if r.TxInf.len() == 1));

    let request = StatusRequest {
        GrpHdr: Header { MsgId: "Q1".into(), CreDtTm: "2026-12-07T12:00:00Z".into(), ..Default::default() },
        TxInf: vec![StatusRequestTx { StsReqId: Some("Q1-1".into()), OrgnlEndToEndId: Some(E2E.into()) }],
    };
    let pacs028 = write_pacs028(&request);
    validate_with_xmllint(MessageKind::Pacs028, &pacs028).unwrap();
    assert!(matches!(read(pacs028.as_bytes()).unwrap(), Inbound::StatusRequest(r) if r.TxInf.len() == 1));

    let notification = Notification {
        GrpHdr: Header { MsgId: "N1".into(), CreDtTm: "2026-12-07T12:00:00Z".into(), ..Default::default() },
        Ntfctn: vec![AccountNotification {
            Id: "N1".into(),
            CreDtTm: None,
            Acct: NotificationAccount {
                Id: AccountId { Othr: GenericAccountId { Id: "10000002".into(), Issr: None } },
                Ccy: Some("BRL".into()),
            },
            Ntry: vec![Entry {
                Amt: Amt { Ccy: "BRL".into(), value: "10.50".into() },
                CdtDbtInd: "CRDT".into(),
                Sts: CodeOrProprietary::code("BOOK"),
                BookgDt: Some(DateTime { DtTm: "2026-12-07T12:00:00Z".into() }),
                BkTxCd: BankTransactionCode {
                    Domn: Domain { Cd: "PMNT".into(), Fmly: Family { Cd: "RCDT".into(), SubFmlyCd: "DMCT".into() } },
                },
                NtryDtls: vec![EntryDetails {
                    TxDtls: vec![EntryTransaction { Refs: References { EndToEndId: Some(E2E.into()), TxId: None } }],
                }],
            }],
        }],
    };
    let camt054 = write_camt054(&notification);
    validate_with_xmllint(MessageKind::Camt054, &camt054).unwrap();
    assert_eq!(read(camt054.as_bytes()).unwrap_err(), DocumentError::NotRead("camt.054.001.08"));
}

fn assignment(from: &str, to: &str) -> Assignment {
    Assignment {
        Id: "C1".into(),
        Assgnr: PartyChoice { Agt: agent(from) },
        Assgne: PartyChoice { Agt: agent(to) },
        CreDtTm: "2026-12-07T12:00:00Z".into(),
    }
}

#[test]
fn recalls_and_their_answers_validate_against_their_xsd_and_read_back() {
    assert!(xmllint_or_skip(), "xmllint must be installed (scripts/test-all installs it)");
    let recall = CancellationRequest {
        Assgnmt: assignment("10000001", "10000002"),
        Undrlyg: vec![Underlying {
            TxInf: vec![CancellationTx {
                CxlId: Some("R-1".into()),
                OrgnlEndToEndId: Some(E2E.into()),
                OrgnlIntrBkSttlmAmt: Some(Amt { Ccy: "BRL".into(), value: "10.50".into() }),
                CxlRsnInf: vec![CancellationReason {
                    Orgtr: None,
                    Rsn: Some(CodeOrProprietary::code("DUPL")),
                    AddtlInf: vec!["sent twice & by mistake".into()],
                }],
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let camt056 = write_camt056(&recall);
    assert!(!camt056.contains('\n'));
    validate_with_xmllint(MessageKind::Camt056, &camt056).unwrap();
    let Inbound::CancellationRequest(read_back) = read(camt056.as_bytes()).unwrap() else { panic!("{camt056}") };
    let tx = &read_back.Undrlyg[0].TxInf[0];
    assert_eq!((tx.CxlId.as_deref(), tx.OrgnlEndToEndId.as_deref()), (Some("R-1"), Some(E2E)));
    assert_eq!(tx.CxlRsnInf[0].AddtlInf, ["sent twice & by mistake"]);

    for (conf, status, code) in [("RJCR", "RJCR", Some("LEGL")), ("PDCR", "PDCR", None), ("CNCL", "ACCR", None)] {
        let resolution = Resolution {
            Assgnmt: assignment("10000002", "10000001"),
            RslvdCase: None,
            Sts: InvestigationStatus { Conf: conf.into() },
            CxlDtls: vec![CancellationDetails {
                TxInfAndSts: vec![CancellationTxStatus {
                    CxlStsId: Some("R-1".into()),
                    OrgnlEndToEndId: Some(E2E.into()),
                    OrgnlTxId: (status == "ACCR").then(|| "D10000002202612071200abcdefghijk".into()),
                    TxCxlSts: Some(status.into()),
                    CxlStsRsnInf: code
                        .map(|c| CancellationReason {
                            Orgtr: None,
                            Rsn: Some(CodeOrProprietary::code(c)),
                            AddtlInf: vec![],
                        })
                        .into_iter()
                        .collect(),
                    OrgnlIntrBkSttlmAmt: Some(Amt { Ccy: "BRL".into(), value: "10.50".into() }),
                    ..Default::default()
                }],
            }],
        };
        let camt029 = write_camt029(&resolution);
        validate_with_xmllint(MessageKind::Camt029, &camt029).unwrap();
        let Inbound::Resolution(read_back) = read(camt029.as_bytes()).unwrap() else { panic!("{camt029}") };
        assert_eq!(read_back.CxlDtls[0].TxInfAndSts[0].TxCxlSts.as_deref(), Some(status));
    }
    // The schema checks what the models write: a recall with no transaction
    // block, or an unknown status, is refused by xmllint too.
    let broken = camt056.replace("<CxlId>R-1</CxlId>", "<Foo>1</Foo>");
    assert!(validate_with_xmllint(MessageKind::Camt056, &broken).is_err());
    assert!(matches!(read(broken.as_bytes()), Err(DocumentError::Schema { .. })));
}

/// The sample with `from` replaced by `to` (once, and it must be there).
fn edited(xml: &str, from: &str, to: &str) -> String {
    assert!(xml.contains(from), "{from} not in the sample");
    xml.replacen(from, to, 1)
}

#[test]
fn bad_documents_get_an_error_that_says_what_is_wrong() {
    let good = write_pacs008(&credit_transfer(1));
    read(good.as_bytes()).unwrap();
    let root = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.09\">";
    let after_decl = |doc: &str| doc.split_once("?>").unwrap().1.to_owned();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "no root element"),
        ("not XML", "payment please".into(), "text outside the root"),
        ("truncated", good[..good.len() - 20].to_owned(), "not well-formed"),
        (
            "XXE",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
                after_decl(&good).replace("SLEV", "&x;")
            ),
            "DOCTYPE",
        ),
        (
            "billion laughs",
            format!(
                "<!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
                after_decl(&good)
            ),
            "DOCTYPE",
        ),
        ("undeclared entity", edited(&good, "SLEV", "&x;"), "entity reference &x;"),
        ("processing instruction", edited(&good, "<Document", "<?run rm -rf?><Document"), "processing instructions"),
        ("wrong namespace", edited(&good, "pacs.008.001.09", "pacs.008.001.08"), "namespace"),
        ("no namespace", edited(&good, root, "<Document>"), "namespace"),
        (
            "not a Document",
            edited(&edited(&good, "<Document", "<Doc"), "</Document>", "</Doc>"),
            "root element must be Document",
        ),
        (
            "foreign element",
            edited(&good, "<ChrgBr>", "<x:Evil xmlns:x=\"urn:evil\">1</x:Evil><ChrgBr>"),
            "not the document's",
        ),
        ("element outside the guideline", edited(&good, "<ChrgBr>", "<Tax>1</Tax><ChrgBr>"), "Tax"),
        ("missing id", edited(&good, "<EndToEndId>E10000001202612071200abcdefghijk</EndToEndId>", ""), "EndToEndId"),
        ("missing amount", edited(&good, "<IntrBkSttlmAmt Ccy=\"BRL\">10.50</IntrBkSttlmAmt>", ""), "IntrBkSttlmAmt"),
        ("an attribute", edited(&good, "<ChrgBr>", "<ChrgBr evil=\"1\">"), "attribute evil"),
        ("two messages", edited(&good, "</Document>", "<FIToFICstmrCdtTrf/></Document>"), "exactly one"),
        ("a camt.054", good.replace("pacs.008.001.09", "camt.054.001.08"), "the gateway writes"),
        // Order and multiplicity, as the XSD says (schema-invalid, so refused
        // even where serde alone would map the elements by name).
        (
            "out of order",
            edited(
                &edited(&good, "<ChrgBr>SLEV</ChrgBr>", ""),
                "<IntrBkSttlmAmt",
                "<ChrgBr>SLEV</ChrgBr><IntrBkSttlmAmt",
            ),
            "IntrBkSttlmAmt is out of order in CreditTransferTransaction43: the schema puts it before ChrgBr",
        ),
        (
            "twice",
            edited(&good, "<ChrgBr>SLEV</ChrgBr>", "<ChrgBr>SLEV</ChrgBr><ChrgBr>SLEV</ChrgBr>"),
            "ChrgBr appears more than once",
        ),
        ("both of a choice", edited(&good, "<Cd>CACC</Cd>", "<Cd>CACC</Cd><Prtry>X</Prtry>"), "alternatives"),
        (
            "an element inside text",
            edited(&good, "<ChrgBr>SLEV</ChrgBr>", "<ChrgBr><Cd>SLEV</Cd></ChrgBr>"),
            "text only",
        ),
    ];
    for (name, xml, expected) in cases {
        let error = read(xml.as_bytes()).expect_err(name).to_string();
        assert!(error.contains(expected), "{name}: {error}");
    }
    let deep = format!(
        "{root}<FIToFICstmrCdtTrf>{}{}</FIToFICstmrCdtTrf></Document>",
        "<a>".repeat(DEPTH_MAX),
        "</a>".repeat(DEPTH_MAX)
    );
    // Elements the schema does not name are refused where they start, so
    // nesting is bounded by the schema's own depth; the depth bound stays
    // as a second guard.
    let error = read(deep.as_bytes()).unwrap_err().to_string();
    assert!(error.contains("a is not an element of FIToFICustomerCreditTransferV09"), "{error}");
    let large = format!("{good}{}", " ".repeat(DOCUMENT_BYTES_MAX));
    assert_eq!(read(large.as_bytes()).unwrap_err(), DocumentError::TooLarge);
    let many = write_pacs008(&credit_transfer(TRANSACTIONS_MAX + 1));
    assert!(read(many.as_bytes()).unwrap_err().to_string().contains("at most 4096"));
}

#[test]
fn a_prefixed_document_reads_like_a_default_namespace_one() {
    let good = write_pacs008(&credit_transfer(1));
    let prefixed = good
        .replace("<Document xmlns=", "<p:Document xmlns:p=")
        .replace("</", "</p:")
        .replace("<", "<p:")
        .replace("<p:/p:", "</p:")
        .replace("<p:?xml", "<?xml")
        .replace("<p:p:", "<p:");
    let Inbound::CreditTransfer(read_back) = read(prefixed.as_bytes()).unwrap() else { panic!("{prefixed}") };
    assert_eq!(read_back.CdtTrfTxInf[0].PmtId.EndToEndId, E2E);
}

proptest::proptest! {
    /// Whatever bytes arrive, reading ends with a message or an error, never a panic.
    #[test]
    fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = read(&bytes);
    }

    /// Any edit of one byte of a good document is read or refused, never a panic.
    #[test]
    fn one_byte_edits_never_panic(at in 0_usize..1_000, byte in proptest::prelude::any::<u8>()) {
        let mut doc = write_pacs008(&credit_transfer(1)).into_bytes();
        let at = at % doc.len();
        doc[at] = byte;
        let _ = read(&doc);
    }
}
