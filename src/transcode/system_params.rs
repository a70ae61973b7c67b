//! Google's system query parameters: the ones that shape the response
//! (`$alt`, `$prettyPrint`, `$fields`, `$outputDefaults`), the gateway's own
//! `pretty`, and those that are accepted and never bound to a field (`key`,
//! `callback`, `quotaUser`, `$.xgafv`, …; see
//! <https://cloud.google.com/apis/docs/system-parameters>).
//!
//! Precedence: a `$`-prefixed name is always a system parameter (Google adds
//! the `$` "to avoid conflicting with normal request parameters"). A plain
//! name (`fields`, `key`, `alt`) is one only when the query could not bind a
//! request field by that name: if the request message has such a field that
//! neither the path nor the body binds, the parameter sets the field.

use prost_reflect::MessageDescriptor;

use super::params::{bindable, pairs};
use super::partial_response::FieldSelection;
use super::query::is_http_body;
use super::response::{RenderedBody, ResponseOptions, render_proto, render_selected};
use crate::routing::rules::Route;
use crate::status::GatewayError;

/// What a system parameter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    /// `$alt`, `alt`: the response format.
    Alt,
    /// `$prettyPrint`, `prettyPrint`: `true` or `false`.
    PrettyPrint,
    /// The gateway's `pretty`: any value but `false` or `0` indents.
    Pretty,
    /// `$fields`, `fields`: a partial response.
    Fields,
    /// `$outputDefaults`: emit fields holding default values.
    OutputDefaults,
    /// Accepted and ignored (keys, JSONP callbacks, quota attribution,
    /// upload protocol, error format, credentials the gateway does not read).
    Ignored,
}

/// Names with and without `$` (the gateway's own `pretty` is handled apart).
const NAMES: &[(&str, Param)] = &[
    ("alt", Param::Alt),
    ("prettyPrint", Param::PrettyPrint),
    ("fields", Param::Fields),
    ("outputDefaults", Param::OutputDefaults),
    ("key", Param::Ignored),
    ("callback", Param::Ignored),
    ("quotaUser", Param::Ignored),
    ("userIp", Param::Ignored),
    ("userProject", Param::Ignored),
    ("upload_protocol", Param::Ignored),
    ("uploadType", Param::Ignored),
    ("oauth_token", Param::Ignored),
    ("access_token", Param::Ignored),
    (".xgafv", Param::Ignored),
    ("apiFormat", Param::Ignored),
    ("unique", Param::Ignored),
];

/// Names Google defines only with `$`.
const DOLLAR_ONLY: &[&str] = &["outputDefaults", ".xgafv", "apiFormat", "unique"];

/// Every system parameter's `$` name, for the error naming an unknown one.
pub fn dollar_names() -> String {
    let names: Vec<String> = NAMES.iter().map(|(n, _)| format!("${n}")).collect();
    names.join(", ")
}

/// The parameter `name` is, and whether it came with `$`.
fn lookup(name: &str) -> Option<(Param, bool)> {
    if name == "pretty" {
        return Some((Param::Pretty, false));
    }
    let (bare, dollar) = match name.strip_prefix('$') {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    if !dollar && DOLLAR_ONLY.contains(&bare) {
        return None;
    }
    NAMES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|&(_, p)| (p, dollar))
}

/// Whether the query parameter `key` is a system parameter on `route` (so it
/// binds no field).
pub fn is_system(route: &Route, key: &str) -> bool {
    match lookup(key) {
        Some((_, true)) => true,
        Some((_, false)) => !bindable(route, &route.method.input(), key),
        None => false,
    }
}

/// The response format `$alt` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alt {
    /// JSON (the default).
    #[default]
    Json,
    /// Server-sent events, for server streams (JSON otherwise).
    Sse,
    /// The raw bytes of a google.api.HttpBody response (what it gets anyway).
    Media,
    /// Binary protobuf (`application/x-protobuf`), for unary methods.
    Proto,
}

/// What the request's system parameters ask of the response.
#[derive(Debug, Clone, Default)]
pub struct SystemParams {
    /// The response format.
    pub alt: Alt,
    /// `;enum-encoding=int` on `$alt`: enums as numbers.
    pub enums_as_ints: bool,
    /// Indent (`Some(true)`) or compact (`Some(false)`) output.
    pub pretty: Option<bool>,
    /// `$outputDefaults=true`: fields holding default values are written.
    pub output_defaults: bool,
    /// `$fields`: the partial response.
    pub fields: Option<FieldSelection>,
}

