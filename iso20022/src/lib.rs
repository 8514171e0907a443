//! The ISO 20022 documents Ponte's gateway reads and writes.
//!
//! - [`read`] takes the bytes of one document a participant sent and gives
//!   the message it carries, or a [`DocumentError`] that says what is wrong.
//!   It first checks the document itself with quick-xml's namespace-aware
//!   reader ([`check`]): well-formed, no DOCTYPE (so no entity expansion and
//!   no external entity, whatever the parser), no processing instruction,
//!   the root `Document` in the namespace of a message the gateway reads,
//!   every element in that namespace, no attribute but `Ccy` and namespace
//!   declarations, bounded depth and size, and elements in the order and
//!   number the message's XSD allows (`order`). Then serde maps it onto
//!   [`model`], which refuses any element outside Ponte's usage guideline.
//! - The `write_*` functions give a whole document (declaration, root and
//!   namespace) on one line: text never holds a raw line break, so a stream
//!   of documents can be cut at line ends.
//!
//! Values (ids, amounts, codes) are checked where they are used, by the
//! gateway in the switch: this crate knows XML and ISO, not Ponte's rules.

pub mod model;
mod order;

use model::*;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use serde::{Deserialize, Serialize};

/// Largest document the gateway reads.
pub const DOCUMENT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Deepest element nesting accepted (ISO messages Ponte reads nest about 8 deep).
pub const DEPTH_MAX: usize = 24;
/// Most transactions (`CdtTrfTxInf`, `TxInfAndSts`, `TxInf`) in one document.
pub const TRANSACTIONS_MAX: usize = 4_096;

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The messages, with the version Ponte reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// FI to FI customer credit transfer: a payment (in from a payer, out to a payee).
    Pacs008,
    /// FI to FI payment status report: an outcome (out), a payee's answer (in).
    Pacs002,
    /// Payment return (in from the returning payee, out to the original payer).
    Pacs004,
    /// FI to FI payment status request (in).
    Pacs028,
    /// Bank to customer debit/credit notification: settled credits (out).
    Camt054,
    /// Bank to customer statement: a cycle's positions (out).
    Camt053,
    /// FI to FI payment cancellation request: a recall of a settled
    /// payment (in from its payer, out to its payee).
    Camt056,
    /// Resolution of investigation: a recall refused (in from the payee,
    /// out to the payer) or where it stands (the answer to a camt.056).
    Camt029,
}

impl MessageKind {
    pub const ALL: [MessageKind; 8] = [
        MessageKind::Pacs008,
        MessageKind::Pacs002,
        MessageKind::Pacs004,
        MessageKind::Pacs028,
        MessageKind::Camt054,
        MessageKind::Camt053,
        MessageKind::Camt056,
        MessageKind::Camt029,
    ];
    /// The messages a participant may send the gateway.
    pub const READ: [MessageKind; 6] = [
        MessageKind::Pacs008,
        MessageKind::Pacs002,
        MessageKind::Pacs004,
        MessageKind::Pacs028,
        MessageKind::Camt056,
        MessageKind::Camt029,
    ];

    /// The message identifier with its version, e.g. `pacs.008.001.09`.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Pacs008 => "pacs.008.001.09",
            MessageKind::Pacs002 => "pacs.002.001.11",
            MessageKind::Pacs004 => "pacs.004.001.10",
            MessageKind::Pacs028 => "pacs.028.001.04",
            MessageKind::Camt054 => "camt.054.001.08",
            MessageKind::Camt053 => "camt.053.001.08",
            MessageKind::Camt056 => "camt.056.001.09",
            MessageKind::Camt029 => "camt.029.001.10",
        }
    }

    pub fn namespace(self) -> &'static str {
        match self {
            MessageKind::Pacs008 => "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.09",
            MessageKind::Pacs002 => "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.11",
            MessageKind::Pacs004 => "urn:iso:std:iso:20022:tech:xsd:pacs.004.001.10",
            MessageKind::Pacs028 => "urn:iso:std:iso:20022:tech:xsd:pacs.028.001.04",
            MessageKind::Camt054 => "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08",
            MessageKind::Camt053 => "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
            MessageKind::Camt056 => "urn:iso:std:iso:20022:tech:xsd:camt.056.001.09",
            MessageKind::Camt029 => "urn:iso:std:iso:20022:tech:xsd:camt.029.001.10",
        }
    }

    /// The message element under `Document`.
    pub fn element(self) -> &'static str {
        match self {
            MessageKind::Pacs008 => "FIToFICstmrCdtTrf",
            MessageKind::Pacs002 => "FIToFIPmtStsRpt",
            MessageKind::Pacs004 => "PmtRtr",
            MessageKind::Pacs028 => "FIToFIPmtStsReq",
            MessageKind::Camt054 => "BkToCstmrDbtCdtNtfctn",
            MessageKind::Camt053 => "BkToCstmrStmt",
            MessageKind::Camt056 => "FIToFIPmtCxlReq",
            MessageKind::Camt029 => "RsltnOfInvstgtn",
        }
    }

    fn of_namespace(namespace: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|kind| kind.namespace() == namespace)
    }
}

