//! Limits on how much clients may ask of the gateway, enforced at the
//! dispatch seam: [`rate`] (local token buckets, `rate_limits:`).

pub mod rate;
