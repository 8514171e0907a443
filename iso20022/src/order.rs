//! The order and multiplicity of elements, as each message's official XSD
//! says: serde maps elements onto the models by name, whatever their order,
//! so the reader checks order here, against the XSD itself (the vendored
//! files, compiled into the binary), not against a copy of its rules.
//!
//! What is checked: inside each element, the children its type's
//! `xs:sequence` names come in that order; of an `xs:choice`, one only
//! (unless the choice or the element repeats); an element the sequence
//! allows once is there once; an element its type does not name is
//! refused; an element of a simple type holds no element. What is not
//! checked here: which elements are required (the models require theirs),
//! and values (lengths, patterns, codes), which the gateway checks where it
//! uses them.

use crate::MessageKind;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::sync::OnceLock;

/// One child a complex type allows.
#[derive(Debug, Clone)]
struct Child {
    name: String,
    /// Its complex type (`None`: a simple type, or simple content: no children).
    ty: Option<usize>,
    /// Its place in the type's sequence: children of one `xs:choice` share one.
    rank: u16,
    /// It may come again right after itself (`maxOccurs` over 1, or a
    /// repeating choice).
    repeats: bool,
}

/// A message's schema, as far as order goes: its complex types' children.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    /// By index; each type's children in document order.
    types: Vec<(String, Vec<Child>)>,
    /// The type of `Document`.
    root: Option<usize>,
}

/// Where the reader stands inside one element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    ty: Option<usize>,
    /// The last child seen: its rank and index in the type's children.
    last: Option<(u16, usize)>,
}

