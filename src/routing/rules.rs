//! Builds the route table from `google.api.http` annotations, routes.yaml
//! rules and auto-mapping. Everything is resolved and checked here, at load
//! time: a route holds field descriptors, not names, so the request path does
//! lookups, never scans. A rule that cannot be served is skipped and listed
//! (see [`super::skipped`]), unless the build is strict.

use std::collections::BTreeMap;
use std::fmt;

use http::Method;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MethodDescriptor};

use super::fields::{body_rule, field_path_str, path_variable, update_mask_field};
pub use super::fields::{holds_maps, reaches, resolve_path, top_field};
use super::matcher::{Matcher, MethodFilter};
use super::skipped::SkippedRule;
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
    /// One field: top-level, or the last of a path through singular
    /// message fields (`body: "payload.input_value"`, see
    /// [`Route::body_path`]).
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
    /// When the body is one field: the path to it from the request
    /// message, that field last (`[payload, input_value]`); else empty.
    pub body_path: Vec<FieldDescriptor>,
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
    /// The body as written in the rule: `""`, `"*"` or the field path.
    pub fn body_str(&self) -> String {
        match &self.body {
            BodyRule::None => String::new(),
            BodyRule::Whole => "*".into(),
            BodyRule::Field(_) => field_path_str(&self.body_path),
        }
    }

    /// The singular message fields that lead to the body field (empty when
    /// the body is a top-level field, or not a field).
    pub fn body_parents(&self) -> &[FieldDescriptor] {
        self.body_path
            .split_last()
            .map_or(&[], |(_, parents)| parents)
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
    /// A rule that cannot be served fails the build, instead of being
    /// skipped (`routing.strict`, `--strict`).
    pub strict: bool,
    /// The routes.yaml path, to name where a skipped rule is written.
    pub config_file: Option<String>,
    /// The services to route (the `services:` allow-list).
    pub services: crate::descriptors::ServiceFilter,
}

impl Default for RulesOptions {
    fn default() -> Self {
        RulesOptions {
            auto_map: true,
            fully_decode_reserved_expansion: false,
            strict: false,
            config_file: None,
            services: Default::default(),
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
    /// Rules that are not served (empty under `strict`, which fails instead).
    pub skipped: Vec<SkippedRule>,
}

/// Where a rule is written, for [`SkippedRule`]s.
struct Origin {
    source: RuleSource,
    file: String,
    /// The annotated method, whose line is looked up only for a skip.
    method: Option<MethodDescriptor>,
}

impl Origin {
    fn skip(&self, selector: &str, binding: Option<String>, reason: String) -> SkippedRule {
        let file = match &self.method {
            Some(m) => super::skipped::with_line(&self.file, m),
            None => self.file.clone(),
        };
        SkippedRule {
            selector: selector.to_string(),
            binding,
            source: self.source.clone(),
            file,
            reason,
        }
    }
}

/// Builds and validates every route. A rule that cannot be served is
/// skipped and listed in [`RouteTable::skipped`], the rest are served;
/// with [`RulesOptions::strict`] they are returned as errors instead, all
/// together. Of two rules matching the same requests the first registered
/// (descriptor order, a routes.yaml rule in its method's place) is served.
pub fn build(
    pool: &DescriptorPool,
    config_rules: &[HttpRule],
    opts: &RulesOptions,
) -> Result<RouteTable, Vec<RuleError>> {
    let mut table = RouteTable {
        routes: Vec::new(),
        matcher: Matcher::new(),
        skipped: Vec::new(),
    };
    table
        .matcher
        .set_fully_decode_reserved(opts.fully_decode_reserved_expansion);
    let config = Origin {
        source: RuleSource::Config,
        file: opts
            .config_file
            .clone()
            .unwrap_or_else(|| "routes.yaml".into()),
        method: None,
    };
    let yaml = yaml_rules(pool, config_rules, &config, &mut table.skipped);

    let http_ext = pool.get_extension_by_name("google.api.http");
    for service in pool.services().filter(|s| opts.services.allows(s)) {
        for method in service.methods() {
            let selector = method.full_name().to_string();
            let annotated = Origin {
                source: RuleSource::Annotation,
                file: method.parent_file().name().to_string(),
                method: Some(method.clone()),
            };
            let (rule, origin) = if let Some(r) = yaml.get(&selector) {
                ((*r).clone(), &config)
            } else if let Some(r) = http_ext
                .as_ref()
                .and_then(|ext| annotation(&method, ext, &annotated, &mut table.skipped))
            {
                (r, &annotated)
            } else if opts.auto_map {
                let rule = HttpRule {
                    selector: selector.clone(),
                    post: Some(format!("/{}/{}", service.full_name(), method.name())),
                    body: "*".into(),
                    ..HttpRule::default()
                };
                (rule, &AUTO)
            } else {
                continue;
            };
            add_rule(&mut table, &method, &rule, origin, true);
        }
    }
    if opts.strict && !table.skipped.is_empty() {
        return Err(table.skipped.iter().map(SkippedRule::to_error).collect());
    }
    Ok(table)
}

const AUTO: Origin = Origin {
    source: RuleSource::AutoMapped,
    file: String::new(),
    method: None,
};

/// routes.yaml rules by selector; of two for one selector the first is
/// used; a selector naming no method is skipped.
fn yaml_rules<'r>(
    pool: &DescriptorPool,
    config_rules: &'r [HttpRule],
    origin: &Origin,
    skipped: &mut Vec<SkippedRule>,
) -> BTreeMap<String, &'r HttpRule> {
    let mut yaml: BTreeMap<String, &HttpRule> = BTreeMap::new();
    for rule in config_rules {
        let binding = rule
            .patterns()
            .first()
            .map(|(m, path)| format!("{m} {path}"));
        if find_method(pool, &rule.selector).is_none() {
            skipped.push(origin.skip(
                &rule.selector,
                binding,
                "selector names no method in the descriptors".into(),
            ));
        } else if yaml.contains_key(&rule.selector) {
            skipped.push(origin.skip(
                &rule.selector,
                binding,
                "selector has more than one rule (the first one is served)".into(),
            ));
        } else {
            yaml.insert(rule.selector.clone(), rule);
        }
    }
    yaml
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
    origin: &Origin,
    skipped: &mut Vec<SkippedRule>,
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
            skipped.push(origin.skip(
                method.full_name(),
                None,
                format!("unreadable google.api.http option: {e}"),
            ));
            None
        }
    }
}