/// A message a participant sent.
#[derive(Debug, Clone)]
pub enum Inbound {
    CreditTransfer(CreditTransfer),
    StatusReport(StatusReport),
    Return(PaymentReturn),
    StatusRequest(StatusRequest),
    CancellationRequest(CancellationRequest),
    Resolution(Resolution),
}

impl Inbound {
    pub fn kind(&self) -> MessageKind {
        match self {
            Inbound::CreditTransfer(_) => MessageKind::Pacs008,
            Inbound::StatusReport(_) => MessageKind::Pacs002,
            Inbound::Return(_) => MessageKind::Pacs004,
            Inbound::StatusRequest(_) => MessageKind::Pacs028,
            Inbound::CancellationRequest(_) => MessageKind::Camt056,
            Inbound::Resolution(_) => MessageKind::Camt029,
        }
    }

    /// How many transactions the message carries (bounded by [`TRANSACTIONS_MAX`]).
    pub fn transactions(&self) -> usize {
        match self {
            Inbound::CreditTransfer(m) => m.CdtTrfTxInf.len(),
            Inbound::StatusReport(m) => m.TxInfAndSts.len(),
            Inbound::Return(m) => m.TxInf.len(),
            Inbound::StatusRequest(m) => m.TxInf.len(),
            Inbound::CancellationRequest(m) => m.Undrlyg.iter().map(|u| u.TxInf.len()).sum(),
            Inbound::Resolution(m) => m.CxlDtls.iter().map(|d| d.TxInfAndSts.len()).sum(),
        }
    }
}

/// Why a document cannot be read. Nothing of it is executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the document is larger than {DOCUMENT_BYTES_MAX} bytes")]
    TooLarge,
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    #[error("a DOCTYPE is not accepted (ISO 20022 documents have none; no entity is ever expanded)")]
    Doctype,
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    #[error("entity reference &{0}; is not accepted: only the five predefined entities and character references are")]
    Entity(String),
    #[error(
        "the root element must be Document in the namespace of a message the gateway reads ({known}); found {found}",
        known = readable()
    )]
    Namespace { found: String },
    #[error("{0} is a message the gateway writes, not one it reads (it reads {known})", known = readable())]
    NotRead(&'static str),
    #[error("element {element} is in namespace {namespace:?}, not the document's")]
    ForeignElement { element: String, namespace: String },
    #[error("attribute {attribute} on {element} is not accepted")]
    Attribute { element: String, attribute: String },
    #[error("elements nest deeper than {DEPTH_MAX}")]
    TooDeep,
    #[error("{message}: {reason}")]
    Schema { message: &'static str, reason: String },
}

/// The official XSD of `kind` vendored in this repository
/// (`iso20022/xsd/`), for tests that validate documents with `xmllint`.
pub fn xsd(kind: MessageKind) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("xsd").join(format!("{}.xsd", kind.name()))
}

