//! PLACEHOLDER (being written): stateful CRUD for AIP standard methods.
use prost_reflect::{DynamicMessage, MethodDescriptor};

use super::generate::Generator;

/// In-memory resources.
#[derive(Debug, Default)]
pub struct CrudStore {}

impl CrudStore {
    /// Empty.
    pub fn new() -> CrudStore {
        CrudStore {}
    }

    /// Handles a standard method; None when `method` is not one.
    pub fn handle(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Option<Result<DynamicMessage, tonic::Status>> {
        let _ = (method, request, generator, key);
        None
    }
}
