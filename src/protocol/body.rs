//! Reading a whole request body, bounded in size and time (the unary
//! requests of REST and Connect).

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};

use crate::gateway::Gateway;
use crate::status::GatewayError;

/// The body, at most `limits.max_body_bytes` (413 beyond, refused from
/// `Content-Length` before reading), within `limits.body_read_timeout`
/// (408 beyond).
pub(crate) async fn read_body(
    gw: &Gateway,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, GatewayError> {
    let wait = gw.config.limits.body_read_timeout.0;
    tokio::time::timeout(wait, read_limited(headers, body, gw.max_body_bytes))
        .await
        .map_err(|_| GatewayError::BodyTimeout(wait))?
}

async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BadRequest {
            message: format!("failed to read request body: {e}"),
            violation: None,
        }),
    }
}