impl Schema {
    /// The schema of `kind`, read once from its XSD.
    pub(crate) fn of(kind: MessageKind) -> &'static Schema {
        static SCHEMAS: OnceLock<HashMap<MessageKind, Schema>> = OnceLock::new();
        let all = SCHEMAS
            .get_or_init(|| MessageKind::ALL.into_iter().map(|kind| (kind, Schema::parse(xsd_text(kind)))).collect());
        &all[&kind]
    }

    /// The frame of the root `Document`.
    pub(crate) fn root(&self) -> Frame {
        Frame { ty: self.root, last: None }
    }

    /// Checks child `name` inside `parent` (updated), and gives the
    /// child's frame; `Err` says what is wrong.
    pub(crate) fn enter(&self, parent: &mut Frame, name: &str) -> Result<Frame, String> {
        let Some(ty) = parent.ty else {
            return Err(format!("{name} is inside an element that holds text only"));
        };
        let (type_name, children) = &self.types[ty];
        let Some(index) = children.iter().position(|c| c.name == name) else {
            return Err(format!("{name} is not an element of {type_name}"));
        };
        let child = &children[index];
        if let Some((rank, last)) = parent.last {
            let previous = &children[last].name;
            if child.rank < rank {
                return Err(format!("{name} is out of order in {type_name}: the schema puts it before {previous}"));
            }
            if child.rank == rank && !(index == last && child.repeats) {
                return Err(if index == last {
                    format!("{name} appears more than once in {type_name}")
                } else {
                    format!("{name} and {previous} are alternatives in {type_name}: only one may be given")
                });
            }
        }
        parent.last = Some((child.rank, index));
        Ok(Frame { ty: child.ty, last: None })
    }

    /// Reads the complex types of an ISO 20022 XSD (the Standards Editor's
    /// layout: named top-level `xs:complexType`s of `xs:sequence`s and
    /// `xs:choice`s of `xs:element`s).
    fn parse(xsd: &str) -> Schema {
        // First the types and their children by type name; then names resolved.
        let mut named: Vec<(String, Vec<Declared>)> = Vec::new();
        let mut root_type: Option<String> = None;
        let mut reader = quick_xml::Reader::from_str(xsd);
        let mut current: Option<OpenType> = None;
        loop {
            let event = reader.read_event().expect("the vendored XSDs are well-formed");
            let (start, empty) = match &event {
                Event::Start(e) => (Some(e), false),
                Event::Empty(e) => (Some(e), true),
                Event::End(e) => {
                    match e.name().as_ref() {
                        "xs:complexType" => named.extend(current.take().map(|open| (open.name, open.children))),
                        "xs:sequence" | "xs:choice" => {
                            if let Some(open) = current.as_mut() {
                                open.groups.pop();
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let Some(start) = start else { continue };
            match start.name().as_ref() {
                "xs:complexType" if current.is_none() && !empty => {
                    let name = attribute(start, "name").unwrap_or_default();
                    current = Some(OpenType { name, children: Vec::new(), next: 0, groups: Vec::new() });
                }
                "xs:sequence" if !empty => {
                    if let Some(open) = current.as_mut() {
                        open.groups.push(None);
                    }
                }
                "xs:choice" if !empty => {
                    if let Some(open) = current.as_mut() {
                        let repeats = attribute(start, "maxOccurs").is_some_and(|m| m != "1");
                        // A choice inside a sequence takes one place in it.
                        let rank = match open.groups.last() {
                            Some(Some((rank, _))) => *rank,
                            _ => open.take_rank(),
                        };
                        let repeats = repeats || matches!(open.groups.last(), Some(Some((_, true))));
                        open.groups.push(Some((rank, repeats)));
                    }
                }
                "xs:element" => {
                    let (Some(name), Some(ty)) = (attribute(start, "name"), attribute(start, "type")) else {
                        continue;
                    };
                    match current.as_mut() {
                        None => {
                            if name == "Document" {
                                root_type = Some(ty);
                            }
                        }
                        Some(open) => {
                            let many = attribute(start, "maxOccurs").is_some_and(|m| m != "1");
                            let (rank, repeats) = match open.groups.last() {
                                Some(Some((rank, repeats))) => (*rank, *repeats || many),
                                _ => (open.take_rank(), many),
                            };
                            open.children.push(Declared { name, ty, rank, repeats });
                        }
                    }
                }
                _ => {}
            }
        }
        let index: HashMap<String, usize> = named.iter().enumerate().map(|(i, (name, _))| (name.clone(), i)).collect();
        let types = named
            .into_iter()
            .map(|(name, children)| {
                let children = children
                    .into_iter()
                    .map(|d| Child { ty: index.get(&d.ty).copied(), name: d.name, rank: d.rank, repeats: d.repeats })
                    .collect();
                (name, children)
            })
            .collect();
        Schema { types, root: root_type.and_then(|ty| index.get(&ty).copied()) }
    }
}

/// A child as the XSD declares it, its type by name.
struct Declared {
    name: String,
    ty: String,
    rank: u16,
    repeats: bool,
}

/// A complex type being read: its children so far, the next rank in its
/// sequence, and the groups open (`Some((rank, repeats))` a choice, `None`
/// a sequence).
struct OpenType {
    name: String,
    children: Vec<Declared>,
    next: u16,
    groups: Vec<Option<(u16, bool)>>,
}

impl OpenType {
    fn take_rank(&mut self) -> u16 {
        self.next += 1;
        self.next - 1
    }
}

fn attribute(start: &BytesStart<'_>, name: &str) -> Option<String> {
    start.attributes().flatten().find(|a| a.key.as_ref() == name).map(|a| a.value.into_owned())
}

/// The vendored XSD of `kind`, compiled in.
fn xsd_text(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Pacs008 => include_str!("../xsd/pacs.008.001.09.xsd"),
        MessageKind::Pacs002 => include_str!("../xsd/pacs.002.001.11.xsd"),
        MessageKind::Pacs004 => include_str!("../xsd/pacs.004.001.10.xsd"),
        MessageKind::Pacs028 => include_str!("../xsd/pacs.028.001.04.xsd"),
        MessageKind::Camt054 => include_str!("../xsd/camt.054.001.08.xsd"),
        MessageKind::Camt053 => include_str!("../xsd/camt.053.001.08.xsd"),
        MessageKind::Camt056 => include_str!("../xsd/camt.056.001.09.xsd"),
        MessageKind::Camt029 => include_str!("../xsd/camt.029.001.10.xsd"),
    }
}
