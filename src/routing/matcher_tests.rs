//! The matcher's unit tests: precedence, verbs, HEAD, methods.

use super::*;

fn matcher(routes: &[(&str, &str)]) -> Matcher {
    let mut m = Matcher::new();
    for (i, (method, t)) in routes.iter().enumerate() {
        let filter = if *method == "*" {
            MethodFilter::Any
        } else {
            MethodFilter::Exact(method.parse().unwrap())
        };
        m.insert(filter, &PathTemplate::parse(t).unwrap(), i)
            .unwrap();
    }
    m
}

fn hit(m: &Matcher, method: &str, path: &str) -> (usize, Vec<String>) {
    let r = m.find(&method.parse().unwrap(), path).unwrap();
    (r.route, r.bindings)
}

#[test]
fn literal_beats_single_beats_multi() {
    let m = matcher(&[
        ("GET", "/v1/{path=**}"),
        ("GET", "/v1/{name=shelves/*}"),
        ("GET", "/v1/shelves/special"),
    ]);
    assert_eq!(hit(&m, "GET", "/v1/shelves/special").0, 2);
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/other"),
        (1, vec!["shelves/other".into()])
    );
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/a/b"),
        (0, vec!["shelves/a/b".into()])
    );
    assert_eq!(hit(&m, "GET", "/v1/anything"), (0, vec!["anything".into()]));
}

#[test]
fn backtracks_to_less_specific_template_for_the_method() {
    let m = matcher(&[("GET", "/v1/shelves/{id}"), ("POST", "/v1/shelves/special")]);
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/special"),
        (0, vec!["special".into()])
    );
    assert_eq!(hit(&m, "POST", "/v1/shelves/special").0, 1);
}

#[test]
fn method_not_allowed_lists_methods() {
    let m = matcher(&[
        ("GET", "/v1/{name=shelves/*}"),
        ("DELETE", "/v1/{name=shelves/*}"),
        ("POST", "/v1/shelves"),
    ]);
    assert_eq!(
        m.find(&Method::PUT, "/v1/shelves/1"),
        Err(MatchError::MethodNotAllowed(vec![
            "DELETE".into(),
            "GET".into(),
            "HEAD".into()
        ]))
    );
    assert_eq!(m.find(&Method::GET, "/v2/x"), Err(MatchError::NotFound));
    assert_eq!(
        m.find(&Method::GET, "v1/shelves"),
        Err(MatchError::NotFound)
    );
}

#[test]
fn any_method_custom_rule() {
    let m = matcher(&[("*", "/v1/echo/{x}")]);
    assert_eq!(hit(&m, "OPTIONS", "/v1/echo/1").0, 0);
    assert_eq!(hit(&m, "SEARCH", "/v1/echo/1").0, 0);
}

#[test]
fn verbs_are_split_only_when_declared() {
    let m = matcher(&[
        ("POST", "/v1/{name=shelves/*/books/*}:move"),
        ("GET", "/v1/{name=shelves/*/books/*}"),
    ]);
    assert_eq!(
        hit(&m, "POST", "/v1/shelves/1/books/2:move"),
        (0, vec!["shelves/1/books/2".into()])
    );
    // An undeclared verb stays part of the segment: ids may hold colons.
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/1/books/2:copy"),
        (1, vec!["shelves/1/books/2:copy".into()])
    );
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/1/books/a:move:b"),
        (1, vec!["shelves/1/books/a:move:b".into()])
    );
    // Only the last segment carries a verb.
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/1:move/books/2"),
        (1, vec!["shelves/1:move/books/2".into()])
    );
}

#[test]
fn a_declared_verb_never_reaches_a_route_without_it() {
    let m = matcher(&[
        ("POST", "/v1/{name=shelves/*/books/*}:move"),
        ("GET", "/v1/{name=shelves/*/books/*}"),
        ("DELETE", "/v1/{name=shelves/*/books/*}"),
    ]);
    for method in [Method::GET, Method::DELETE, Method::PUT, Method::HEAD] {
        assert_eq!(
            m.find(&method, "/v1/shelves/1/books/2:move"),
            Err(MatchError::MethodNotAllowed(vec!["POST".into()])),
            "{method}"
        );
    }
    // A path that only a verb-less template matches is not found.
    assert_eq!(
        m.find(&Method::POST, "/v1/shelves/1:move"),
        Err(MatchError::NotFound)
    );
    // Nothing before the verb is an empty segment.
    assert_eq!(
        m.find(&Method::POST, "/v1/shelves/1/books/:move"),
        Err(MatchError::NotFound)
    );
}

