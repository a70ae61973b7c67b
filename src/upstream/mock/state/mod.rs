//! Stateful CRUD for AIP standard methods (AIP-131 to AIP-135), so that in
//! mock mode a created resource can be got, listed, updated and deleted.
//!
//! A method is standard by its name and shape; anything else (streaming
//! methods, LRO-returning methods, custom methods that name no stored
//! resource) is left to the generator:
//!
//! | method            | shape                                                                   |
//! |-------------------|-------------------------------------------------------------------------|
//! | `Create<Res>`     | returns `Res`; the request has a `Res` field, maybe a parent, `<res>_id`; or the request *is* a `Res`, named in full; or it names the `Res` in full and carries some of its fields |
//! | `Get<Res>`        | returns `Res`; the request has a field naming it                        |
//! | `List<Res>s`      | returns a repeated `Res` (with a `name`) and `next_page_token`          |
//! | `Update<Res>`     | returns `Res`; the request has a `Res` field, maybe `update_mask`       |
//! | `Delete<Res>`     | the request has a field naming it; returns Empty, `Res` or anything     |
//!
//! The fields naming a resource and its parent are `name` and `parent`, or
//! the ones the `google.api.resource_reference` annotations or the
//! resource's pattern point at (`topic`, `project`: see
//! `resource_fields.rs`).
//!
//! Names are `{parent}/{collection}/{id}`, the collection from
//! [`collection_id`] (`shelves`, `books`) and the id from `<res>_id` or the
//! next free number; a request that is the resource, or names it, brings
//! its own name, which must fit the resource's annotated patterns. Creating a name that
//! exists is ALREADY_EXISTS (as Pub/Sub's `CreateTopic` answers, though it
//! is a `PUT`). Create fills what the request leaves unset with
//! [`Generator::fill_unset`] and stamps `create_time`/`update_time`; List
//! answers in creation order, paged by `page_size` (default 10, at most
//! 1000) and an opaque `page_token`, and ignores other filters; Update
//! applies `update_mask` (top-level and nested paths, `map.key`, `*` for a
//! full replacement), or with no mask every field set in the request
//! (AIP-134's implied mask), and honours `allow_missing`; Delete removes
//! the resource and, unless a `force` field says no, its children.
//!
//! A Create or a custom method whose request references (by
//! `resource_reference`) a type the stateful services' Creates make is
//! NOT_FOUND when that resource is missing (a subscription's `topic`,
//! `Publish`'s `topic`); a custom method's answer is generated, and a batch
//! answer gets one id per element sent (`batch.rs`: `Publish`
//! answers one `message_ids` entry per message).

mod store; // resources by creation order and name, ids per collection
mod support; // what the standard methods share

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, ReflectMessage,
    Value,
};
use tonic::Status;

use store::{Entry, Inner};
use support::*;

use crate::upstream::mock::batch::fill_ids;
use crate::upstream::mock::custom::{Reference, copy_same_fields, references};
use crate::upstream::mock::fields::{bool_field, int_field, set, string_field};
use crate::upstream::mock::generate::{Generator, collection_id, snake_case};
use crate::upstream::mock::mask::{apply_path, mask_paths};
use crate::upstream::mock::resource_fields::{fits_pattern, resource_option};
use crate::upstream::mock::standard::{NewResource, Standard, standard};

/// Default and largest page of a List.
const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 1000;

/// In-memory resources behind the standard methods of every service.
///
/// ```
/// use prost_reflect::DynamicMessage;
/// use protogate::upstream::mock::{generate::Generator, state::CrudStore};
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let svc = pool.get_service_by_name("library.v1.LibraryService").unwrap();
/// let method = |n: &str| svc.methods().find(|m| m.name() == n).unwrap();
/// let (store, g) = (CrudStore::new(), Generator::new(1));
///
/// let create = method("CreateShelf");
/// let req = DynamicMessage::deserialize(create.input(), serde_json::json!({"shelfId": "a"})).unwrap();
/// let shelf = store.handle(&create, &req, &g, b"k").unwrap().unwrap();
/// assert_eq!(shelf.get_field_by_name("name").unwrap().as_str(), Some("shelves/a"));
///
/// let get = method("GetShelf");
/// let req = DynamicMessage::deserialize(get.input(), serde_json::json!({"name": "shelves/b"})).unwrap();
/// let err = store.handle(&get, &req, &g, b"k").unwrap().unwrap_err();
/// assert_eq!(err.code(), tonic::Code::NotFound);
///
/// let custom = method("MoveBook");
/// assert!(store.handle(&custom, &DynamicMessage::new(custom.input()), &g, b"k").is_none());
/// ```
#[derive(Debug)]
pub struct CrudStore {
    inner: Mutex<Inner>,
    /// The deepest update-mask path accepted (`limits.max_depth`): masks
    /// come from clients, and applying one walks the path.
    max_depth: AtomicUsize,
}

