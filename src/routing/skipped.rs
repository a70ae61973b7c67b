//! Rules that cannot be served. By default each is skipped with a warning
//! and everything else is served; under `routing.strict` (`--strict`) any
//! of them stops the load instead.

use std::fmt;

use super::rules::{RuleError, RuleSource};

/// One rule, or one binding of a rule, that is not served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    /// The method the rule is for (`pkg.Service.Method`), as written.
    pub selector: String,
    /// `GET /v1/{name=shelves/*}`, when the rule got as far as naming one.
    pub binding: Option<String>,
    /// Where the rule came from.
    pub source: RuleSource,
    /// The file it is written in: the `.proto` file of an annotation, the
    /// routes.yaml path of a configured rule (empty for auto-mapped routes).
    pub file: String,
    /// Why it cannot be served.
    pub reason: String,
}

impl SkippedRule {
    /// The rule, without the reason:
    /// `pkg.Service.Method (GET /v1/x) [annotation in pkg/service.proto]`.
    pub fn rule(&self) -> String {
        let mut out = self.selector.clone();
        if let Some(b) = &self.binding {
            out.push_str(&format!(" ({b})"));
        }
        match (&self.source, self.file.is_empty()) {
            (RuleSource::Annotation, false) => {
                out.push_str(&format!(" [annotation in {}]", self.file))
            }
            (_, false) => out.push_str(&format!(" [{}]", self.file)),
            (source, true) => out.push_str(&format!(" [{source}]")),
        }
        out
    }

    /// The same problem as a load error (strict mode).
    pub fn to_error(&self) -> RuleError {
        RuleError {
            rule: self.rule(),
            message: self.reason.clone(),
        }
    }

    /// Logs the rule at WARN, with its parts as fields.
    pub fn warn(&self) {
        tracing::warn!(
            selector = %self.selector,
            template = self.binding.as_deref().unwrap_or("-"),
            source = %self.source,
            file = %self.file,
            reason = %self.reason,
            "rule skipped, not served: {self}"
        );
    }
}

impl fmt::Display for SkippedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule(), self.reason)
    }
}

/// `file:line` of a method's annotation when the file kept its source info
/// (compiled from `.proto`, or a set built with it), else `file`.
pub(super) fn with_line(file: &str, method: &prost_reflect::MethodDescriptor) -> String {
    let info = method.parent_file();
    let info = info.file_descriptor_proto();
    let Some(info) = info.source_code_info.as_ref() else {
        return file.to_string();
    };
    // MethodDescriptorProto.options is field 4; google.api.http its extension.
    let mut http: Vec<i32> = method.path().to_vec();
    http.extend([4, HTTP_EXTENSION]);
    let line = |path: &[i32]| {
        info.location
            .iter()
            .find(|l| l.path == path)
            .and_then(|l| l.span.first())
    };
    match line(&http).or_else(|| line(method.path())) {
        Some(l) => format!("{file}:{}", l + 1),
        None => file.to_string(),
    }
}

/// The field number of the `google.api.http` method option.
const HTTP_EXTENSION: i32 = 72295728;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_rule_its_file_and_the_reason() {
        let s = SkippedRule {
            selector: "pkg.S.M".into(),
            binding: Some("GET /v1/{x}".into()),
            source: RuleSource::Annotation,
            file: "pkg/s.proto".into(),
            reason: "bad".into(),
        };
        assert_eq!(
            s.to_string(),
            "pkg.S.M (GET /v1/{x}) [annotation in pkg/s.proto]: bad"
        );
        let e = s.to_error();
        assert_eq!(e.to_string(), s.to_string());
        let yaml = SkippedRule {
            source: RuleSource::Config,
            file: "conf/routes.yaml".into(),
            binding: None,
            ..s
        };
        assert_eq!(yaml.to_string(), "pkg.S.M [conf/routes.yaml]: bad");
    }
}