impl SystemParams {
    /// Reads the system parameters of `query` for `route`; a value the
    /// gateway cannot honour is a 400 naming the parameter.
    ///
    /// ```
    /// use protogate::transcode::system_params::SystemParams;
    ///
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let table = protogate::routing::rules::build(&pool, &[], &Default::default()).unwrap();
    /// let hit = table.matcher.find(&http::Method::GET, "/v1/shelves/1/books/2").unwrap();
    /// let route = &table.routes[hit.route];
    /// let q = "%24alt=json%3Benum-encoding%3Dint&prettyPrint=false&key=k&fields=title";
    /// let p = SystemParams::from_query(route, Some(q), 64).unwrap();
    /// assert!(p.enums_as_ints);
    /// assert_eq!(p.pretty, Some(false));
    /// assert!(p.fields.is_some());
    /// assert!(SystemParams::from_query(route, Some("alt=xml"), 64).is_err());
    /// ```
    pub fn from_query(
        route: &Route,
        query: Option<&str>,
        max_depth: usize,
    ) -> Result<SystemParams, GatewayError> {
        let mut out = SystemParams::default();
        let Some(query) = query else {
            return Ok(out);
        };
        let input = route.method.input();
        for pair in pairs(query) {
            let (key, value) = pair?;
            let Some((param, dollar)) = lookup(&key) else {
                continue;
            };
            if !dollar && bindable(route, &input, &key) {
                continue;
            }
            out.read(route, param, &value, max_depth)
                .map_err(|why| GatewayError::bad_field(key.clone(), why))?;
        }
        Ok(out)
    }

    fn read(
        &mut self,
        route: &Route,
        param: Param,
        value: &str,
        max_depth: usize,
    ) -> Result<(), String> {
        match param {
            Param::Alt => {
                (self.alt, self.enums_as_ints) = alt(route, value)?;
                if self.alt == Alt::Proto && self.fields.is_some() {
                    return Err(PROTO_AND_FIELDS.into());
                }
            }
            Param::PrettyPrint => self.pretty = Some(boolean(value)?),
            Param::Pretty => self.pretty = Some(value != "false" && value != "0"),
            Param::OutputDefaults => self.output_defaults = boolean(value)?,
            Param::Fields if self.alt == Alt::Proto && !value.is_empty() => {
                return Err(PROTO_AND_FIELDS.into());
            }
            Param::Fields => {
                self.fields = match value {
                    "" => None,
                    text => Some(FieldSelection::parse(
                        text,
                        rendered_type(route).as_ref(),
                        max_depth,
                    )?),
                }
            }
            Param::Ignored => {}
        }
        Ok(())
    }

    /// Renders a unary response as these parameters ask (`opts` already
    /// changed by [`response_options`](Self::response_options)): binary
    /// protobuf for `$alt=proto`, else JSON filtered by `$fields`.
    pub fn render(
        &self,
        route: &Route,
        encoded: &[u8],
        opts: &ResponseOptions,
    ) -> Result<RenderedBody, GatewayError> {
        if self.alt == Alt::Proto {
            return Ok(RenderedBody::Raw {
                content_type: PROTO_CONTENT_TYPE.into(),
                data: render_proto(route, encoded)?,
            });
        }
        render_selected(route, encoded, opts, self.fields.as_ref())
    }

    /// The gateway's response options as these parameters change them.
    pub fn response_options(&self, base: ResponseOptions) -> ResponseOptions {
        ResponseOptions {
            enums_as_ints: base.enums_as_ints || self.enums_as_ints,
            emit_defaults: base.emit_defaults || self.output_defaults,
            pretty: self.pretty.unwrap_or(base.pretty),
            ..base
        }
    }
}

/// Whether a query asks for indented output, for answers made before a route
/// is known (errors): `pretty` (not `false`/`0`), `prettyPrint=true`,
/// `$prettyPrint=true`.
pub fn wants_pretty(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        pairs(q)
            .filter_map(Result::ok)
            .any(|(k, v)| match k.as_str() {
                "pretty" => v != "false" && v != "0",
                "prettyPrint" | "$prettyPrint" => v == "true",
                _ => false,
            })
    })
}

fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// The content type of `$alt=proto` answers.
pub const PROTO_CONTENT_TYPE: &str = "application/x-protobuf";

const PROTO_AND_FIELDS: &str = "fields cannot filter a binary (alt=proto) response";

/// `json`, `sse`, `media` or `proto`, optionally with `;enum-encoding=int`
/// (what Google's generated REST clients send on every call).
fn alt(route: &Route, value: &str) -> Result<(Alt, bool), String> {
    let mut parts = value.split(';');
    let format = match parts.next().unwrap_or_default() {
        "json" => Alt::Json,
        "sse" => Alt::Sse,
        "media" if renders_raw(route) => Alt::Media,
        "media" => {
            return Err(
                "media is served only by methods that answer with google.api.HttpBody".into(),
            );
        }
        "proto" if renders_message(route) && !route.method.is_server_streaming() => Alt::Proto,
        "proto" => {
            return Err(
                "proto is served only by unary methods whose HTTP body is a message \
                 (not a scalar, list or map response_body)"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "{other:?} is not a response format the gateway serves (json, \
                 json;enum-encoding=int, sse, proto, or media for google.api.HttpBody)"
            ));
        }
    };
    let mut ints = false;
    for option in parts {
        match option {
            "enum-encoding=int" => ints = true,
            "enum-encoding=string" | "" => {}
            other => return Err(format!("unknown format option {other:?}")),
        }
    }
    Ok((format, ints))
}

/// The message type the route renders as JSON (`None` when it renders a
/// scalar, list or map field).
fn rendered_type(route: &Route) -> Option<MessageDescriptor> {
    match &route.response_body {
        None => Some(route.method.output()),
        Some(f) if f.is_map() => None,
        Some(f) => f.kind().as_message().cloned(),
    }
}

/// Whether the route's HTTP body is one message (the whole response, or a
/// singular message `response_body`).
fn renders_message(route: &Route) -> bool {
    route
        .response_body
        .as_ref()
        .is_none_or(|f| !f.is_list() && rendered_type(route).is_some())
}

fn renders_raw(route: &Route) -> bool {
    rendered_type(route).is_some_and(|m| is_http_body(&m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::example_routes;

    fn params(path: &str, query: &str) -> Result<SystemParams, GatewayError> {
        let t = example_routes();
        let hit = t.matcher.find(&http::Method::GET, path).unwrap();
        SystemParams::from_query(&t.routes[hit.route], Some(query), 64)
    }

    #[test]
    fn names() {
        assert_eq!(lookup("$alt"), Some((Param::Alt, true)));
        assert_eq!(lookup("alt"), Some((Param::Alt, false)));
        assert_eq!(lookup("$.xgafv"), Some((Param::Ignored, true)));
        assert_eq!(lookup(".xgafv"), None);
        assert_eq!(lookup("unique"), None);
        assert_eq!(lookup("pretty"), Some((Param::Pretty, false)));
        assert_eq!(lookup("$pretty"), None);
        assert_eq!(lookup("nope"), None);
    }

    #[test]
    fn alt_values() {
        let p = |q: &str| params("/v1/shelves/1/books/2", q);
        assert!(!p("alt=json").unwrap().enums_as_ints);
        assert!(p("$alt=json;enum-encoding=int").unwrap().enums_as_ints);
        assert_eq!(p("alt=sse").unwrap().alt, Alt::Sse);
        assert_eq!(p("alt=proto").unwrap().alt, Alt::Proto);
        for bad in [
            "alt=proto&fields=title",
            "fields=title&$alt=proto",
            "$alt=media",
            "alt=json;x=y",
            "alt=xml",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let cover = params("/v1/shelves/1/books/2/cover", "alt=media").unwrap();
        assert_eq!(cover.alt, Alt::Media);
    }

    #[test]
    fn options_follow_the_parameters() {
        let p = params(
            "/v1/shelves/1/books/2",
            "prettyPrint=false&$outputDefaults=true",
        )
        .unwrap();
        let base = ResponseOptions {
            pretty: true,
            ..Default::default()
        };
        let o = p.response_options(base);
        assert!(!o.pretty && o.emit_defaults && !o.enums_as_ints);
        assert!(params("/v1/shelves/1/books/2", "prettyPrint=yes").is_err());
        assert!(wants_pretty(Some("%24prettyPrint=true")));
        assert!(!wants_pretty(Some("prettyPrint=false")));
    }
}
