//! Finding the token in a request, and reading what picks its provider and
//! key (`alg`, `kid`, `iss`) before anything is verified.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Uri, header};
use serde::Deserialize;

use crate::config::TokenSources;
use crate::status::{AuthFailure, GatewayError};

/// The token a request carries, as found (the `Authorization` header wins,
/// then the cookie, then the query parameter).
#[derive(Debug, Clone)]
pub struct Credential(pub Result<String, &'static str>);

/// The request's token, if it sent one. `Err` when it sent something that
/// cannot be a bearer token (another `Authorization` scheme).
pub fn find(sources: &TokenSources, uri: &Uri, headers: &HeaderMap) -> Option<Credential> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return Some(Credential(bearer(value.as_bytes())));
    }
    if let Some(name) = &sources.cookie
        && let Some(token) = cookie(headers, name)
    {
        return Some(Credential(Ok(token)));
    }
    if let Some(name) = &sources.query
        && let Some(query) = uri.query()
    {
        let found = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name.as_str());
        if let Some((_, token)) = found {
            return Some(Credential(Ok(token.into_owned())));
        }
    }
    None
}

fn bearer(value: &[u8]) -> Result<String, &'static str> {
    const WANT: &str = "the Authorization header is not \"Bearer <token>\"";
    let text = std::str::from_utf8(value).map_err(|_| WANT)?;
    let (scheme, token) = text.split_once(' ').ok_or(WANT)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(WANT);
    }
    Ok(token.to_string())
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// What an unverified token says about how to verify it.
#[derive(Debug)]
pub struct Peek {
    /// The header's `alg`.
    pub alg: String,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The payload's `iss`.
    pub iss: Option<String>,
}

#[derive(Deserialize)]
struct PeekHeader {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct PeekClaims {
    iss: Option<String>,
}

/// Reads `alg`, `kid` and `iss` without verifying anything: they only pick
/// the provider and key that verification then uses. `alg: none` is refused
/// here, whatever any provider allows.
pub fn peek(token: &str) -> Result<Peek, GatewayError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused(
            AuthFailure::Malformed,
            "the token is not a JWT (three dot-separated parts)",
        ));
    };
    let header: PeekHeader = decode_part(header, "header")?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(refused(
            AuthFailure::AlgNone,
            "unsigned tokens (alg \"none\") are never accepted",
        ));
    }
    let claims: PeekClaims = decode_part(payload, "payload")?;
    Ok(Peek {
        alg: header.alg,
        kid: header.kid,
        iss: claims.iss,
    })
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, GatewayError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        refused(
            AuthFailure::Malformed,
            &format!("the token's {what} is not base64url"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        refused(
            AuthFailure::Malformed,
            &format!("the token's {what} is not the JSON a JWT holds"),
        )
    })
}

/// A 401 for `reason`.
pub fn refused(reason: AuthFailure, detail: &str) -> GatewayError {
    GatewayError::Unauthenticated {
        reason,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> TokenSources {
        TokenSources {
            cookie: Some("session".into()),
            query: Some("access_token".into()),
        }
    }

    #[test]
    fn header_then_cookie_then_query() {
        let uri: Uri = "/v1/x?access_token=q%2Eq".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(find(&sources(), &uri, &h).unwrap().0.unwrap(), "q.q");
        h.insert(header::COOKIE, "a=b; session=c.c".parse().unwrap());
        assert_eq!(find(&sources(), &uri, &h).unwrap().0.unwrap(), "c.c");
        h.insert(header::AUTHORIZATION, "bearer h.h".parse().unwrap());
        assert_eq!(find(&sources(), &uri, &h).unwrap().0.unwrap(), "h.h");
        h.insert(header::AUTHORIZATION, "Basic dXNlcg==".parse().unwrap());
        assert!(find(&sources(), &uri, &h).unwrap().0.is_err());
    }

    #[test]
    fn sources_are_off_unless_named() {
        let uri: Uri = "/v1/x?access_token=q".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "session=c".parse().unwrap());
        assert!(find(&TokenSources::default(), &uri, &h).is_none());
    }

    #[test]
    fn peek_refuses_none_and_garbage() {
        let part = |j: &str| URL_SAFE_NO_PAD.encode(j);
        let none = format!("{}.{}.", part(r#"{"alg":"none"}"#), part("{}"));
        assert!(matches!(
            peek(&none),
            Err(GatewayError::Unauthenticated {
                reason: AuthFailure::AlgNone,
                ..
            })
        ));
        for bad in ["a.b", "a.b.c.d", "!!.e30.x"] {
            assert!(matches!(
                peek(bad),
                Err(GatewayError::Unauthenticated {
                    reason: AuthFailure::Malformed,
                    ..
                })
            ));
        }
        let ok = format!(
            "{}.{}.sig",
            part(r#"{"alg":"RS256","kid":"k1"}"#),
            part(r#"{"iss":"me"}"#)
        );
        let p = peek(&ok).unwrap();
        assert_eq!(
            (p.alg.as_str(), p.kid.as_deref(), p.iss.as_deref()),
            ("RS256", Some("k1"), Some("me"))
        );
    }
}
