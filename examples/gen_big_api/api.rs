//! A synthetic API of any size, for the scale bench (`benches/scale.rs`) and
//! `bench/scale.sh`: `.proto` sources whose methods carry `google.api.http`
//! templates of the shapes real APIs use (AIP resource names under several
//! parents, collection routes, `body: "thing"` and `body: "*"`, custom verbs,
//! a trailing `**`), with as many message types as asked for.
//!
//! Each resource `r` has five methods (Get, List, Create, Update and a custom
//! verb) and [`FIXED_TYPES_PER_RESOURCE`] message types, plus nested detail
//! messages to reach the requested type count. Twenty resources share a file,
//! package and service.

use std::fmt::Write as _;

/// Methods (and routes) per resource.
pub const METHODS_PER_RESOURCE: usize = 5;
/// Resources per file (one package and one service each).
pub const RESOURCES_PER_FILE: usize = 20;
/// Message types every resource has: the resource, its labels map entry,
/// and six requests and responses.
pub const FIXED_TYPES_PER_RESOURCE: usize = 8;

/// Custom verbs, taken in turn.
const VERBS: &[&str] = &[
    "archive", "restore", "publish", "cancel", "undelete", "move", "export", "import",
];

/// One route of the synthetic API.
pub struct RouteShape {
    /// HTTP method (`GET`, `POST`, `PATCH`).
    pub method: &'static str,
    /// The google.api.http path template.
    pub template: String,
    /// The rule's `body`, if any.
    pub body: Option<&'static str>,
    /// The RPC's name.
    pub rpc: String,
    /// A request path the route answers.
    pub example: String,
}

/// The resource's parent pattern and an example of it.
fn parent(r: usize) -> (&'static str, &'static str) {
    match r % 3 {
        0 => ("projects/*/locations/*", "projects/p1/locations/l1"),
        1 => ("projects/*", "projects/p1"),
        _ => ("organizations/*/folders/*", "organizations/o1/folders/f1"),
    }
}

/// The custom verb of resource `r`.
pub fn verb(r: usize) -> &'static str {
    VERBS[r % VERBS.len()]
}

/// The five routes of resource `r`. The first resource of every file names
/// its objects with a trailing `**` (`.../things0/*/objects/**`, as Cloud
/// Storage does).
pub fn resource_routes(r: usize) -> [RouteShape; METHODS_PER_RESOURCE] {
    let (pat, ex) = parent(r);
    let coll = format!("things{r}");
    let (get_template, get_example) = if r.is_multiple_of(RESOURCES_PER_FILE) {
        (
            format!("/v1/{{name={pat}/{coll}/*/objects/**}}"),
            format!("/v1/{ex}/{coll}/t1/objects/a/b/c.txt"),
        )
    } else {
        (
            format!("/v1/{{name={pat}/{coll}/*}}"),
            format!("/v1/{ex}/{coll}/t1"),
        )
    };
    let v = verb(r);
    [
        RouteShape {
            method: "GET",
            template: get_template,
            body: None,
            rpc: format!("GetThing{r}"),
            example: get_example,
        },
        RouteShape {
            method: "GET",
            template: format!("/v1/{{parent={pat}}}/{coll}"),
            body: None,
            rpc: format!("ListThing{r}s"),
            example: format!("/v1/{ex}/{coll}"),
        },
        RouteShape {
            method: "POST",
            template: format!("/v1/{{parent={pat}}}/{coll}"),
            body: Some("thing"),
            rpc: format!("CreateThing{r}"),
            example: format!("/v1/{ex}/{coll}"),
        },
        RouteShape {
            method: "PATCH",
            template: format!("/v1/{{thing.name={pat}/{coll}/*}}"),
            body: Some("thing"),
            rpc: format!("UpdateThing{r}"),
            example: format!("/v1/{ex}/{coll}/t1"),
        },
        RouteShape {
            method: "POST",
            template: format!("/v1/{{name={pat}/{coll}/*}}:{v}"),
            body: Some("*"),
            rpc: format!("{}Thing{r}", capitalize(v)),
            example: format!("/v1/{ex}/{coll}/t1:{v}"),
        },
    ]
}

