//! The mock backend: answers every method from the descriptors alone, with
//! deterministic generated data, stubs, and optional stateful CRUD.

pub mod generate;
pub mod state;
pub mod stubs;