impl Default for CrudStore {
    fn default() -> Self {
        CrudStore {
            inner: Mutex::default(),
            max_depth: AtomicUsize::new(
                crate::transcode::budget::DecodeLimits::default().max_depth,
            ),
        }
    }
}

impl CrudStore {
    /// An empty store.
    pub fn new() -> CrudStore {
        CrudStore::default()
    }

    /// Sets the deepest update-mask path accepted (`limits.max_depth`).
    pub fn set_max_depth(&self, max_depth: usize) {
        self.max_depth.store(max_depth, Ordering::Relaxed);
    }

    /// How many resources the store holds.
    pub fn len(&self) -> usize {
        self.lock().map(|s| s.by_seq.len()).unwrap_or(0)
    }

    /// Whether the store holds no resource.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every resource (for a reset from the admin side).
    pub fn clear(&self) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            // Clearing is exactly how to recover from a poisoned store.
            Err(poisoned) => poisoned.into_inner(),
        };
        *inner = Inner::default();
        self.inner.clear_poison();
    }

    /// Runs `method` against the store when it is an AIP standard method
    /// (see the module docs); `None` when it is not, so the caller generates
    /// an answer instead. `key` identifies the call as for
    /// [`Generator::respond`]; Create mixes the new name into it, so two
    /// equal requests make two different resources. Only the resources that
    /// `method`'s own service creates are checked as references; see
    /// [`handle_with`](CrudStore::handle_with).
    pub fn handle(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Option<Result<DynamicMessage, Status>> {
        let own = HashSet::from([method.parent_service().full_name().to_owned()]);
        self.handle_with(method, request, generator, key, &own)
    }

    /// [`handle`](CrudStore::handle), where the resource types that the
    /// standard Creates of the `stateful` services make are the ones a
    /// request may reference (a subscription's `topic`): a Create or a
    /// custom method naming a missing one is NOT_FOUND.
    pub fn handle_with(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
        stateful: &HashSet<String>,
    ) -> Option<Result<DynamicMessage, Status>> {
        if method.is_client_streaming() || method.is_server_streaming() {
            return None;
        }
        let standard = standard(method);
        if matches!(standard, None | Some(Standard::Create(..))) {
            let refs = references(method, stateful);
            if let Err(missing) = self.require(&refs, request) {
                return Some(Err(missing));
            }
            if standard.is_none() {
                return (!refs.is_empty()).then(|| self.custom(method, request, generator, key));
            }
        }
        Some(match standard? {
            Standard::Create(res, NewResource::Field { field, parent }) => {
                let parent = parent.and_then(|p| string_field(request, p.name()));
                self.create(&res, &field, parent, request, generator, key)
            }
            Standard::Create(res, NewResource::Itself) => {
                self.create_named(&res, request.clone(), "name", request, generator, key)
            }
            Standard::Create(res, NewResource::Named(name)) => {
                let resource = copy_same_fields(request, &res);
                self.create_named(&res, resource, name.name(), request, generator, key)
            }
            Standard::Get(res, name) => self.get(&res, &name, request),
            Standard::List(res, list, parent) => {
                let parent = parent.and_then(|p| string_field(request, p.name()));
                self.list(method, &res, &list, parent, request)
            }
            Standard::Update(res, field) => self.update(&res, &field, request, generator, key),
            Standard::Delete(res, name) => {
                self.delete(method, &res, &name, request, generator, key)
            }
        })
    }

    /// NOT_FOUND when a reference names a resource the store does not hold;
    /// an empty reference is not checked (the field may be optional).
    fn require(&self, refs: &[Reference], request: &DynamicMessage) -> Result<(), Status> {
        if refs.is_empty() {
            return Ok(());
        }
        let inner = self.lock()?;
        for r in refs {
            let name = string_field(request, r.field.name()).unwrap_or_default();
            if !name.is_empty() && inner.find(&r.resource, &name).is_none() {
                return Err(not_found(&r.resource, &name));
            }
        }
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, Status> {
        self.inner.lock().map_err(|_| {
            Status::internal("the mock resource store is unusable: an earlier request panicked")
        })
    }

    fn create(
        &self,
        res: &MessageDescriptor,
        field: &FieldDescriptor,
        parent: Option<String>,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Result<DynamicMessage, Status> {
        let resource = request
            .get_field(field)
            .as_message()
            .cloned()
            .unwrap_or_else(|| DynamicMessage::new(res.clone()));
        let parent = parent.unwrap_or_default();
        let id =
            string_field(request, &format!("{}_id", snake_case(res.name()))).unwrap_or_default();
        if id.contains('/') {
            return Err(Status::invalid_argument(format!(
                "{} id {id:?} may not contain '/'",
                res.name()
            )));
        }
        let prefix = match parent.trim_matches('/') {
            "" => collection_id(res),
            p => format!("{p}/{}", collection_id(res)),
        };
        let mut inner = self.lock()?;
        let name = if id.is_empty() {
            inner.free_name(&prefix)
        } else {
            format!("{prefix}/{id}")
        };
        inner.add(res, name, resource, request, generator, key)
    }

    /// A Create that names the new resource in full, in `name_field` of the
    /// request (Pub/Sub's `CreateTopic`, `CreateSnapshot`): the name is
    /// required and must fit one of the resource's annotated patterns, if
    /// it has any.
    fn create_named(
        &self,
        res: &MessageDescriptor,
        resource: DynamicMessage,
        name_field: &str,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Result<DynamicMessage, Status> {
        let name = string_field(request, name_field).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{name_field} is required to create a {}",
                res.name()
            )));
        }
        let patterns = resource_option(res).map(|o| o.patterns).unwrap_or_default();
        if !patterns.is_empty() && !patterns.iter().any(|p| fits_pattern(&name, p)) {
            return Err(Status::invalid_argument(format!(
                "{} name {name:?} does not fit {}",
                res.name(),
                patterns.join(" or ")
            )));
        }
        let mut inner = self.lock()?;
        inner.add(res, name, resource, request, generator, key)
    }

    /// A custom method on stored resources (their references were checked):
    /// a generated answer with batch ids filled in.
    fn custom(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Result<DynamicMessage, Status> {
        let mut response = generator.respond(method, request, key);
        let mut inner = self.lock()?;
        fill_ids(&mut response, request, || {
            inner.last_batch_id += 1;
            inner.last_batch_id
        });
        Ok(response)
    }

    fn get(
        &self,
        res: &MessageDescriptor,
        name_field: &FieldDescriptor,
        request: &DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let name = required_name(request, name_field, res)?;
        let inner = self.lock()?;
        inner
            .find(res, &name)
            .map(|e| coerce(&e.resource, res))
            .ok_or_else(|| not_found(res, &name))
    }

    fn list(
        &self,
        method: &MethodDescriptor,
        res: &MessageDescriptor,
        list: &FieldDescriptor,
        parent: Option<String>,
        request: &DynamicMessage,
    ) -> Result<DynamicMessage, Status> {
        let parent = parent.unwrap_or_default();
        let size = match int_field(request, "page_size").unwrap_or(0) {
            n if n < 0 => {
                return Err(Status::invalid_argument(format!(
                    "page_size must not be negative (got {n})"
                )));
            }
            0 => DEFAULT_PAGE_SIZE,
            n => usize::try_from(n)
                .unwrap_or(MAX_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
        };
        let token = string_field(request, "page_token").unwrap_or_default();
        let after = if token.is_empty() {
            0
        } else {
            decode_token(&token).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "page_token {token:?} is not a token this server gave"
                ))
            })?
        };

        let inner = self.lock()?;
        let matching = |e: &&Entry| {
            e.resource.descriptor().full_name() == res.full_name() && under(&e.name, &parent)
        };
        let mut page: Vec<(u64, &Entry)> = inner
            .by_seq
            .range(after.saturating_add(1)..)
            .filter(|(_, e)| matching(e))
            .take(size + 1)
            .map(|(seq, e)| (*seq, e))
            .collect();
        let more = page.len() > size;
        page.truncate(size);
        let next = match page.last() {
            Some((seq, _)) if more => encode_token(*seq),
            _ => String::new(),
        };
        let total = inner.by_seq.values().filter(matching).count();

        let mut resp = DynamicMessage::new(method.output());
        let items = page
            .iter()
            .map(|(_, e)| Value::Message(coerce(&e.resource, res)))
            .collect();
        let _ = resp.try_set_field(list, Value::List(items));
        set(&mut resp, "next_page_token", Value::String(next));
        if let Some(f) = resp.descriptor().get_field_by_name("total_size") {
            let n = i64::try_from(total).unwrap_or(i64::MAX);
            let v = match f.kind() {
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                    Value::I32(i32::try_from(n).unwrap_or(i32::MAX))
                }
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(n),
                Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::try_from(n).unwrap_or(u32::MAX)),
                Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::try_from(n).unwrap_or(0)),
                _ => return Ok(resp),
            };
            set(&mut resp, "total_size", v);
        }
        Ok(resp)
    }

    fn update(
        &self,
        res: &MessageDescriptor,
        field: &FieldDescriptor,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Result<DynamicMessage, Status> {
        let patch = request
            .get_field(field)
            .as_message()
            .cloned()
            .unwrap_or_else(|| DynamicMessage::new(res.clone()));
        let name = string_field(&patch, "name").unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{}.name is required to update a {}",
                field.name(),
                res.name()
            )));
        }
        let paths = mask_paths(request);
        let max_depth = self.max_depth.load(Ordering::Relaxed);
        if let Some(deep) = paths.iter().find(|p| p.split('.').count() > max_depth) {
            return Err(Status::invalid_argument(format!(
                "update_mask path of {} fields exceeds the limit of {max_depth} (limits.max_depth)",
                deep.split('.').count()
            )));
        }
        let mut inner = self.lock()?;
        let Some(seq) = inner
            .find(res, &name)
            .and_then(|_| inner.by_name.get(&name).copied())
        else {
            if bool_field(request, "allow_missing") {
                // AIP-134: an update with allow_missing creates what is missing.
                let mut resource = patch;
                generator.fill_unset(&mut resource, request, &[key, name.as_bytes()].concat());
                stamp(&mut resource, &["create_time", "update_time"]);
                inner.insert(name, resource.clone());
                return Ok(resource);
            }
            return Err(not_found(res, &name));
        };
        let Some(entry) = inner.by_seq.get_mut(&seq) else {
            return Err(not_found(res, &name));
        };
        let mut updated = coerce(&entry.resource, res);
        if paths.is_empty() {
            // AIP-134: no mask means every field the request populates.
            for (f, v) in patch.fields() {
                if f.name() != "name" {
                    let _ = updated.try_set_field(&f, v.clone());
                }
            }
        } else if paths.iter().any(|p| p == "*") {
            let create_time = updated
                .get_field_by_name("create_time")
                .map(|v| v.into_owned());
            updated = patch;
            if let Some(t) = create_time
                && !updated.has_field_by_name("create_time")
            {
                set(&mut updated, "create_time", t);
            }
        } else {
            for path in &paths {
                apply_path(&mut updated, &patch, path, true).map_err(|why| {
                    Status::invalid_argument(format!(
                        "update_mask path {path:?} on {}: {why}",
                        res.name()
                    ))
                })?;
            }
        }
        set(&mut updated, "name", Value::String(name));
        stamp(&mut updated, &["update_time"]);
        entry.resource = updated.clone();
        Ok(updated)
    }

    fn delete(
        &self,
        method: &MethodDescriptor,
        res: &MessageDescriptor,
        name_field: &FieldDescriptor,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Result<DynamicMessage, Status> {
        let name = required_name(request, name_field, res)?;
        let mut inner = self.lock()?;
        let Some(seq) = inner
            .find(res, &name)
            .and_then(|_| inner.by_name.get(&name).copied())
        else {
            if bool_field(request, "allow_missing") {
                return Ok(answer_delete(method, res, None, request, generator, key));
            }
            return Err(not_found(res, &name));
        };
        let prefix = format!("{name}/");
        let children: Vec<u64> = inner
            .by_seq
            .iter()
            .filter(|(_, e)| e.name.starts_with(&prefix))
            .map(|(s, _)| *s)
            .collect();
        let force_field = request.descriptor().get_field_by_name("force").is_some();
        if !children.is_empty() && force_field && !bool_field(request, "force") {
            return Err(Status::failed_precondition(format!(
                "{} {name:?} has {} child resource(s); set force to delete them too",
                res.name(),
                children.len()
            )));
        }
        for s in children {
            inner.remove(s);
        }
        let deleted = inner.remove(seq);
        Ok(answer_delete(
            method,
            res,
            deleted.as_ref(),
            request,
            generator,
            key,
        ))
    }
}

const TOKEN_PREFIX: &str = "crud1:";