/// Validates `xml` against the official XSD of `kind` with `xmllint`
/// (Debian's libxml2-utils), a validator nobody here wrote. For tests: Err
/// carries xmllint's words.
pub fn validate_with_xmllint(kind: MessageKind, xml: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(xsd(kind))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("xmllint must be installed (Debian: libxml2-utils; scripts/test-all installs it): {e}"))?;
    child.stdin.take().expect("piped").write_all(xml.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn readable() -> String {
    MessageKind::READ.iter().map(|kind| kind.name()).collect::<Vec<_>>().join(", ")
}

/// Reads one document a participant sent.
pub fn read(bytes: &[u8]) -> Result<Inbound, DocumentError> {
    let kind = check(bytes)?;
    let text = std::str::from_utf8(bytes).map_err(|e| DocumentError::Malformed(format!("not UTF-8: {e}")))?;
    let schema = |e: quick_xml::DeError| DocumentError::Schema { message: kind.name(), reason: e.to_string() };
    let inbound = match kind {
        MessageKind::Pacs008 => {
            Inbound::CreditTransfer(quick_xml::de::from_str::<Pacs008>(text).map_err(schema)?.FIToFICstmrCdtTrf)
        }
        MessageKind::Pacs002 => {
            Inbound::StatusReport(quick_xml::de::from_str::<Pacs002>(text).map_err(schema)?.FIToFIPmtStsRpt)
        }
        MessageKind::Pacs004 => Inbound::Return(quick_xml::de::from_str::<Pacs004>(text).map_err(schema)?.PmtRtr),
        MessageKind::Pacs028 => {
            Inbound::StatusRequest(quick_xml::de::from_str::<Pacs028>(text).map_err(schema)?.FIToFIPmtStsReq)
        }
        MessageKind::Camt056 => {
            Inbound::CancellationRequest(quick_xml::de::from_str::<Camt056>(text).map_err(schema)?.FIToFIPmtCxlReq)
        }
        MessageKind::Camt029 => {
            Inbound::Resolution(quick_xml::de::from_str::<Camt029>(text).map_err(schema)?.RsltnOfInvstgtn)
        }
        MessageKind::Camt054 | MessageKind::Camt053 => unreachable!("refused by check"),
    };
    let count = inbound.transactions();
    if count > TRANSACTIONS_MAX {
        return Err(DocumentError::Schema {
            message: kind.name(),
            reason: format!("{count} transactions; at most {TRANSACTIONS_MAX} in one document"),
        });
    }
    Ok(inbound)
}

fn name_of(raw: &str) -> String {
    raw.chars().take(64).collect()
}

/// Checks the document as XML (see the crate's comment) and says which
/// message it is: one the gateway reads ([`MessageKind::READ`]).
pub fn check(bytes: &[u8]) -> Result<MessageKind, DocumentError> {
    if bytes.len() > DOCUMENT_BYTES_MAX {
        return Err(DocumentError::TooLarge);
    }
    let mut reader = quick_xml::NsReader::from_reader(bytes);
    let mut depth = 0_usize;
    let mut kind: Option<MessageKind> = None;
    let mut messages = 0;
    // Each open element's place in its type (order.rs).
    let mut frames: Vec<order::Frame> = Vec::with_capacity(DEPTH_MAX);
    let mut schema: Option<&'static order::Schema> = None;
    loop {
        let (namespace, event) = reader.read_resolved_event().map_err(|e| DocumentError::Malformed(e.to_string()))?;
        let (start, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth -= 1;
                frames.pop();
                continue;
            }
            Event::DocType(_) => return Err(DocumentError::Doctype),
            Event::PI(_) => return Err(DocumentError::ProcessingInstruction),
            Event::GeneralRef(r) => {
                let known = r.is_char_ref() || matches!(r.as_ref(), "amp" | "lt" | "gt" | "apos" | "quot");
                if !known {
                    return Err(DocumentError::Entity(name_of(r.as_ref())));
                }
                continue;
            }
            Event::Text(text) if depth == 0 => {
                if !text.trim().is_empty() {
                    return Err(DocumentError::Malformed("text outside the root element".into()));
                }
                continue;
            }
            Event::CData(_) if depth == 0 => {
                return Err(DocumentError::Malformed("text outside the root element".into()));
            }
            Event::Eof => break,
            _ => continue,
        };
        depth += 1;
        if depth > DEPTH_MAX {
            return Err(DocumentError::TooDeep);
        }
        // Named only in an error: no allocation per element on the way.
        let element = || name_of(start.name().as_ref());
        let in_namespace: &str = match &namespace {
            ResolveResult::Bound(ns) => ns.as_ref(),
            _ => "",
        };
        let is_root = depth == 1;
        if is_root {
            if kind.is_some() {
                return Err(DocumentError::Malformed("more than one root element".into()));
            }
            let found = MessageKind::of_namespace(in_namespace).filter(|_| start.local_name().as_ref() == "Document");
            let Some(found) = found else {
                return Err(DocumentError::Namespace { found: format!("{} in namespace {in_namespace:?}", element()) });
            };
            if !MessageKind::READ.contains(&found) {
                return Err(DocumentError::NotRead(found.name()));
            }
            kind = Some(found);
            let found_schema = order::Schema::of(found);
            schema = Some(found_schema);
            frames.push(found_schema.root());
        } else {
            let kind = kind.expect("set at the root");
            if in_namespace != kind.namespace() {
                return Err(DocumentError::ForeignElement { element: element(), namespace: in_namespace.to_owned() });
            }
            if depth == 2 {
                messages += 1;
                if start.local_name().as_ref() != kind.element() || messages > 1 {
                    return Err(DocumentError::Schema {
                        message: kind.name(),
                        reason: format!("Document holds exactly one {}; found {}", kind.element(), element()),
                    });
                }
            }
            let parent = frames.last_mut().expect("the root's frame is pushed with it");
            let frame = schema
                .expect("set at the root")
                .enter(parent, start.local_name().as_ref())
                .map_err(|reason| DocumentError::Schema { message: kind.name(), reason })?;
            frames.push(frame);
        }
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| DocumentError::Malformed(e.to_string()))?;
            let key = attribute.key;
            let allowed = if key.as_namespace_binding().is_some() {
                is_root
            } else if is_root {
                let (resolved, _) = reader.resolver().resolve_attribute(key);
                matches!(resolved, ResolveResult::Bound(ns) if ns.as_ref() == XSI)
            } else {
                key.as_ref() == "Ccy"
            };
            if !allowed {
                return Err(DocumentError::Attribute { element: element(), attribute: name_of(key.as_ref()) });
            }
        }
        if empty {
            depth -= 1;
            frames.pop();
        }
    }
    if depth != 0 {
        return Err(DocumentError::Malformed("the document ends inside an element".into()));
    }
    let kind = kind.ok_or_else(|| DocumentError::Malformed("no root element".into()))?;
    if messages == 0 {
        return Err(DocumentError::Schema {
            message: kind.name(),
            reason: format!("Document holds exactly one {}; found none", kind.element()),
        });
    }
    Ok(kind)
}

