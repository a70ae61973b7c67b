//! Builds the route table from `google.api.http` annotations, routes.yaml
//! rules and auto-mapping. Everything is resolved and checked here, at load
//! time: a route holds field descriptors, not names, so the request path does
//! lookups, never scans.

use std::collections::BTreeMap;
use std::fmt;

use http::Method;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use super::matcher::{Matcher, MethodFilter};
use super::template::PathTemplate;
use crate::config::HttpRule;

/// Where a route's rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// A `google.api.http` option in the descriptors.
    Annotation,
    /// `http.rules` in routes.yaml.
    Config,
    /// No rule: `POST /pkg.Service/Method`, body `*`.
    AutoMapped,
}

impl fmt::Display for RuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleSource::Annotation => "annotation",
            RuleSource::Config => "routes.yaml",
            RuleSource::AutoMapped => "auto",
        })
    }
}

/// What the HTTP request body maps to.
#[derive(Debug, Clone)]
pub enum BodyRule {
    /// No body.
    None,
    /// `*`: the whole request message.
    Whole,
    /// One top-level field.
    Field(FieldDescriptor),
}

/// One HTTP route to one gRPC method.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index in [`RouteTable::routes`].
    pub id: usize,
    /// The HTTP method(s).
    pub http_method: MethodFilter,
    /// The path template.
    pub template: PathTemplate,
    /// The gRPC method.
    pub method: MethodDescriptor,
    /// The body mapping.
    pub body: BodyRule,
    /// The response field sent as the body, if not the whole message.
    pub response_body: Option<FieldDescriptor>,
    /// For each template variable, the resolved request field path.
    pub variables: Vec<Vec<FieldDescriptor>>,
    /// For each template variable, its field path as proto names joined
    /// with `.` (`book.name`), for errors.
    pub variable_names: Vec<String>,
    /// When the body is a message field: the request's FieldMask field,
    /// which a PATCH fills from the body when the client leaves it empty.
    pub update_mask: Option<FieldDescriptor>,
    /// Where the rule came from.
    pub source: RuleSource,
    /// The gRPC path, `/pkg.Service/Method`.
    pub grpc_path: String,
    /// `GET /v1/{name=shelves/*}`: the route as `protogate routes` prints it
    /// and stubs name it.
    pub key: String,
    /// The rendered response type holds map fields (their JSON entries get sorted).
    pub renders_maps: bool,
    /// The direct wire → JSON writer for the rendered response, when it
    /// applies to the type (made once, here; see `transcode::wire_json`).
    pub wire_json: Option<crate::transcode::wire_json::WireJson>,
    /// The request type can hold `google.protobuf.Struct`, `Value`,
    /// `ListValue` or `Any`, where every JSON value may decode to a message
    /// (the decoding budget counts it so).
    pub dynamic_json: bool,
}

impl Route {
    /// The body as written in the rule: `""`, `"*"` or the field name.
    pub fn body_str(&self) -> &str {
        match &self.body {
            BodyRule::None => "",
            BodyRule::Whole => "*",
            BodyRule::Field(f) => f.name(),
        }
    }

    /// True when the method streams in either direction.
    pub fn is_streaming(&self) -> bool {
        self.method.is_client_streaming() || self.method.is_server_streaming()
    }
}

/// A problem with one rule; `check` prints them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule: selector plus HTTP method and template where known.
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

/// Options for building routes.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    /// Map methods with no rule to `POST /pkg.Service/Method`.
    pub auto_map: bool,
    /// Fully decode multi-segment variables (google.api.Http option).
    pub fully_decode_reserved_expansion: bool,
}

impl Default for RulesOptions {
    fn default() -> Self {
        RulesOptions {
            auto_map: true,
            fully_decode_reserved_expansion: false,
        }
    }
}

/// All routes plus the compiled matcher.
#[derive(Debug)]
pub struct RouteTable {
    /// The routes, ids are indexes.
    pub routes: Vec<Route>,
    /// The matcher over them.
    pub matcher: Matcher,
}

