//! Routing: google.api.http templates, the rules that produce routes, and the
//! compiled matcher. Pure: no HTTP server types, so it tests on its own.

mod fields;
pub mod matcher;
pub mod rules;
pub mod skipped;
pub mod template;

pub use matcher::{MatchError, Matcher, MethodFilter, RouteMatch};
pub use rules::{BodyRule, Route, RouteTable, RuleError, RuleSource, RulesOptions};
pub use skipped::SkippedRule;
pub use template::{PathTemplate, Segment, TemplateError};
