//! REST response compression (tower-http): gzip, br or zstd as the client's
//! `Accept-Encoding` allows and `compression.rest` permits, for bodies of a
//! known size from `compression.min_size`. Streams are never compressed (a
//! compressor holds messages back until its block fills), nor images.

use http::Response;
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::config::{CompressionOptions, RestEncoding};

/// The layer for `options`, or `None` when REST compression is off.
pub fn layer(options: &CompressionOptions) -> Option<CompressionLayer<RestPredicate>> {
    if options.rest.is_empty() {
        return None;
    }
    let on = |e: RestEncoding| options.rest.contains(&e);
    let predicate = RestPredicate {
        min_size: options.min_size.0,
    };
    Some(
        CompressionLayer::new()
            .gzip(on(RestEncoding::Gzip))
            .br(on(RestEncoding::Br))
            .zstd(on(RestEncoding::Zstd))
            .no_deflate()
            // The fast end: a gateway compresses every response once.
            .quality(CompressionLevel::Fastest)
            .compress_when(predicate),
    )
}

/// Whole bodies of at least `min_size` bytes that are not images.
#[derive(Debug, Clone, Copy)]
pub struct RestPredicate {
    min_size: u64,
}

impl Predicate for RestPredicate {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: http_body::Body,
    {
        let whole = response
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n >= self.min_size);
        whole && NotForContentType::IMAGES.should_compress(response)
    }
}
