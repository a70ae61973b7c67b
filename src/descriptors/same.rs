//! Whether two copies of one file define the same thing. Comments and
//! source positions do not count; options do, including extension options
//! such as `google.api.http` that `prost_types` would silently drop.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use super::RawFile;

/// `FileDescriptorProto.source_code_info`.
const SOURCE_CODE_INFO: u32 = 9;

/// True when `a` and `b` differ at most in comments and source positions.
pub(super) fn same_definition(a: &RawFile, b: &RawFile) -> bool {
    if a.raw == b.raw {
        return true;
    }
    match (comparable(a), comparable(b)) {
        (Some(x), Some(y)) => x == y,
        // Undecodable as a file descriptor: only identical bytes are equal.
        _ => false,
    }
}

/// The file as a dynamic message (unknown fields kept), without source info.
fn comparable(f: &RawFile) -> Option<DynamicMessage> {
    let mut m = DynamicMessage::decode(file_descriptor_proto()?, f.raw.clone()).ok()?;
    m.clear_field_by_number(SOURCE_CODE_INFO);
    Some(m)
}

fn file_descriptor_proto() -> Option<MessageDescriptor> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        // descriptor.proto imports nothing.
        let name = "google/protobuf/descriptor.proto";
        let files = super::builtin::needed([name]).ok()?;
        let set = super::RawSet {
            file: files
                .into_iter()
                .filter(|f| f.file.name() == name)
                .map(|f| f.raw)
                .collect(),
        };
        let mut pool = DescriptorPool::new();
        pool.decode_file_descriptor_set(prost::Message::encode_to_vec(&set).as_slice())
            .ok()?;
        Some(pool)
    })
    .as_ref()?
    .get_message_by_name("google.protobuf.FileDescriptorProto")
}