/// Adds the routes of one rule (and, at the top level, of its additional
/// bindings); each binding that cannot be served is skipped on its own.
fn add_rule(
    table: &mut RouteTable,
    method: &MethodDescriptor,
    rule: &HttpRule,
    origin: &Origin,
    top_level: bool,
) {
    let selector = method.full_name();
    let patterns = rule.patterns();
    if let [(http_method, path)] = patterns.as_slice() {
        add_route(table, method, rule, origin, http_method, path);
    } else {
        let binding = (!patterns.is_empty()).then(|| {
            let all: Vec<String> = patterns.iter().map(|(m, p)| format!("{m} {p}")).collect();
            all.join(", ")
        });
        table.skipped.push(origin.skip(
            selector,
            binding,
            format!(
                "a rule needs exactly one of get, put, post, delete, patch, custom (found {})",
                patterns.len()
            ),
        ));
    }
    for extra in &rule.additional_bindings {
        if top_level {
            add_rule(table, method, extra, origin, false);
        } else {
            let binding = extra.patterns().first().map(|(m, p)| format!("{m} {p}"));
            let reason = "additional_bindings may not nest".to_string();
            table.skipped.push(origin.skip(selector, binding, reason));
        }
    }
}

/// Compiles one binding and registers it; the first registered of two
/// that match the same requests is served.
fn add_route(
    table: &mut RouteTable,
    method: &MethodDescriptor,
    rule: &HttpRule,
    origin: &Origin,
    http_method: &str,
    path: &str,
) {
    let binding = Some(format!("{http_method} {path}"));
    let skip = |reason: String| origin.skip(method.full_name(), binding.clone(), reason);
    let source = &origin.source;
    let route = match compile_route(table.routes.len(), method, rule, source, http_method, path) {
        Ok(route) => route,
        Err(problems) => {
            table.skipped.extend(problems.into_iter().map(skip));
            return;
        }
    };
    match table
        .matcher
        .insert(route.http_method.clone(), &route.template, route.id)
    {
        Ok(()) => table.routes.push(route),
        Err(other) => {
            let first = table.routes.get(other).map_or_else(
                || format!("route {other}"),
                |o| {
                    format!(
                        "{} ({} {})",
                        o.method.full_name(),
                        o.http_method,
                        o.template
                    )
                },
            );
            table.skipped.push(skip(format!(
                "conflicts with {first}: both match the same requests; the first registered is served"
            )));
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
    // One line for the rule however many of its variables fail.
    let mut bad_variables = Vec::new();
    for var in &template.variables {
        match resolve_path(&input, &var.field_path).and_then(path_variable) {
            Ok(fields) => variables.push(fields),
            Err(e) => bad_variables.push(format!("{{{}}}: {e}", var.field_path_str())),
        }
    }
    match bad_variables.len() {
        0 => {}
        1 => problems.push(format!("path variable {}", bad_variables[0])),
        _ => problems.push(format!("path variables {}", bad_variables.join("; "))),
    }

    let (body, body_path) = match body_rule(&input, &rule.body) {
        Ok((body, path)) => {
            if !path.is_empty() && variables.contains(&path) {
                problems.push(format!(
                    "body field {:?} is also bound by the path",
                    rule.body
                ));
            }
            (body, path)
        }
        Err(e) => {
            problems.push(e);
            (BodyRule::None, Vec::new())
        }
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
    // A body below the top level fills no update mask: the mask's paths are
    // the request's.
    let update_mask = match &body {
        BodyRule::Field(f) if f.kind().as_message().is_some() && body_path.len() == 1 => {
            update_mask_field(&input)
        }
        _ => None,
    };
    Ok(Route {
        variable_names: variables.iter().map(|v| field_path_str(v)).collect(),
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
        body_path,
        response_body,
        variables,
        source: source.clone(),
    })
}
