//! Limits on how much clients may ask of the gateway, enforced at the
//! dispatch seam: [`rate`] (local token buckets, `rate_limits:`) and
//! [`global`] (a rate limit service shared by every replica,
//! `rate_limit_service:`, speaking [`rls`]).

pub mod global;
pub mod rate;
pub mod rls;
