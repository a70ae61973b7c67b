//! The call pipeline every protocol shares:
//!
//! ```text
//! adapter: decode HTTP ─▶ resolve (route or gRPC path → Target) ─▶ Exchange::dispatch ─▶ encode
//!                                                                   │ hooks: on_call
//!                                                                   ▼
//!                                                                Backend
//! every request, whatever its fate (404s included) ─▶ hooks: on_outcome
//! ```
//!
//! A [`Target`] is everything known about a destination before any request
//! arrives (method, gRPC path, backend, default deadline, route template),
//! computed once per method and route at load time. An [`Exchange`] follows
//! one request from arrival to its last byte: it runs the [`Hook`]s, the
//! deadline, the backend, and reports the [`Outcome`] exactly once.

mod exchange;
mod hook;
pub mod shed;
mod shutdown;
mod target;

pub use exchange::{Dispatch, Exchange};
pub use hook::{Begin, CallInfo, ClientAddr, Hook, Hooks, Outcome, PeerIdentity, Protocol};
pub use shutdown::{OpenCall, Shutdown};
pub use target::{DEFAULT_MAX_METADATA_BYTES, Idempotency, Target};