#[test]
fn the_declared_verb_suffix_is_split_and_the_rest_binds() {
    let m = matcher(&[
        ("POST", "/v1/{name=shelves/*/books/*}:move"),
        ("GET", "/v1/{name=shelves/*/books/*}"),
    ]);
    // `a:b` is an id, `move` the verb.
    assert_eq!(
        hit(&m, "POST", "/v1/shelves/1/books/a:b:move"),
        (0, vec!["shelves/1/books/a:b".into()])
    );
    // An encoded colon is data, never a verb.
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/1/books/2%3Amove"),
        (1, vec!["shelves/1/books/2%3Amove".into()])
    );
}

#[test]
fn verbs_after_double_wildcards_and_single_variables() {
    let m = matcher(&[
        ("POST", "/v1/{name=**}:undelete"),
        ("GET", "/v1/{name=**}"),
        ("POST", "/v2/books/{id}:publish"),
        ("GET", "/v2/books/{id}"),
    ]);
    assert_eq!(hit(&m, "POST", "/v1/a/b:undelete"), (0, vec!["a/b".into()]));
    assert_eq!(hit(&m, "GET", "/v1/a/b:x"), (1, vec!["a/b:x".into()]));
    assert_eq!(
        m.find(&Method::GET, "/v1/a/b:undelete"),
        Err(MatchError::MethodNotAllowed(vec!["POST".into()]))
    );
    assert_eq!(
        hit(&m, "POST", "/v2/books/7:publish"),
        (2, vec!["7".into()])
    );
    assert_eq!(hit(&m, "GET", "/v2/books/7:x"), (3, vec!["7:x".into()]));
    // A verb of another template is a verb here too.
    assert_eq!(
        m.find(&Method::GET, "/v2/books/7:undelete"),
        Err(MatchError::NotFound)
    );
}

#[test]
fn verb_templates_keep_segment_precedence() {
    let m = matcher(&[
        ("POST", "/v1/shelves/{id}:archive"),
        ("POST", "/v1/shelves/special:archive"),
        ("GET", "/v1/shelves/{id}:check"),
        ("DELETE", "/v1/shelves/special:check"),
    ]);
    assert_eq!(hit(&m, "POST", "/v1/shelves/special:archive").0, 1);
    assert_eq!(
        hit(&m, "POST", "/v1/shelves/other:archive"),
        (0, vec!["other".into()])
    );
    // Backtracking stays within the verb.
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/special:check"),
        (2, vec!["special".into()])
    );
    assert_eq!(
        m.find(&Method::PUT, "/v1/shelves/special:check"),
        Err(MatchError::MethodNotAllowed(vec![
            "DELETE".into(),
            "GET".into(),
            "HEAD".into()
        ]))
    );
}

#[test]
fn head_is_served_by_the_get_route() {
    let m = matcher(&[
        ("GET", "/v1/{name=shelves/*}"),
        ("POST", "/v1/shelves"),
        ("HEAD", "/v1/books/{id}"),
        ("GET", "/v1/books/{id}"),
        ("*", "/v1/{rest=**}"),
        ("GET", "/v1/authors/{id}"),
    ]);
    assert_eq!(
        hit(&m, "HEAD", "/v1/shelves/1"),
        (0, vec!["shelves/1".into()])
    );
    // A route for HEAD itself wins over the GET route.
    assert_eq!(hit(&m, "HEAD", "/v1/books/1").0, 2);
    // The more specific GET template wins over a less specific any-method one.
    assert_eq!(hit(&m, "HEAD", "/v1/authors/1").0, 5);
    assert_eq!(hit(&m, "HEAD", "/v1/x/y").0, 4);
}

