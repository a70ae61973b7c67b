//! Source info trimmed to what the gateway reads. A file's
//! `source_code_info` (every element's position and comments) is often
//! larger than the rest of the file, and prost-reflect keeps each file twice
//! in decoded form: for an API of 20,000 message types it held more than half
//! of the gateway's memory. The gateway reads the positions of methods and
//! their `google.api.http` options (a skipped rule names its line,
//! `routing::skipped`) and the comments of services, methods, messages,
//! fields, enums and their values (descriptions in the OpenAPI document,
//! `crate::openapi`). So the locations inside services are kept with their
//! path, span and comments, those inside messages and enums only when they
//! carry a comment (path, span and comments), and the rest (every other
//! position, detached comments) is dropped before the pool is built. Done on
//! the wire: nothing is decoded into messages.

use bytes::Bytes;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

/// `FileDescriptorProto.source_code_info`.
const SOURCE_CODE_INFO: u32 = 9;
/// `FileDescriptorProto.message_type`, `.enum_type` and `.service`: the
/// first element of a location's path for everything inside one.
const MESSAGE: u64 = 4;
const ENUM: u64 = 5;
const SERVICE: u64 = 6;
/// `SourceCodeInfo.location`.
const LOCATION: u32 = 1;
/// `SourceCodeInfo.Location.path`, `.span`, `.leading_comments` and
/// `.trailing_comments`.
const PATH: u32 = 1;
const SPAN: u32 = 2;
const LEADING: u32 = 3;
const TRAILING: u32 = 4;

/// `file` (an encoded FileDescriptorProto) with its source info trimmed to
/// the locations inside services, and the commented ones inside messages
/// and enums, each with its path, span and comments. A file
/// without source info, or one that does not parse, is returned as it is
/// (the pool reports what is wrong with it).
pub(super) fn trim(file: Bytes) -> Bytes {
    match trimmed(&file) {
        Some(t) => Bytes::from(t),
        None => file,
    }
}

fn trimmed(file: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(file.len());
    let mut found = false;
    for field in Fields(file) {
        let field = field?;
        if field.number == SOURCE_CODE_INFO && field.wire == WireType::LengthDelimited {
            found = true;
            let info = kept(field.payload)?;
            encode_key(SOURCE_CODE_INFO, WireType::LengthDelimited, &mut out);
            encode_varint(info.len() as u64, &mut out);
            out.extend_from_slice(&info);
        } else {
            out.extend_from_slice(field.whole);
        }
    }
    found.then_some(out)
}

/// The locations of a SourceCodeInfo the gateway reads (see the module
/// documentation), with their path, span and comments only.
fn kept(info: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut location = Vec::new();
    for field in Fields(info) {
        let field = field?;
        if field.number != LOCATION || field.wire != WireType::LengthDelimited {
            continue;
        }
        location.clear();
        let mut first = None;
        let mut commented = false;
        for f in Fields(field.payload) {
            let f = f?;
            match f.number {
                PATH => {
                    if first.is_none() {
                        // Packed (as every encoder writes it) or not.
                        let mut value = f.payload;
                        first = match f.wire {
                            WireType::LengthDelimited if value.is_empty() => None,
                            WireType::LengthDelimited | WireType::Varint => {
                                Some(decode_varint(&mut value).ok()?)
                            }
                            _ => None,
                        };
                    }
                    location.extend_from_slice(f.whole);
                }
                SPAN => location.extend_from_slice(f.whole),
                LEADING | TRAILING => {
                    commented |= !f.payload.trim_ascii().is_empty();
                    location.extend_from_slice(f.whole);
                }
                _ => {}
            }
        }
        let keep = match first {
            Some(SERVICE) => true,
            Some(MESSAGE | ENUM) => commented,
            _ => false,
        };
        if keep {
            encode_key(LOCATION, WireType::LengthDelimited, &mut out);
            encode_varint(location.len() as u64, &mut out);
            out.extend_from_slice(&location);
        }
    }
    Some(out)
}

/// One encoded field: its number and wire type, its bytes whole (key
/// included), and its payload (a varint's bytes, a length-delimited
/// field's content).
struct Field<'a> {
    number: u32,
    wire: WireType,
    whole: &'a [u8],
    payload: &'a [u8],
}

/// The fields of an encoded message, in order; `Some(None)` (then the end)
/// where it does not parse. Groups are not expected in descriptors.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Option<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_none() {
            self.0 = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Option<Field<'a>> {
        let all = self.0;
        let mut buf = all;
        let (number, wire) = decode_key(&mut buf).ok()?;
        let len = match wire {
            WireType::Varint => {
                let mut probe = buf;
                decode_varint(&mut probe).ok()?;
                buf.len() - probe.len()
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => usize::try_from(decode_varint(&mut buf).ok()?).ok()?,
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        let payload = buf.get(..len)?;
        let rest = &buf[len..];
        self.0 = rest;
        Some(Field {
            number,
            wire,
            whole: &all[..all.len() - rest.len()],
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_types::source_code_info::Location;
    use prost_types::{FileDescriptorProto, SourceCodeInfo};

    fn location(path: &[i32], comment: &str) -> Location {
        Location {
            path: path.to_vec(),
            span: vec![path.len() as i32, 2, 9],
            leading_comments: Some(comment.into()),
            trailing_comments: Some(comment.into()),
            leading_detached_comments: vec![comment.into()],
        }
    }

    #[test]
    fn keeps_service_positions_and_comments_and_drops_the_rest() {
        let file = FileDescriptorProto {
            name: Some("a.proto".into()),
            package: Some("a".into()),
            source_code_info: Some(SourceCodeInfo {
                location: vec![
                    location(&[], "file"),
                    location(&[4, 0], "a message"),
                    location(&[4, 0, 2, 1], "a field"),
                    location(&[4, 0, 2, 2], ""),
                    location(&[5, 0, 2, 1], "an enum value"),
                    location(&[8], "file options"),
                    location(&[6, 0], "a service"),
                    location(&[6, 0, 2, 3, 4, 72295728], "an http rule"),
                ],
            }),
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        let trimmed = trim(Bytes::from(file.encode_to_vec()));
        let back = FileDescriptorProto::decode(trimmed).unwrap();
        let kept = back.source_code_info.clone().unwrap().location;
        assert_eq!(
            kept.iter().map(|l| l.path.clone()).collect::<Vec<_>>(),
            vec![
                vec![4, 0],
                vec![4, 0, 2, 1],
                vec![5, 0, 2, 1],
                vec![6, 0],
                vec![6, 0, 2, 3, 4, 72295728]
            ]
        );
        assert_eq!(kept[4].span, vec![6, 2, 9]);
        assert_eq!(kept[1].leading_comments.as_deref(), Some("a field"));
        assert_eq!(kept[2].trailing_comments.as_deref(), Some("an enum value"));
        assert!(kept.iter().all(|l| l.leading_detached_comments.is_empty()));
        // Everything else is untouched.
        assert_eq!(
            FileDescriptorProto {
                source_code_info: None,
                ..back
            },
            FileDescriptorProto {
                source_code_info: None,
                ..file
            }
        );
    }

    #[test]
    fn leaves_files_without_source_info_and_garbage_alone() {
        let file = Bytes::from(
            FileDescriptorProto {
                name: Some("a.proto".into()),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        assert_eq!(trim(file.clone()), file);
        let garbage = Bytes::from_static(b"\x4a\xff\xff");
        assert_eq!(trim(garbage.clone()), garbage);
    }
}