// The `Document` element of each message: its namespace and its one child.
macro_rules! documents {
    ($( $doc:ident: $kind:ident, $field:ident: $ty:ty, $write:ident, $write_into:ident; )*) => {
        $(
            #[derive(Serialize, Deserialize)]
            #[allow(non_snake_case, dead_code)]
            struct $doc {
                #[serde(rename = "@xmlns", default)]
                xmlns: String,
                $field: $ty,
            }

            #[doc = concat!("Writes a whole `", stringify!($kind), "` document on one line.")]
            pub fn $write(message: &$ty) -> String {
                let mut out = String::with_capacity(1_024);
                $write_into(message, &mut out);
                out
            }

            #[doc = concat!("Appends a whole `", stringify!($kind), "` document on one line to `out`.")]
            pub fn $write_into(message: &$ty, out: &mut String) {
                #[derive(Serialize)]
                #[allow(non_snake_case)]
                struct Out<'a> {
                    #[serde(rename = "@xmlns")]
                    xmlns: &'static str,
                    $field: &'a $ty,
                }
                write_document(out, &Out { xmlns: MessageKind::$kind.namespace(), $field: message });
            }
        )*
    };
}

documents! {
    Pacs008: Pacs008, FIToFICstmrCdtTrf: CreditTransfer, write_pacs008, write_pacs008_into;
    Pacs002: Pacs002, FIToFIPmtStsRpt: StatusReport, write_pacs002, write_pacs002_into;
    Pacs004: Pacs004, PmtRtr: PaymentReturn, write_pacs004, write_pacs004_into;
    Pacs028: Pacs028, FIToFIPmtStsReq: StatusRequest, write_pacs028, write_pacs028_into;
    Camt054: Camt054, BkToCstmrDbtCdtNtfctn: Notification, write_camt054, write_camt054_into;
    Camt056: Camt056, FIToFIPmtCxlReq: CancellationRequest, write_camt056, write_camt056_into;
    Camt029: Camt029, RsltnOfInvstgtn: Resolution, write_camt029, write_camt029_into;
}

/// Appends the declaration and `Document` with `value` to `out`. Line
/// breaks in text become character references, which read back the same:
/// a document then fits on one line of a stream.
fn write_document<T: Serialize>(out: &mut String, value: &T) {
    let start = out.len();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let serializer = quick_xml::se::Serializer::with_root(&mut *out, Some("Document")).expect("a valid root name");
    value.serialize(serializer).expect("the models serialize to XML");
    if out.as_bytes()[start..].iter().any(|b| *b == b'\n' || *b == b'\r') {
        let written = out.split_off(start);
        out.push_str(&written.replace('\n', "&#10;").replace('\r', "&#13;"));
    }
}

#[cfg(test)]
mod tests;
