//! JWT authentication at the dispatch seam, the same for every protocol
//! (REST, streams, gRPC-Web, Connect, native gRPC, WebSocket) and for the
//! mock.
//!
//! The token is read when the request arrives ([`token::find`]: the
//! `Authorization: Bearer` header, else the configured cookie or query
//! parameter). Once the request is resolved, the destination's requirement
//! (compiled at load time, [`policy`]) decides: anonymous destinations let
//! a request without a token through, but a token that is sent must be
//! valid (as Envoy's `allow_missing`); other destinations need a token that
//! verifies ([`provider::Provider::verify`]) and carries the scopes and
//! claims the rule names. Refusals are 401 (`Unauthenticated`) or 403
//! (`PermissionDenied`) with a `WWW-Authenticate` challenge, in the
//! request's own protocol. Verified claims travel upstream as metadata;
//! client-sent values of those keys are always removed first.

pub mod cache;
pub mod jwks;
pub mod keys;
pub mod policy;
pub mod provider;
pub mod token;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tonic::metadata::AsciiMetadataKey;

use crate::call::Call;
use crate::config::{AuthConfig, TokenSources};
use crate::pipeline::{Begin, CallInfo, Hook, PeerIdentity, Target};
use crate::routing::rules::RuleError;
use crate::status::{AuthFailure, GatewayError};
use cache::{Verified, VerifiedCache};
use keys::KeySource;
use policy::{Destination, Requirement, Requirements};
use provider::Provider;
use token::{Credential, Peek, refused};

/// The verified token's `sub`, for the access log.
#[derive(Debug, Clone)]
pub struct Subject(pub String);

/// The auth hook of one configuration snapshot.
pub struct Auth {
    providers: Vec<Provider>,
    requirements: Requirements,
    default: Arc<Requirement>,
    sources: TokenSources,
    /// Every metadata key a provider fills from claims: removed from every
    /// call, so a client can never send its own.
    claim_keys: Vec<AsciiMetadataKey>,
    cache: VerifiedCache,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("providers", &self.providers.len())
            .field("destinations", &self.requirements.len())
            .finish()
    }
}