#[test]
fn head_without_a_get_route_is_refused_as_before() {
    let m = matcher(&[("POST", "/v1/shelves"), ("GET", "/v1/{name=shelves/*}")]);
    assert_eq!(
        m.find(&Method::HEAD, "/v1/shelves"),
        Err(MatchError::MethodNotAllowed(vec!["POST".into()]))
    );
    assert_eq!(m.find(&Method::HEAD, "/v2/x"), Err(MatchError::NotFound));
    // Where GET is allowed, so is HEAD.
    assert_eq!(
        m.find(&Method::DELETE, "/v1/shelves/1"),
        Err(MatchError::MethodNotAllowed(vec![
            "GET".into(),
            "HEAD".into()
        ]))
    );
}

#[test]
fn single_segment_variables_are_fully_decoded() {
    let m = matcher(&[("GET", "/v1/books/{id}")]);
    assert_eq!(hit(&m, "GET", "/v1/books/a%2Fb%20c").1, vec!["a/b c"]);
    assert_eq!(hit(&m, "GET", "/v1/books/caf%C3%A9").1, vec!["café"]);
    assert_eq!(
        m.find(&Method::GET, "/v1/books/%FF"),
        Err(MatchError::BadEncoding { field: "id".into() })
    );
}

#[test]
fn multi_segment_variables_keep_reserved_characters_encoded() {
    let m = matcher(&[("GET", "/v1/{name=shelves/*}"), ("GET", "/files/{path=**}")]);
    assert_eq!(
        hit(&m, "GET", "/v1/shelves/a%2Fb%20c").1,
        vec!["shelves/a%2Fb c"]
    );
    assert_eq!(hit(&m, "GET", "/files/a/b%3Fc/d%41").1, vec!["a/b%3Fc/dA"]);
}

#[test]
fn literals_compare_decoded() {
    let m = matcher(&[("GET", "/v1/shelves")]);
    assert_eq!(hit(&m, "GET", "/%761/shelves").0, 0);
}

#[test]
fn double_wildcard_before_literals_takes_at_least_one_segment() {
    let m = matcher(&[("GET", "/v1/{parent=**}/books"), ("GET", "/x/{rest=**}")]);
    assert_eq!(hit(&m, "GET", "/v1/a/b/books"), (0, vec!["a/b".into()]));
    assert_eq!(
        hit(&m, "GET", "/v1/a/books/books"),
        (0, vec!["a/books".into()])
    );
    // As in Envoy: mid-template, `**` matches one segment or more…
    assert_eq!(m.find(&Method::GET, "/v1/books"), Err(MatchError::NotFound));
    // …and at the end of a template, nothing too.
    assert_eq!(hit(&m, "GET", "/x"), (1, vec!["".into()]));
    assert_eq!(m.find(&Method::GET, "/v1/a/b"), Err(MatchError::NotFound));
}

#[test]
fn several_variables_and_nested_fields() {
    let m = matcher(&[("PATCH", "/v1/shelves/{shelf}/books/{book.id}")]);
    assert_eq!(
        hit(&m, "PATCH", "/v1/shelves/s1/books/b2").1,
        vec!["s1".to_string(), "b2".to_string()]
    );
}

#[test]
fn trailing_slash_and_empty_segments_do_not_match() {
    let m = matcher(&[("GET", "/v1/shelves/{id}")]);
    assert_eq!(
        m.find(&Method::GET, "/v1/shelves/"),
        Err(MatchError::NotFound)
    );
    assert_eq!(
        m.find(&Method::GET, "/v1/shelves/1/"),
        Err(MatchError::NotFound)
    );
}

#[test]
fn conflicting_templates_are_rejected() {
    let mut m = matcher(&[("GET", "/v1/{name=shelves/*}")]);
    let dup = PathTemplate::parse("/v1/shelves/{other}").unwrap();
    assert_eq!(m.insert(MethodFilter::Exact(Method::GET), &dup, 9), Err(0));
    assert_eq!(m.insert(MethodFilter::Any, &dup, 9), Err(0));
    assert!(m.insert(MethodFilter::Exact(Method::POST), &dup, 9).is_ok());
}

// The cases below port the facts of Envoy's path matcher tests
// (grpc-httpjson-transcoding test/path_matcher_test.cc).

/// The route a path reaches, by the template's index, or None.
fn route_of(m: &Matcher, path: &str) -> Option<usize> {
    m.find(&Method::GET, path).ok().map(|r| r.route)
}