/// Builds and validates every route; all problems are returned together.
pub fn build(
    pool: &DescriptorPool,
    config_rules: &[HttpRule],
    opts: &RulesOptions,
) -> Result<RouteTable, Vec<RuleError>> {
    let mut errors = Vec::new();

    // routes.yaml rules by selector; a selector given twice is ambiguous.
    let mut yaml: BTreeMap<String, &HttpRule> = BTreeMap::new();
    for rule in config_rules {
        if find_method(pool, &rule.selector).is_none() {
            errors.push(RuleError {
                rule: format!("routes.yaml rule {}", rule.selector),
                message: "selector names no method in the descriptors".into(),
            });
            continue;
        }
        if yaml.insert(rule.selector.clone(), rule).is_some() {
            errors.push(RuleError {
                rule: format!("routes.yaml rule {}", rule.selector),
                message: "selector has more than one rule".into(),
            });
        }
    }

    let http_ext = pool.get_extension_by_name("google.api.http");
    let mut table = RouteTable {
        routes: Vec::new(),
        matcher: Matcher::new(),
    };
    table
        .matcher
        .set_fully_decode_reserved(opts.fully_decode_reserved_expansion);
    for service in pool.services() {
        for method in service.methods() {
            let selector = method.full_name().to_string();
            let (rule, source) = if let Some(r) = yaml.get(&selector) {
                ((*r).clone(), RuleSource::Config)
            } else if let Some(r) = http_ext
                .as_ref()
                .and_then(|ext| annotation(&method, ext, &mut errors))
            {
                (r, RuleSource::Annotation)
            } else if opts.auto_map {
                let rule = HttpRule {
                    selector: selector.clone(),
                    post: Some(format!("/{}/{}", service.full_name(), method.name())),
                    body: "*".into(),
                    ..HttpRule::default()
                };
                (rule, RuleSource::AutoMapped)
            } else {
                continue;
            };
            add_rule(&mut table, &method, &rule, &source, true, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(table)
    } else {
        Err(errors)
    }
}

fn find_method(pool: &DescriptorPool, selector: &str) -> Option<MethodDescriptor> {
    let (service, method) = selector.rsplit_once('.')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

fn annotation(
    method: &MethodDescriptor,
    ext: &prost_reflect::ExtensionDescriptor,
    errors: &mut Vec<RuleError>,
) -> Option<HttpRule> {
    let options = method.options();
    if !options.has_extension(ext) {
        return None;
    }
    let value = options.get_extension(ext);
    let msg = value.as_message()?;
    // The rule's JSON form deserializes into the same struct as routes.yaml.
    let parsed = serde_json::to_value(msg)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value::<HttpRule>(v).map_err(|e| e.to_string()));
    match parsed {
        Ok(r) => Some(r),
        Err(e) => {
            errors.push(RuleError {
                rule: format!("annotation on {}", method.full_name()),
                message: format!("unreadable google.api.http option: {e}"),
            });
            None
        }
    }
}

fn add_rule(
    table: &mut RouteTable,
    method: &MethodDescriptor,
    rule: &HttpRule,
    source: &RuleSource,
    top_level: bool,
    errors: &mut Vec<RuleError>,
) {
    let patterns = rule.patterns();
    let name = |m: &str, t: &str| format!("{} ({m} {t})", method.full_name());
    if patterns.len() != 1 {
        errors.push(RuleError {
            rule: format!("{} rule for {}", source, method.full_name()),
            message: format!(
                "a rule needs exactly one of get, put, post, delete, patch, custom (found {})",
                patterns.len()
            ),
        });
    }
    if !top_level && !rule.additional_bindings.is_empty() {
        errors.push(RuleError {
            rule: format!("{} rule for {}", source, method.full_name()),
            message: "additional_bindings may not nest".into(),
        });
    }
    for (http_method, path) in patterns {
        let rule_name = name(&http_method, path);
        let err = |message: String| RuleError {
            rule: rule_name.clone(),
            message,
        };
        match compile_route(table.routes.len(), method, rule, source, &http_method, path) {
            Ok(route) => {
                match table
                    .matcher
                    .insert(route.http_method.clone(), &route.template, route.id)
                {
                    Ok(()) => table.routes.push(route),
                    Err(other) => {
                        let o = &table.routes[other];
                        errors.push(err(format!(
                            "conflicts with {} ({} {}): both match the same requests",
                            o.method.full_name(),
                            o.http_method,
                            o.template
                        )));
                    }
                }
            }
            Err(messages) => errors.extend(messages.into_iter().map(err)),
        }
    }
    if top_level {
        for extra in &rule.additional_bindings {
            add_rule(table, method, extra, source, false, errors);
        }
    }
}

fn compile_route(
    id: usize,
    method: &MethodDescriptor,
    rule: &HttpRule,
    source: &RuleSource,
    http_method: &str,
    path: &str,
) -> Result<Route, Vec<String>> {
    let mut problems = Vec::new();
    let http_method = if http_method == "*" {
        MethodFilter::Any
    } else {
        match Method::from_bytes(http_method.to_ascii_uppercase().as_bytes()) {
            Ok(m) => MethodFilter::Exact(m),
            Err(_) => return Err(vec![format!("invalid HTTP method {http_method:?}")]),
        }
    };
    let template = PathTemplate::parse(path).map_err(|e| vec![e.to_string()])?;
    let input = method.input();

    let mut variables = Vec::new();
    for var in &template.variables {
        match resolve_path(&input, &var.field_path) {
            Ok(fields) => {
                let Some(leaf) = fields.last() else { continue };
                if leaf.is_list() || leaf.is_map() {
                    problems.push(format!(
                        "path variable {{{}}} names a repeated field",
                        var.field_path_str()
                    ));
                } else if matches!(leaf.kind(), Kind::Message(_)) {
                    problems.push(format!(
                        "path variable {{{}}} names a message field; bind a scalar field inside it",
                        var.field_path_str()
                    ));
                }
                variables.push(fields);
            }
            Err(e) => problems.push(format!("path variable {{{}}}: {e}", var.field_path_str())),
        }
    }

    let body = match rule.body.as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        name => match top_field(&input, name) {
            Some(f) => {
                if variables.iter().any(|v| v.len() == 1 && v[0] == f) {
                    problems.push(format!("body field {name:?} is also bound by the path"));
                }
                BodyRule::Field(f)
            }
            None => {
                problems.push(format!(
                    "body {name:?} names no top-level field of {}",
                    input.full_name()
                ));
                BodyRule::None
            }
        },
    };
    if http_method == MethodFilter::Exact(Method::GET) && !matches!(body, BodyRule::None) {
        problems.push("a GET rule cannot have a body".into());
    }
    let response_body = match rule.response_body.as_str() {
        "" => None,
        name => {
            let out = method.output();
            let f = top_field(&out, name);
            if f.is_none() {
                problems.push(format!(
                    "response_body {name:?} names no top-level field of {}",
                    out.full_name()
                ));
            }
            f
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let rendered = match response_body.as_ref().map(|f| f.kind()) {
        Some(Kind::Message(m)) => Some(m),
        Some(_) => None,
        None => Some(method.output()),
    };
    let update_mask = match &body {
        BodyRule::Field(f) if f.kind().as_message().is_some() => update_mask_field(&input),
        _ => None,
    };
    Ok(Route {
        variable_names: variables
            .iter()
            .map(|v| v.iter().map(|f| f.name()).collect::<Vec<_>>().join("."))
            .collect(),
        update_mask,
        key: format!("{http_method} {template}"),
        renders_maps: rendered.is_some_and(|m| holds_maps(&m)),
        wire_json: crate::transcode::wire_json::WireJson::for_route(
            &method.output(),
            response_body.as_ref(),
        ),
        dynamic_json: reaches(&input, |m| {
            matches!(
                m.full_name(),
                "google.protobuf.Struct"
                    | "google.protobuf.Value"
                    | "google.protobuf.ListValue"
                    | "google.protobuf.Any"
            )
        }),
        id,
        http_method,
        template,
        grpc_path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
        method: method.clone(),
        body,
        response_body,
        variables,
        source: source.clone(),
    })
}

/// The request's `update_mask` field, or its only FieldMask field.
fn update_mask_field(input: &MessageDescriptor) -> Option<FieldDescriptor> {
    let is_mask = |f: &FieldDescriptor| {
        !f.is_list()
            && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
    };
    if let Some(f) = input.get_field_by_name("update_mask") {
        return is_mask(&f).then_some(f);
    }
    let mut masks = input.fields().filter(is_mask);
    let first = masks.next();
    if masks.next().is_some() { None } else { first }
}

/// True when `desc`, or a message type reachable through its fields, is
/// one that `is` picks.
pub fn reaches(desc: &MessageDescriptor, is: impl Fn(&MessageDescriptor) -> bool) -> bool {
    fn walk(
        desc: &MessageDescriptor,
        is: &dyn Fn(&MessageDescriptor) -> bool,
        seen: &mut Vec<String>,
    ) -> bool {
        if is(desc) {
            return true;
        }
        if seen.iter().any(|s| s == desc.full_name()) {
            return false;
        }
        seen.push(desc.full_name().to_string());
        desc.fields().any(|f| match f.kind() {
            prost_reflect::Kind::Message(m) => walk(&m, is, seen),
            _ => false,
        })
    }
    walk(desc, &is, &mut Vec::new())
}

/// True when `desc` holds a map field, directly or in a nested message
/// (well-known types aside).
pub fn holds_maps(desc: &MessageDescriptor) -> bool {
    fn walk(desc: &MessageDescriptor, seen: &mut Vec<String>) -> bool {
        if desc.full_name().starts_with("google.protobuf.")
            || seen.iter().any(|s| s == desc.full_name())
        {
            return false;
        }
        seen.push(desc.full_name().to_string());
        desc.fields().any(|f| {
            f.is_map()
                || match f.kind() {
                    Kind::Message(m) => walk(&m, seen),
                    _ => false,
                }
        })
    }
    walk(desc, &mut Vec::new())
}

/// A top-level field by proto name or JSON name.
pub fn top_field(msg: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    msg.get_field_by_name(name)
        .or_else(|| msg.get_field_by_json_name(name))
}

/// Resolves `a.b.c` through singular message fields.
pub fn resolve_path(
    msg: &MessageDescriptor,
    path: &[String],
) -> Result<Vec<FieldDescriptor>, String> {
    let mut out = Vec::with_capacity(path.len());
    let mut current = msg.clone();
    for (i, part) in path.iter().enumerate() {
        let f = top_field(&current, part)
            .ok_or_else(|| format!("{} has no field {part:?}", current.full_name()))?;
        if i + 1 < path.len() {
            match f.kind() {
                Kind::Message(m) if !f.is_list() && !f.is_map() => current = m,
                _ => {
                    return Err(format!(
                        "{part:?} is not a singular message field, so it cannot have subfields"
                    ));
                }
            }
        }
        out.push(f);
    }
    Ok(out)
}