impl Auth {
    /// Builds the providers (reading key files, starting JWKS fetches) and
    /// compiles each destination's requirement. Every problem is reported.
    pub fn build<'a>(
        config: &AuthConfig,
        destinations: impl Iterator<Item = Destination<'a>>,
        known_routes: &[&str],
    ) -> Result<Auth, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut providers = Vec::new();
        for (name, p) in &config.providers {
            match Provider::load(name, p) {
                Ok(p) => providers.push(p),
                Err(message) => errors.push(RuleError {
                    rule: format!("auth.providers.{name}"),
                    message,
                }),
            }
        }
        if config.providers.is_empty() {
            errors.push(RuleError {
                rule: "auth.providers".into(),
                message: "name at least one token provider".into(),
            });
        }
        let names: Vec<String> = config.providers.keys().cloned().collect();
        let requirements = policy::compile(config, &names, destinations, known_routes)
            .map_err(|e| {
                errors.extend(
                    e.into_iter()
                        .map(|(rule, message)| RuleError { rule, message }),
                )
            })
            .unwrap_or_default();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut claim_keys: Vec<AsciiMetadataKey> = Vec::new();
        for key in providers.iter().flat_map(|p| p.metadata_keys()) {
            if !claim_keys.contains(key) {
                claim_keys.push(key.clone());
            }
        }
        Ok(Auth {
            providers,
            requirements,
            default: Arc::new(Requirement::default()),
            sources: config.token.clone(),
            claim_keys,
            cache: VerifiedCache::new(config.cache_size),
        })
    }

    fn requirement(&self, target: &Target) -> &Requirement {
        let key = target.route.as_deref().unwrap_or(target.path.as_str());
        self.requirements.get(key).unwrap_or(&self.default)
    }

    /// The provider named by the token's `iss`, if the requirement accepts it.
    fn provider_for(
        &self,
        peek: &Peek,
        req: &Requirement,
    ) -> Result<(usize, &Provider), GatewayError> {
        let iss = peek.iss.as_deref().unwrap_or_default();
        let found = self
            .providers
            .iter()
            .enumerate()
            .find(|(_, p)| p.issuer == iss);
        match found {
            Some((i, p)) if req.providers.as_ref().is_none_or(|ok| ok.contains(&i)) => Ok((i, p)),
            Some(_) => Err(refused(
                AuthFailure::WrongIssuer,
                &format!("tokens of issuer {iss:?} are not accepted for this method"),
            )),
            None => Err(refused(
                AuthFailure::WrongIssuer,
                &format!("issuer {iss:?} is not a configured provider"),
            )),
        }
    }

    /// The cache's entry for `token`, if it still holds.
    fn cached(&self, token: &str) -> Option<Arc<Verified>> {
        self.cache.get(token, |i| {
            let p = &self.providers[i];
            (p.keys.current(), p.leeway)
        })
    }

    /// The token's provider and claims: from the cache when this token
    /// verified before under the same keys and still holds, else verified
    /// now (and cached).
    fn verified(&self, token: &str, req: &Requirement) -> Result<Arc<Verified>, GatewayError> {
        if let Some(hit) = self.cached(token) {
            if req
                .providers
                .as_ref()
                .is_none_or(|ok| ok.contains(&hit.provider))
            {
                return Ok(hit);
            }
            let iss = &self.providers[hit.provider].issuer;
            return Err(refused(
                AuthFailure::WrongIssuer,
                &format!("tokens of issuer {iss:?} are not accepted for this method"),
            ));
        }
        let peek = token::peek(token)?;
        let (index, provider) = self.provider_for(&peek, req)?;
        let (claims, keys) = provider.verify(token, &peek)?;
        let verified = Arc::new(Verified::new(index, claims, keys));
        self.cache.insert(token, verified.clone());
        Ok(verified)
    }

    /// Checks the call's token against its destination's requirement.
    fn authorize(&self, call: &mut Call, req: &Requirement) -> Result<(), GatewayError> {
        if let Some(peer) = &req.peer {
            peer.admits(call.extensions.get::<PeerIdentity>())?;
        }
        let token = match call.extensions.get::<Credential>() {
            None if req.anonymous => return Ok(()),
            // Another scheme (Basic, say) may be meant for the upstream.
            Some(Credential(Err(_))) if req.anonymous => return Ok(()),
            None => {
                return Err(refused(
                    AuthFailure::Missing,
                    "this method needs a bearer token",
                ));
            }
            Some(Credential(Err(why))) => return Err(refused(AuthFailure::Malformed, why)),
            Some(Credential(Ok(t))) => t,
        };
        let verified = self.verified(token, req)?;
        let provider = &self.providers[verified.provider];
        let claims = &verified.claims;
        req.grants(claims)?;
        provider.claims_to_metadata(claims, &mut call.metadata);
        if !provider.forward_authorization {
            call.metadata.remove("authorization");
        }
        if let Some(sub) = claims.get("sub").and_then(|s| s.as_str()) {
            let subject = Subject(sub.to_string());
            call.extensions.insert(subject);
        }
        Ok(())
    }
}

impl Hook for Auth {
    fn on_begin(&self, begin: &mut Begin<'_>) {
        if let Some(credential) = token::find(&self.sources, begin.uri, begin.headers) {
            begin.extensions.insert(credential);
        }
    }

    fn prepare(
        &self,
        info: &CallInfo<'_>,
        extensions: &http::Extensions,
    ) -> Option<BoxFuture<'static, ()>> {
        let Some(Credential(Ok(token))) = extensions.get::<Credential>() else {
            return None;
        };
        if self.cached(token).is_some() {
            return None;
        }
        let peek = token::peek(token).ok()?;
        let (_, provider) = self
            .provider_for(&peek, self.requirement(info.target))
            .ok()?;
        let KeySource::Remote(remote) = &provider.keys else {
            return None;
        };
        let keys = remote.current();
        let unknown = match &peek.kid {
            Some(kid) => !keys.has_kid(kid),
            None => keys.keys.is_empty(),
        };
        if !unknown || !remote.may_refresh() {
            return None;
        }
        let remote = remote.clone();
        Some(Box::pin(
            async move { remote.refresh_for_unknown_kid().await },
        ))
    }

    fn on_call(&self, call: &mut Call, info: &CallInfo<'_>) -> Result<(), GatewayError> {
        for key in &self.claim_keys {
            call.metadata.remove(key);
        }
        self.authorize(call, self.requirement(info.target))
    }
}
