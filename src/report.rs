//! Human-readable output for the `routes` and `check` commands.
//!
//! A rule that cannot be served is skipped (not served) unless the load is
//! strict: `routes` lists the skipped rules after the table, `check` lists
//! them as problems.

use std::fmt::Write;

use crate::gateway::{Gateway, LoadError};

/// The route table: HTTP method, template, gRPC method, body, response body, source.
pub fn route_table(gw: &Gateway) -> String {
    let header = [
        "METHOD",
        "TEMPLATE",
        "GRPC METHOD",
        "BODY",
        "RESPONSE BODY",
        "SOURCE",
    ];
    let rows: Vec<[String; 6]> = gw
        .routes()
        .iter()
        .map(|r| {
            [
                r.http_method.to_string(),
                r.template.to_string(),
                r.method.full_name().to_string(),
                or_dash(&r.body_str()),
                or_dash(r.response_body.as_ref().map(|f| f.name()).unwrap_or("")),
                r.source.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out.push_str(&skipped(gw));
    out
}

/// The skipped rules, after a blank line; empty when there are none.
fn skipped(gw: &Gateway) -> String {
    if gw.skipped().is_empty() {
        return String::new();
    }
    let mut out = format!("\nSKIPPED ({}, not served):\n", gw.skipped().len());
    for s in gw.skipped() {
        let _ = writeln!(out, "  - {s}");
    }
    out
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

/// `check`'s success line.
pub fn summary(gw: &Gateway) -> String {
    let mut services: Vec<&str> = gw
        .routes()
        .iter()
        .map(|r| r.method.parent_service().full_name())
        .collect();
    services.sort_unstable();
    services.dedup();
    format!(
        "ok: {} routes for {} services ({})",
        gw.routes().len(),
        services.len(),
        services.join(", ")
    )
}

/// `check`'s failure report: one problem per line.
pub fn problems(e: &LoadError) -> String {
    listed(&problem_lines(e))
}

/// `check`'s report when the gateway loads but skips rules: each is a
/// problem (`serve` would run without them; `--strict` would refuse).
pub fn skipped_problems(gw: &Gateway) -> Option<String> {
    let lines: Vec<String> = gw.skipped().iter().map(ToString::to_string).collect();
    (!lines.is_empty()).then(|| listed(&lines))
}

fn listed(lines: &[String]) -> String {
    let mut out = format!("{} problem(s):\n", lines.len());
    for p in lines {
        let _ = writeln!(out, "  - {p}");
    }
    out.trim_end().to_string()
}

/// Every problem of a failed load, one per entry (as `check` lists them).
pub fn problem_lines(e: &LoadError) -> Vec<String> {
    match e {
        LoadError::Rules(list) => list.iter().map(ToString::to_string).collect(),
        other => other.to_string().lines().map(str::to_string).collect(),
    }
}
