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
fn double_wildcard_matches_zero_segments_and_literals_after_it() {
    let m = matcher(&[("GET", "/v1/{parent=**}/books"), ("GET", "/x/{rest=**}")]);
    assert_eq!(hit(&m, "GET", "/v1/a/b/books"), (0, vec!["a/b".into()]));
    assert_eq!(hit(&m, "GET", "/v1/books"), (0, vec!["".into()]));
    assert_eq!(
        hit(&m, "GET", "/v1/a/books/books"),
        (0, vec!["a/books".into()])
    );
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