/// Every route of an API with `routes` routes (rounded up to whole
/// resources), in resource order.
pub fn routes(routes: usize) -> Vec<RouteShape> {
    (0..routes.div_ceil(METHODS_PER_RESOURCE))
        .flat_map(resource_routes)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The `.proto` files (name, text) of an API with about `routes` routes and
/// `types` message types (at least [`FIXED_TYPES_PER_RESOURCE`] per
/// resource). Files import `google/api/annotations.proto` and well-known
/// types, which protogate's built-in protos and protox provide.
pub fn protos(routes: usize, types: usize) -> Vec<(String, String)> {
    let resources = routes.div_ceil(METHODS_PER_RESOURCE).max(1);
    let per_resource = types.div_ceil(resources).max(FIXED_TYPES_PER_RESOURCE);
    let details = per_resource - FIXED_TYPES_PER_RESOURCE;
    let files = resources.div_ceil(RESOURCES_PER_FILE);
    (0..files)
        .map(|f| {
            let first = f * RESOURCES_PER_FILE;
            let last = (first + RESOURCES_PER_FILE).min(resources);
            let name = format!("scale/p{f}/v1/api.proto");
            (name, file(f, first..last, details))
        })
        .collect()
}

fn file(f: usize, resources: std::ops::Range<usize>, details: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "syntax = \"proto3\";\n\npackage scale.p{f}.v1;\n\n\
         import \"google/api/annotations.proto\";\n\
         import \"google/protobuf/timestamp.proto\";\n\
         import \"google/protobuf/field_mask.proto\";\n\n\
         service Service{f} {{"
    );
    for r in resources.clone() {
        for route in resource_routes(r) {
            let (req, resp) = messages_of(&route.rpc, r);
            let body = route
                .body
                .map(|b| format!(" body: \"{b}\""))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  rpc {}({req}) returns ({resp}) {{\n    option (google.api.http) = {{ {}: \"{}\"{body} }};\n  }}",
                route.rpc,
                route.method.to_lowercase(),
                route.template,
            );
        }
    }
    s.push_str("}\n");
    for r in resources {
        thing(&mut s, r, details);
    }
    s
}

/// Request and response types of an RPC of resource `r`.
fn messages_of(rpc: &str, r: usize) -> (String, String) {
    let thing = format!("Thing{r}");
    if rpc.starts_with("List") {
        (format!("{rpc}Request"), format!("{rpc}Response"))
    } else {
        (format!("{rpc}Request"), thing)
    }
}

fn thing(s: &mut String, r: usize, details: usize) {
    let _ = writeln!(
        s,
        "\nmessage Thing{r} {{\n\
         \x20 enum State {{ STATE_UNSPECIFIED = 0; ACTIVE = 1; ARCHIVED = 2; }}\n\
         \x20 string name = 1;\n\
         \x20 string display_name = 2;\n\
         \x20 State state = 3;\n\
         \x20 google.protobuf.Timestamp create_time = 4;\n\
         \x20 map<string, string> labels = 5;\n\
         \x20 repeated string tags = 6;\n\
         \x20 int64 size_bytes = 7;\n\
         \x20 double score = 8;\n\
         \x20 bool enabled = 9;"
    );
    if details > 0 {
        let _ = writeln!(s, "  Detail0 detail = 10;");
    }
    // A chain of nested messages, each holding the next.
    for d in 0..details {
        let next = if d + 1 < details {
            format!(" Detail{} next = 4;", d + 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  message Detail{d} {{ string note = 1; int32 count = 2; repeated int64 values = 3;{next} }}"
        );
    }
    s.push_str("}\n");
    let v = capitalize(verb(r));
    let _ = writeln!(
        s,
        "message GetThing{r}Request {{ string name = 1; }}\n\
         message ListThing{r}sRequest {{ string parent = 1; int32 page_size = 2; string page_token = 3; string filter = 4; }}\n\
         message ListThing{r}sResponse {{ repeated Thing{r} things = 1; string next_page_token = 2; }}\n\
         message CreateThing{r}Request {{ string parent = 1; string thing_id = 2; Thing{r} thing = 3; }}\n\
         message UpdateThing{r}Request {{ Thing{r} thing = 1; google.protobuf.FieldMask update_mask = 2; }}\n\
         message {v}Thing{r}Request {{ string name = 1; string etag = 2; }}"
    );
}

/// Writes [`protos`] under `dir` (which is created) and returns the files'
/// paths.
pub fn write_protos(
    dir: &std::path::Path,
    routes: usize,
    types: usize,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut paths = Vec::new();
    for (name, text) in protos(routes, types) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        paths.push(path);
    }
    Ok(paths)
}

/// The FileDescriptorSet of the `.proto` tree under `dir` (imports
/// included), compiled the way protogate compiles a directory.
pub fn descriptor_set(dir: &std::path::Path) -> Vec<u8> {
    let loaded = protogate::descriptors::load(&[dir.to_path_buf()])
        .unwrap_or_else(|e| panic!("compiling {}: {e}", dir.display()));
    loaded.pool.encode_to_vec()
}
