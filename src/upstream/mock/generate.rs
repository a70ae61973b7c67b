//! PLACEHOLDER (being written): deterministic realistic data from descriptors.
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};

/// Deterministic generator.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
}

impl Generator {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator { seed }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The response for `method` given `request`; `key` identifies the call.
    pub fn respond(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        key: &[u8],
    ) -> DynamicMessage {
        let _ = (request, key);
        DynamicMessage::new(method.output())
    }

    /// Fills the unset fields of `msg`.
    pub fn fill_unset(&self, msg: &mut DynamicMessage, request: &DynamicMessage, key: &[u8]) {
        let _ = (msg, request, key);
    }

    /// A message of type `desc`.
    pub fn message(&self, desc: &MessageDescriptor, key: &[u8]) -> DynamicMessage {
        let _ = key;
        DynamicMessage::new(desc.clone())
    }
}