fn gets(templates: &[&str]) -> Matcher {
    let routes: Vec<(&str, &str)> = templates.iter().map(|t| ("GET", *t)).collect();
    matcher(&routes)
}

#[test]
fn envoy_wildcard_matches_root_and_empty_segments() {
    let m = gets(&["/**"]);
    for path in ["/", "/a", "/a/", "//", "/a//b"] {
        assert_eq!(route_of(&m, path), Some(0), "{path}");
    }
    assert_eq!(hit(&m, "GET", "/").1, Vec::<String>::new());
    let m = gets(&["/{rest=**}"]);
    assert_eq!(hit(&m, "GET", "/"), (0, vec!["".into()]));
    assert_eq!(hit(&m, "GET", "/a//b/"), (0, vec!["a//b/".into()]));
}

#[test]
fn envoy_wildcard_matches() {
    let m = gets(&["/a/**", "/b/*", "/c/*/d/**", "/c/*/d/e", "/c/f/d/e", "/"]);
    assert_eq!(route_of(&m, "/a/b"), Some(0));
    assert_eq!(route_of(&m, "/a/b/c"), Some(0));
    assert_eq!(route_of(&m, "/b/c"), Some(1));
    assert_eq!(route_of(&m, "b/c/d"), None);
    assert_eq!(route_of(&m, "/c/u/d/v"), Some(2));
    assert_eq!(route_of(&m, "/c/v/d/w/x"), Some(2));
    assert_eq!(route_of(&m, "/c/x/y/d/z"), None);
    assert_eq!(route_of(&m, "/c//v/d/w/x"), None);
    // More specific beats `**`, and `*`.
    assert_eq!(route_of(&m, "/c/x/d/e"), Some(3));
    assert_eq!(route_of(&m, "/c/f/d/e"), Some(4));
    assert_eq!(route_of(&m, "/"), Some(5));
}

