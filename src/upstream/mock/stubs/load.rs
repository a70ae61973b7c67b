//! Loading a stub directory: each stub parsed, resolved against the
//! descriptors and compiled (conditions, templates, latency), every problem
//! collected with its file and stub.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use minijinja::Environment;
use prost_reflect::{DescriptorPool, MethodDescriptor};
use serde_json::Value;

use super::super::faults::Fault;
use super::cond::{FieldCond, HeaderCond};
use super::render::Compiler;
use super::scenario::ScenarioRule;
use super::{Answer, Latency, Stub, StubError, StubSet, normalize_route, source};

/// What compiling a stub needs.
pub(super) struct Ctx<'a> {
    pub pool: &'a DescriptorPool,
    pub routes: &'a HashMap<String, MethodDescriptor>,
}

fn find_method(pool: &DescriptorPool, name: &str) -> Option<MethodDescriptor> {
    // Also accept the gRPC path form, `/pkg.Service/Method`.
    let name = name.trim().trim_start_matches('/').replace('/', ".");
    let (service, method) = name.rsplit_once('.')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

pub(super) fn build_set(dir: &Path, cx: &Ctx<'_>) -> Result<StubSet, StubError> {
    let files = source::discover(dir).map_err(StubError)?;
    let mut set = StubSet::empty();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for path in files {
        let file = match source::read(dir, &path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(one_line(&e));
                continue;
            }
        };
        for (i, value) in file.stubs.iter().enumerate() {
            let id = match value.get("id") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => format!("{}#{i}", file.name),
            };
            let named = |e: String| format!("{}: stub {id}: {}", file.path.display(), one_line(&e));
            if let Some(first) = seen.get(&id) {
                errors.push(named(format!("duplicate id (first used in {first})")));
                continue;
            }
            seen.insert(id.clone(), file.path.display().to_string());
            match compile(cx, &mut set.env, &file.name, &id, value) {
                Ok(stub) => set.stubs.push(stub),
                Err(e) => errors.push(named(e)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(StubError(errors.join("\n")));
    }
    for (i, stub) in set.stubs.iter().enumerate() {
        set.by_method
            .entry(stub.method.full_name().to_string())
            .or_default()
            .push(i);
    }
    for list in set.by_method.values_mut() {
        // Stable: equal priorities keep file order.
        list.sort_by_key(|&i| std::cmp::Reverse(set.stubs[i].priority));
    }
    Ok(set)
}

/// Multi-line messages (regex errors draw a caret) as one line, so a
/// report holds one problem per line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn compile(
    cx: &Ctx<'_>,
    env: &mut Environment<'static>,
    file: &str,
    id: &str,
    value: &Value,
) -> Result<Stub, String> {
    let raw = source::parse(value)?;
    if raw.id.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return Err("id must not be empty".into());
    }
    let route = raw.route.as_deref().map(normalize_route);
    let route_method = match &route {
        Some(r) => Some(cx.routes.get(r).cloned().ok_or_else(|| {
            format!("route `{r}` is not in the route table (`protogate routes` lists them)")
        })?),
        None => None,
    };
    let method = match (&raw.method, route_method) {
        (Some(m), rm) => {
            let md = find_method(cx.pool, m)
                .ok_or_else(|| format!("method `{m}` is not in the descriptors"))?;
            if let Some(rm) = rm
                && rm.full_name() != md.full_name()
            {
                return Err(format!(
                    "route `{}` belongs to {}, not {m}",
                    route.as_deref().unwrap_or_default(),
                    rm.full_name()
                ));
            }
            md
        }
        (None, Some(rm)) => rm,
        (None, None) => return Err("needs `method` or `route`".into()),
    };
    if raw.times == Some(0) {
        return Err("times must be at least 1".into());
    }
    let scenario = scenario(&raw)?;
    let input = method.input();
    let request = raw
        .matches
        .request
        .iter()
        .map(|(path, spec)| FieldCond::compile(&input, path, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let headers = raw
        .matches
        .headers
        .iter()
        .map(|(name, spec)| HeaderCond::compile(name, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let latency = latency(raw.response.latency.as_ref())?;
    let fill = raw.response.fill.unwrap_or(true);

    let r = raw.response;
    let fault = match &r.fault {
        Some(v) => {
            let f: Fault =
                serde_json::from_value(v.clone()).map_err(|e| format!("response.fault: {e}"))?;
            if !f.methods.is_empty() {
                return Err("response.fault.methods: only global faults (mock.faults) name methods; a stub's fault applies to its calls".into());
            }
            Some(std::sync::Arc::new(f))
        }
        None => None,
    };
    let given = [r.message.is_some(), r.error.is_some(), r.stream.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err("response needs exactly one of `message`, `error` or `stream`".into());
    }
    let output = method.output();
    let mut c = Compiler {
        env,
        pool: cx.pool,
        prefix: format!("{file}:{id}"),
    };
    let answer = if let Some(m) = &r.message {
        Answer::Message(c.message(m, &output, "response.message")?)
    } else if let Some(e) = r.error {
        Answer::Error {
            code: source::code(&e.code).map_err(|e| format!("response.error.code: {e}"))?,
            message: c.text(&e.message, "response.error.message")?,
            details: e
                .details
                .iter()
                .enumerate()
                .map(|(i, d)| c.detail(d, &format!("response.error.details[{i}]")))
                .collect::<Result<_, _>>()?,
        }
    } else {
        if !method.is_server_streaming() {
            return Err(format!(
                "response.stream needs a server-streaming method; {} returns a single message",
                method.full_name()
            ));
        }
        let items = r.stream.unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("response.stream[{i}]");
            let delay = match &item.delay {
                Some(d) => source::duration(d, &format!("{at}.delay"))?,
                None => Duration::ZERO,
            };
            out.push((
                delay,
                c.message(&item.message, &output, &format!("{at}.message"))?,
            ));
        }
        Answer::Stream(out)
    };
    Ok(Stub {
        id: id.to_string(),
        file: file.to_string(),
        method,
        route,
        priority: raw.priority,
        times: raw.times,
        remaining: AtomicU32::new(raw.times.unwrap_or(0)),
        request,
        headers,
        latency,
        fill,
        answer,
        fault,
        scenario,
        source: value.clone(),
    })
}

/// `scenario`, `required_state` and `new_state`: states need a scenario.
fn scenario(raw: &source::RawStub) -> Result<Option<ScenarioRule>, String> {
    let nonempty = |v: &Option<String>, key: &str| match v {
        Some(s) if s.trim().is_empty() => Err(format!("{key} must not be empty")),
        _ => Ok(v.clone()),
    };
    let required = nonempty(&raw.required_state, "required_state")?;
    let new = nonempty(&raw.new_state, "new_state")?;
    match nonempty(&raw.scenario, "scenario")? {
        Some(name) => Ok(Some(ScenarioRule {
            name,
            required,
            new,
        })),
        None if required.is_some() || new.is_some() => {
            Err("required_state and new_state need `scenario`".into())
        }
        None => Ok(None),
    }
}

fn latency(v: Option<&Value>) -> Result<Latency, String> {
    let what = "response.latency";
    match v {
        None => Ok(Latency::Fixed(Duration::ZERO)),
        Some(Value::Object(range)) => {
            if let Some(k) = range.keys().find(|k| *k != "min" && *k != "max") {
                return Err(format!("{what}: unknown key `{k}` (expected min and max)"));
            }
            let bound = |k: &str| {
                range
                    .get(k)
                    .ok_or_else(|| format!("{what}: a range needs `min` and `max`"))
                    .and_then(|v| source::duration(v, &format!("{what}.{k}")))
            };
            let (min, max) = (bound("min")?, bound("max")?);
            if min > max {
                return Err(format!("{what}: min is above max"));
            }
            Ok(Latency::Range(min, max))
        }
        Some(v) => Ok(Latency::Fixed(source::duration(v, what)?)),
    }
}

/// Copies the remaining uses of unchanged stubs from `old` into `new`.
pub(super) fn carry_counts(new: &StubSet, old: &StubSet) {
    let previous: HashMap<(&str, &str), &Stub> = old
        .stubs
        .iter()
        .map(|s| ((s.file.as_str(), s.id.as_str()), s))
        .collect();
    for stub in &new.stubs {
        if let Some(prev) = previous.get(&(stub.file.as_str(), stub.id.as_str()))
            && prev.source == stub.source
        {
            stub.remaining
                .store(prev.remaining.load(Ordering::Acquire), Ordering::Release);
        }
    }
}
