//! Which services the gateway serves out of the loaded pool: the
//! `services:` allow-list (globs such as `google.pubsub.v1.*`), so that one
//! large descriptor set can feed several gateways.
//!
//! With no allow-list every service is served except those defined in the
//! built-in Google files (`google.longrunning.Operations`,
//! `google.iam.v1.IAMPolicy`, `google.cloud.location.Locations`): they come
//! along as imports for their types, and are served only when named.

use std::path::Path;

use prost_reflect::ServiceDescriptor;

/// The services to serve, by full-name glob (`*` matches any run of
/// characters, dots included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFilter {
    patterns: Vec<String>,
}

impl ServiceFilter {
    /// A filter from globs; an empty list serves every user service.
    ///
    /// ```
    /// use protogate::descriptors::ServiceFilter;
    /// let f = ServiceFilter::new(["google.pubsub.v1.*"]);
    /// assert!(f.allows_name("google.pubsub.v1.Publisher"));
    /// assert!(!f.allows_name("google.pubsub.v2.Publisher"));
    /// ```
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> ServiceFilter {
        ServiceFilter {
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// The globs, as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// True when no allow-list was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `service` is served.
    pub fn allows(&self, service: &ServiceDescriptor) -> bool {
        if self.patterns.is_empty() {
            return !super::builtin::is_builtin_name(service.parent_file().name());
        }
        self.allows_name(service.full_name())
    }

    /// Whether a service of this full name matches the allow-list (an empty
    /// list matches everything).
    pub fn allows_name(&self, full_name: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| glob(p, full_name))
    }

    /// Whether a `.proto` file on disk defines an allowed service, judged
    /// from a parse without imports. Files that do not parse count as
    /// wanted, so that their errors are reported.
    pub(super) fn wants_file(&self, name: &str, path: &Path) -> bool {
        let Ok(source) = std::fs::read_to_string(path) else {
            return true;
        };
        let Ok(file) = protox_parse::parse(name, &source) else {
            return true;
        };
        let package = file.package();
        file.service.iter().any(|s| {
            let full = match package {
                "" => s.name().to_string(),
                p => format!("{p}.{}", s.name()),
            };
            self.allows_name(&full)
        })
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("a.b.C", "a.b.C"));
        assert!(!glob("a.b.C", "a.b.CD"));
        assert!(glob("a.*", "a.b.C"));
        assert!(glob("*.Publisher", "google.pubsub.v1.Publisher"));
        assert!(glob("google.*.v1.*", "google.pubsub.v1.Subscriber"));
        assert!(!glob("google.*.v1.*", "google.pubsub.v2.Subscriber"));
        assert!(glob("*", "x"));
        assert!(glob("a*a", "aa"));
        assert!(!glob("a*a", "a"));
    }
}