#[test]
fn envoy_variable_bindings() {
    let m = gets(&[
        "/a/{x}/c/d/e",
        "/{x=a/*}/b/{y=*}/c",
        "/a/{x=b/*}/{y=d/**}",
        "/alpha/{x=*}/beta/{y=**}/gamma",
        "/{x=*}/a",
        "/{x=**}/a/b",
        "/a/b/{x=*}",
        "/a/b/c/{x=**}",
        "/{x=*}/d/e/f/{y=**}",
    ]);
    let cases: [(&str, usize, &[&str]); 9] = [
        ("/a/book/c/d/e", 0, &["book"]),
        ("/a/hello/b/world/c", 1, &["a/hello", "world"]),
        ("/a/b/zoo/d/animal/tiger", 2, &["b/zoo", "d/animal/tiger"]),
        ("/alpha/dog/beta/eat/bones/gamma", 3, &["dog", "eat/bones"]),
        ("/foo/a", 4, &["foo"]),
        ("/foo/bar/a/b", 5, &["foo/bar"]),
        ("/a/b/foo", 6, &["foo"]),
        ("/a/b/c/foo/bar/baz", 7, &["foo/bar/baz"]),
        ("/foo/d/e/f/bar/baz", 8, &["foo", "bar/baz"]),
    ];
    for (path, route, bindings) in cases {
        assert_eq!(hit(&m, "GET", path), (route, strings(bindings)), "{path}");
    }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn envoy_constant_suffixes_after_double_wildcard() {
    let m = gets(&[
        "/a/{x=b/**}",
        "/a/{x=b/**}/z",
        "/a/{x=b/**}/y/z",
        "/a/{x=b/**}:verb",
        "/a/{x=**}",
        "/c/{x=*}/{y=d/**}/e",
        "/c/{x=*}/{y=d/**}/e:verb",
        "/f/{x=*}/{y=**}/g",
        "/f/{x=*}/{y=**}/g:verb",
        "/a/{x=b/*/y/z/**}/foo",
        "/a/{x=b/*/**/y/z}/foo",
    ]);
    let cases: [(&str, usize, &[&str]); 11] = [
        ("/a/b/hello/world/c", 0, &["b/hello/world/c"]),
        ("/a/b/world/c/z", 1, &["b/world/c"]),
        ("/a/b/world/c/y/z", 2, &["b/world/c"]),
        ("/a/b/world/c:verb", 3, &["b/world/c"]),
        ("/a/hello/b/world/c", 4, &["hello/b/world/c"]),
        ("/c/hello/d/esp/world/e", 5, &["hello", "d/esp/world"]),
        ("/c/hola/d/esp/mundo/e:verb", 6, &["hola", "d/esp/mundo"]),
        ("/f/foo/bar/baz/g", 7, &["foo", "bar/baz"]),
        ("/f/foo/bar/baz/g:verb", 8, &["foo", "bar/baz"]),
        ("/a/b/foo/y/z/bar/baz/foo", 9, &["b/foo/y/z/bar/baz"]),
        ("/a/b/foo/bar/baz/y/z/foo", 10, &["b/foo/bar/baz/y/z"]),
    ];
    for (path, route, bindings) in cases {
        assert_eq!(hit(&m, "GET", path), (route, strings(bindings)), "{path}");
    }
}

#[test]
fn double_wildcard_takes_the_shortest_run_before_a_suffix() {
    // Envoy tries the suffix after each segment `**` takes, shortest first.
    let m = gets(&["/a/**/c", "/a/**/b/c", "/a/**"]);
    assert_eq!(route_of(&m, "/a/x/b/c"), Some(1));
    assert_eq!(route_of(&m, "/a/x/c"), Some(0));
    assert_eq!(route_of(&m, "/a/x/b/c/d"), Some(2));
    assert_eq!(route_of(&m, "/a/c"), Some(2));
}

#[test]
fn envoy_custom_verb_issue() {
    let m = gets(&["/person", "/person/{id=*}", "/{x=**}:verb"]);
    assert_eq!(hit(&m, "GET", "/person:verb"), (2, strings(&["person"])));
    assert_eq!(
        hit(&m, "GET", "/person/jason:verb"),
        (2, strings(&["person/jason"]))
    );
    assert_eq!(
        hit(&m, "GET", "/animal/cat:verb"),
        (2, strings(&["animal/cat"]))
    );
    assert_eq!(route_of(&m, "/person"), Some(0));
    assert_eq!(route_of(&m, "/person/jason"), Some(1));
    assert_eq!(route_of(&m, "/animal"), None);
    assert_eq!(route_of(&m, "/person:other"), None);
    assert_eq!(
        hit(&m, "GET", "/person/jason:other"),
        (1, strings(&["jason:other"]))
    );
    assert_eq!(route_of(&m, "/animal/cat:other"), None);
}

#[test]
fn envoy_custom_verb_matches() {
    let m = gets(&[
        "/some/const:verb",
        "/some/*:verb",
        "/some/*/foo:verb",
        "/other/**:verb",
        "/other/**/const:verb",
    ]);
    assert_eq!(route_of(&m, "/some/const:verb"), Some(0));
    assert_eq!(route_of(&m, "/some/other:verb"), Some(1));
    assert_eq!(route_of(&m, "/some/other:verb/"), None);
    assert_eq!(route_of(&m, "/some/bar/foo:verb"), Some(2));
    assert_eq!(route_of(&m, "/some/foo1/foo2/foo:verb"), None);
    assert_eq!(route_of(&m, "/some/foo/bar:verb"), None);
    assert_eq!(route_of(&m, "/other/bar/foo:verb"), Some(3));
    assert_eq!(route_of(&m, "/other/bar/foo/const:verb"), Some(4));
}

#[test]
fn envoy_verbs_split_only_the_last_segment() {
    let m = gets(&["/{a=*}/{b=*}:verb"]);
    assert_eq!(
        hit(&m, "GET", "/some:verb/const:verb"),
        (0, strings(&["some:verb", "const"]))
    );
    let m = gets(&["/{a=**}:verb", "/{a=**}"]);
    assert_eq!(
        hit(&m, "GET", "/some:verb/const:verb"),
        (0, strings(&["some:verb/const"]))
    );
    assert_eq!(
        hit(&m, "GET", "/some:verb/const"),
        (1, strings(&["some:verb/const"]))
    );
    assert_eq!(
        hit(&m, "GET", "/some:verb2/const:verb2"),
        (1, strings(&["some:verb2/const:verb2"]))
    );
    let m = gets(&["/foo/*/hello"]);
    assert_eq!(route_of(&m, "/foo/other:verb/hello"), Some(0));
}

#[test]
fn envoy_rejects_partial_and_overspecified_paths() {
    let m = gets(&["/prefix/middle/suffix", "/prefix/middle", "/prefix"]);
    assert_eq!(route_of(&m, "/prefix/middle/suffix"), Some(0));
    assert_eq!(route_of(&m, "/prefix/middle"), Some(1));
    assert_eq!(route_of(&m, "/prefix"), Some(2));
    for path in [
        "/prefix/middle/suffix/other",
        "/prefix/middle/other",
        "/prefix/other",
        "/other",
        "/",
    ] {
        assert_eq!(route_of(&m, path), None, "{path}");
    }
}

#[test]
fn envoy_many_segments_do_not_overflow_the_stack() {
    let m = gets(&["/a/**/x"]);
    let slashes = "/".repeat(64_000);
    assert_eq!(route_of(&m, &format!("/a/{slashes}/x")), Some(0));
    assert_eq!(route_of(&m, &format!("/a/{slashes}/y")), None);
}

#[test]
fn the_root_template_matches_only_the_root() {
    let m = gets(&["/", "/v1/{name}"]);
    assert_eq!(hit(&m, "GET", "/"), (0, vec![]));
    assert_eq!(route_of(&m, "//"), None);
    assert_eq!(route_of(&m, "/v1/x"), Some(1));
}

#[test]
fn single_segments_after_double_wildcard() {
    // Firestore's ListDocuments and its neighbours.
    let m = gets(&[
        "/v1/{parent=projects/*/databases/*/documents}/{collection_id}",
        "/v1/{parent=projects/*/databases/*/documents/*/**}/{collection_id}",
        "/v1/{name=projects/*/databases/*/documents/*/**}",
    ]);
    assert_eq!(
        hit(&m, "GET", "/v1/projects/p/databases/d/documents/users"),
        (0, strings(&["projects/p/databases/d/documents", "users"]))
    );
    assert_eq!(
        hit(
            &m,
            "GET",
            "/v1/projects/p/databases/d/documents/users/u1/posts"
        ),
        (
            1,
            strings(&["projects/p/databases/d/documents/users/u1", "posts"])
        )
    );
    assert_eq!(
        hit(
            &m,
            "GET",
            "/v1/projects/p/databases/d/documents/users/u1/a/b/posts"
        ),
        (
            1,
            strings(&["projects/p/databases/d/documents/users/u1/a/b", "posts"])
        )
    );
    // The `*` after `**` needs a segment of its own: with one segment after
    // `documents/*`, the template ending in `**` answers (GetDocument).
    assert_eq!(
        hit(&m, "GET", "/v1/projects/p/databases/d/documents/users/u1"),
        (2, strings(&["projects/p/databases/d/documents/users/u1"]))
    );
    // A variable that starts with `**`.
    let m = gets(&["/v2/{name=**/botSessions/*}"]);
    assert_eq!(
        hit(&m, "GET", "/v2/projects/p/bots/b/botSessions/s1"),
        (0, strings(&["projects/p/bots/b/botSessions/s1"]))
    );
    assert_eq!(route_of(&m, "/v2/botSessions/s1"), None);
    assert_eq!(route_of(&m, "/v2/a/botSessions"), None);
}

#[test]
fn a_verb_holding_a_colon() {
    let m = gets(&[
        "/v1/example/{uuid}:custom:custom",
        "/v1/example/{uuid}:custom",
        "/v1/example/{uuid}",
    ]);
    assert_eq!(
        hit(&m, "GET", "/v1/example/u1:custom:custom"),
        (0, strings(&["u1"]))
    );
    assert_eq!(
        hit(&m, "GET", "/v1/example/u1:custom"),
        (1, strings(&["u1"]))
    );
    assert_eq!(hit(&m, "GET", "/v1/example/u1"), (2, strings(&["u1"])));
}

#[test]
fn long_paths_bind_whole_past_the_inline_segments() {
    let m = matcher(&[("GET", "/v1/{name=files/**}:read")]);
    let deep = (0..20)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/");
    assert_eq!(
        hit(&m, "GET", &format!("/v1/files/{deep}:read")),
        (0, vec![format!("files/{deep}")])
    );
}
