//! `/docs`: a human API reference page (Swagger UI) for the serving
//! snapshot's `/openapi.json`. Its assets are vendored in `assets/swagger-ui/`
//! and embedded in the binary: no CDN at run time, no download at build
//! time. A route of the API at the same path wins.

use axum::body::Body;
use http::{HeaderValue, Method, Response, header};

use crate::gateway::Gateway;

// Swagger UI 5.35.0 (swagger-ui-dist), as vendored: see assets/swagger-ui/README.md.
const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// The page: Swagger UI pointed at the document; no online validator
/// badge (it would call validator.swagger.io).
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
</script>
</body>
</html>
"##;

/// The page or one of its assets, when the request asks for it (GET or HEAD,
/// no route of the API at that path); `None` otherwise.
pub(super) fn answer(gw: &Gateway, method: &Method, path: &str) -> Option<Response<Body>> {
    let (body, content_type): (&'static [u8], &str) = match path {
        "/docs" | "/docs/" => (PAGE.as_bytes(), "text/html; charset=utf-8"),
        "/docs/swagger-ui-bundle.js" => (BUNDLE, "text/javascript; charset=utf-8"),
        "/docs/swagger-ui.css" => (CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    if (method != Method::GET && method != Method::HEAD)
        || gw.table.matcher.find(method, path).is_ok()
    {
        return None;
    }
    let len = body.len();
    let body = match *method == Method::HEAD {
        true => Body::empty(),
        false => Body::from(body),
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Some(resp)
}
