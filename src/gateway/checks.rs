//! Load-time checks of routes.yaml against the descriptors (allow-lists,
//! service names, timeout selectors) and the forwarded header set.

use super::*;

/// A `services:` glob that matches nothing is most likely a typo.
pub(super) fn check_allow_list(
    pool: &DescriptorPool,
    served: &descriptors::ServiceFilter,
    errors: &mut Vec<RuleError>,
) {
    for pattern in served.patterns() {
        let one = descriptors::ServiceFilter::new([pattern.as_str()]);
        if !pool.services().any(|s| one.allows(&s)) {
            errors.push(RuleError {
                rule: format!("descriptors.services {pattern}"),
                message: "matches no service in the descriptors".into(),
            });
        }
    }
}

pub(super) fn check_services(
    pool: &DescriptorPool,
    section: &str,
    services: &[String],
    errors: &mut Vec<RuleError>,
) {
    for s in services {
        if pool.get_service_by_name(s).is_none() {
            errors.push(RuleError {
                rule: section.to_string(),
                message: format!("service {s} is not in the descriptors"),
            });
        }
    }
}

pub(super) fn check_timeout_selectors(
    pool: &DescriptorPool,
    config: &Config,
    errors: &mut Vec<RuleError>,
) {
    let methods: BTreeSet<String> = pool
        .services()
        .flat_map(|s| {
            s.methods()
                .map(|m| m.full_name().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for sel in config.timeouts.keys() {
        let ok = sel == "*"
            || methods.contains(sel)
            || sel
                .strip_suffix(".*")
                .is_some_and(|s| pool.get_service_by_name(s).is_some());
        if !ok {
            errors.push(RuleError {
                rule: format!("timeouts.{sel}"),
                message: "selector names no method or service in the descriptors".into(),
            });
        }
    }
}

pub(super) fn forwarded_headers(
    config: &Config,
    errors: &mut Vec<RuleError>,
) -> HashSet<HeaderName> {
    let mut out = HashSet::new();
    for h in DEFAULT_FORWARDED_HEADERS
        .iter()
        .copied()
        .chain(config.headers.forward.iter().map(String::as_str))
    {
        match HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) {
            Ok(n) => {
                out.insert(n);
            }
            Err(_) => errors.push(RuleError {
                rule: "headers.forward".into(),
                message: format!("{h:?} is not a valid header name"),
            }),
        }
    }
    out
}
