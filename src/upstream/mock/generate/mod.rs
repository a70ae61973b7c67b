//! Deterministic, realistic data for any message type: what `serve --mock`
//! answers with when no stub matches and no stored resource applies.
//!
//! # Determinism
//!
//! Every value is drawn from its own ChaCha8 stream, seeded with FNV-1a 64 of
//! (seed, key, field path). The same seed and key give the same message on
//! every run and every platform; another seed gives other data. Because the
//! stream of a field depends on its path (`publisher.email`, `authors[1]`),
//! adding a field to a message leaves the values of the other fields alone.
//! Map fields are `HashMap`s inside prost-reflect, so the *encoded order* of
//! map entries may differ between two equal messages; their content does not.
//!
//! # What a field gets
//!
//! Strings are chosen by field name (the last `_`-separated word decides
//! most, list fields are matched in the singular: `authors` → `author`):
//!
//! | field name                                   | value                                   |
//! |----------------------------------------------|-----------------------------------------|
//! | `name` on an AIP resource (see below)        | `shelves/42/books/7`                    |
//! | `name`, `display_name` on a person-ish type  | person name (`Author`, `user.name`, …)  |
//! | `name` on a company-ish type                 | company name (`Publisher`, `vendor`, …) |
//! | other `name`, `display_name`, `*_name`       | a title-cased phrase                    |
//! | `<resource>_name` (`other_shelf_name`)       | a resource name of that type            |
//! | `first_name`, `last_name`, `full_name`       | person name parts                       |
//! | `author`, `owner`, `creator`, `customer`, …  | person name                             |
//! | `user`, `username`, `login`, `handle`        | user name                               |
//! | `title`, `headline`, `subject`               | a short title-cased phrase              |
//! | `description`, `summary`, `text`, `comment`… | a sentence                              |
//! | `email`, `*_email`                           | `name@example.org`                      |
//! | `url`, `uri`, `link`, `*_url`                | `https://host.tld/path/…`               |
//! | `website`, `homepage`                        | `https://www.host.tld`                  |
//! | `id`, `*_id`, `uuid`, `guid`                 | a UUID (v4)                             |
//! | `phone`, `mobile`, `fax`                     | phone number                            |
//! | `country` / `country_name`                   | ISO 3166 alpha-2 code / country name    |
//! | `city`, `state`, `address`, `street`         | address parts                           |
//! | `zip`, `postal_code`, `postcode`             | postal code                             |
//! | `company`, `publisher`, `organization`, …    | company name                            |
//! | `isbn`                                       | ISBN-13                                 |
//! | `currency`, `currency_code`                  | ISO 4217 code                           |
//! | `language` / `locale`                        | `fr` / `fr-FR`                          |
//! | `color`                                      | `#a1b2c3`                               |
//! | `*_time`, `*_at`, `timestamp` / `*_date`     | RFC 3339 timestamp / `YYYY-MM-DD`       |
//! | `page_token`, `*_token`, `cursor`, `etag`    | an opaque base64url token               |
//! | `time_zone`, `mime_type`, `file_name`, …     | what the name says                      |
//! | `genre`, `category`, `tag`, `label`, `type`  | one lowercase word                      |
//! | anything else                                | a word or two                           |
//!
//! Numbers: `price`/`amount`/`cost`/`fee`/`total` doubles are positive with
//! two decimals; `*_count`/`count`/`total*`/`quantity` are 0–500;
//! `page_count` 24–1200; `age` 18–90; `rating` 1–5; `year`, `month`, `day`,
//! `hour`, `port`, `latitude`, `longitude`, `percent` fall in their ranges;
//! integer `*_id` are positive; integer `*_time`/`*_at` are Unix seconds;
//! other integers are 1–1000 (32-bit) or 1–100000 (64-bit), and `sint`/
//! `sfixed` fields may be negative. Bools are true half the time (`deleted`,
//! `archived`, … rarely; `available`, `enabled`, … mostly). Bytes are a few
//! random bytes (a 1×1 PNG for `image`/`cover`/`thumbnail`/… fields). Enums
//! take any value but a zero `*_UNSPECIFIED`/`*_UNKNOWN`. Map keys fit the
//! map's name: label-like maps (`labels`, `tags`, `metadata`) get lowercase
//! words, `genre_counts` gets the names of the `Genre` enum, `*_by_country`
//! gets country codes.
//!
//! Well-known types take valid forms: Timestamp in 2021–2025, Duration with
//! whole or quarter seconds, FieldMask with paths of a sibling message field,
//! wrappers like their scalar (an `Int32Value rating` is 1–5), small
//! Struct/Value/ListValue trees, Any holding an Empty, and Empty.
//!
//! Repeated fields get 2–4 elements, maps 1–3 entries, each oneof exactly
//! one member. Messages nest at most [`DEFAULT_MAX_DEPTH`] levels below the
//! top; deeper message fields stay unset, so recursive types terminate.
//!
//! # Resource names
//!
//! A message is an AIP resource when it has a string `name` field and either
//! carries a `google.api.resource` option or is the output of a method of its
//! file's services. Its name pattern comes from `google.api.resource`, else
//! from the `{name=…}` variable of its `Get<Type>` method's HTTP rule, else
//! it is `<collection>/*` with the collection the lowerCamel plural of the
//! type name (`Shelf` → `shelves`, `BookReview` → `bookReviews`). Ids are
//! numbers 1–999.
//!
//! # Echo
//!
//! [`Generator::respond`] makes the answer agree with the request: a request
//! field of the response type (`CreateBook.book`, `UpdateBook.book`) is
//! copied over the generated response; top-level request fields come back in
//! response fields of the same name and type (`GetBook.name` → `Book.name`);
//! a request with `parent` and/or `<type>_id` but no `name` names the
//! response `{parent}/{collection}/{id}`. A List-like response (a repeated
//! message field plus `next_page_token`) holds `page_size` elements (default
//! [`DEFAULT_PAGE_SIZE`], at most [`MAX_PAGE_SIZE`]) named
//! `{parent}/{collection}/{n}` when the request has a parent (`parent`, or
//! the field the annotations or the resource pattern name, like Pub/Sub's
//! `project`), numbered on from the request's `page_token`. A generated
//! collection holds [`GENERATED_COLLECTION_LEN`] elements: the last page has
//! an empty `next_page_token`, so a client's pager that reads every page ends.

// This file: the public API and the generation core (seeded streams,
// walking messages, lists and maps). Each value comes from a child:
mod echo; // request values copied into the response; List pages
mod formats; // how values look: words, titles, ISBNs, tokens, timestamps
mod iam; // IAM members and roles
mod maps; // map fields: entry counts and keys that fit the map's name
mod names; // which string a field's name asks for; word forms of names
mod operation; // long-running operations, done with their declared response
mod references; // resource types, references and the names a request binds
mod resource; // AIP resource names and collection ids; page tokens
mod scalars; // numbers, bools, bytes and enums by field name
mod well_known; // google.protobuf well-known types and HttpBody

pub(crate) use names::snake_case;
pub use resource::{collection_id, pluralize, resource_pattern};

use std::sync::Arc;

use fake::rand::{RngExt, SeedableRng};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, Value,
};
use rand_chacha::ChaCha8Rng;

use super::batch::fill_ids;
use echo::{echo, list_shape, merge_unset};
use names::{is_image_word, singularize, words};
use references::{ResourceTypes, request_bindings};
use resource::{fill_pattern, name_field, pattern_or_default};
use scalars::{TINY_PNG, bool_for, bytes_for, float_for, int_for, pick_enum, to_i32};

/// How many levels of messages nest below the generated message by default.
pub const DEFAULT_MAX_DEPTH: usize = 3;

/// Elements in a generated List response when the request has no `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 3;

/// The most elements a generated List response holds, whatever `page_size` says.
pub const MAX_PAGE_SIZE: usize = 50;

/// Elements in a generated collection, over all its pages.
pub const GENERATED_COLLECTION_LEN: usize = 25;

/// Generates deterministic, realistic messages from descriptors.
///
/// ```
/// use protogate::upstream::mock::generate::Generator;
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let book = pool.get_message_by_name("library.v1.Book").unwrap();
/// let g = Generator::new(7);
/// let a = g.message(&book, b"GetBook");
/// assert_eq!(a, g.message(&book, b"GetBook"));
/// assert_ne!(a, Generator::new(8).message(&book, b"GetBook"));
/// ```
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    max_depth: usize,
    /// The resource types of the pool it answers for, found once (see
    /// [`with_pool`](Generator::with_pool)); other pools' are found per call.
    types: Option<(DescriptorPool, Arc<ResourceTypes>)>,
}

impl Generator {
    /// A generator whose data is fixed by `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator {
            seed,
            max_depth: DEFAULT_MAX_DEPTH,
            types: None,
        }
    }

    /// The same generator, with the resource types of `pool` (the pool its
    /// messages come from) read now rather than on every call.
    pub fn with_pool(mut self, pool: &DescriptorPool) -> Generator {
        self.types = Some((pool.clone(), Arc::new(ResourceTypes::of(pool))));
        self
    }

    /// The same generator with message nesting limited to `max_depth` levels
    /// below the generated message (0: no message fields at all).
    ///
    /// ```
    /// use protogate::upstream::mock::generate::Generator;
    /// assert_eq!(Generator::new(1).with_max_depth(5).max_depth(), 5);
    /// ```
    pub fn with_max_depth(mut self, max_depth: usize) -> Generator {
        self.max_depth = max_depth;
        self
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many levels of messages nest below a generated message.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The response for `method` given `request`, echoing what the request
    /// binds (see the module docs). `key` identifies the call: the same key
    /// gives the same answer, so callers pass the method's full name followed
    /// by the encoded request.
    ///
    /// ```
    /// use prost_reflect::{DynamicMessage, Value};
    /// use protogate::upstream::mock::generate::Generator;
    ///
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let svc = pool.get_service_by_name("library.v1.LibraryService").unwrap();
    /// let get = svc.methods().find(|m| m.name() == "GetBook").unwrap();
    /// let mut req = DynamicMessage::new(get.input());
    /// req.set_field_by_name("name", Value::String("shelves/7/books/3".into()));
    /// let book = Generator::new(1).respond(&get, &req, b"GetBook");
    /// assert_eq!(book.get_field_by_name("name").unwrap().as_str(), Some("shelves/7/books/3"));
    /// ```
    pub fn respond(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        key: &[u8],
    ) -> DynamicMessage {
        let out = method.output();
        let mut resp = self.response(&out, request, key);
        if out.full_name() == operation::OPERATION {
            self.call_draw(key, &out, request)
                .complete_operation(method, &mut resp);
        }
        // One id per element sent (the batch rule), like Pub/Sub's ids.
        let mut rng = self.draw(key, &out).rng("#batch-ids");
        fill_ids(&mut resp, request, || {
            rng.random_range(1_000_000_000_000_000..10_000_000_000_000_000)
        });
        if out.full_name() == HTTP_BODY && words(&snake_case(method.name())).any(is_image_word) {
            set(&mut resp, "content_type", Value::String("image/png".into()));
            set(&mut resp, "data", Value::Bytes(TINY_PNG.to_vec().into()));
        }
        resp
    }

    /// Fills the unset fields of `msg` (a stub's partial answer) with what
    /// [`respond`](Generator::respond) would answer for `request`; the fields
    /// `msg` already has win, and set singular messages are filled in turn.
    ///
    /// proto3 fields without presence count as unset when they hold their
    /// default (`0`, `""`, `false`), so such a value in `msg` is replaced.
    /// A oneof with a member set in `msg` is left alone.
    ///
    /// ```
    /// use prost_reflect::{DynamicMessage, Value};
    /// use protogate::upstream::mock::generate::Generator;
    ///
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let book = pool.get_message_by_name("library.v1.Book").unwrap();
    /// let req = DynamicMessage::new(pool.get_message_by_name("library.v1.GetBookRequest").unwrap());
    /// let mut msg = DynamicMessage::new(book);
    /// msg.set_field_by_name("title", Value::String("Dune".into()));
    /// Generator::new(1).fill_unset(&mut msg, &req, b"GetBook");
    /// assert_eq!(msg.get_field_by_name("title").unwrap().as_str(), Some("Dune"));
    /// assert!(msg.has_field_by_name("isbn"));
    /// ```
    pub fn fill_unset(&self, msg: &mut DynamicMessage, request: &DynamicMessage, key: &[u8]) {
        let generated = self.response(&msg.descriptor(), request, key);
        merge_unset(msg, &generated);
    }

    /// A message of type `desc`, with no request to echo.
    ///
    /// ```
    /// use protogate::upstream::mock::generate::Generator;
    ///
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let publisher = pool.get_message_by_name("library.v1.Publisher").unwrap();
    /// let p = Generator::new(1).message(&publisher, b"k");
    /// assert!(p.get_field_by_name("email").unwrap().as_str().unwrap().contains('@'));
    /// ```
    pub fn message(&self, desc: &MessageDescriptor, key: &[u8]) -> DynamicMessage {
        self.draw(key, desc).message(desc, "", 0, None)
    }

    /// A resource name for a resource of type `desc` (see the module docs),
    /// or `None` when `desc` has no string `name` field.
    ///
    /// ```
    /// use protogate::upstream::mock::generate::Generator;
    ///
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let book = pool.get_message_by_name("library.v1.Book").unwrap();
    /// let name = Generator::new(1).resource_name(&book, b"k").unwrap();
    /// assert!(name.starts_with("shelves/") && name.contains("/books/"));
    /// ```
    pub fn resource_name(&self, desc: &MessageDescriptor, key: &[u8]) -> Option<String> {
        name_field(desc)?;
        Some(fill_pattern(
            &pattern_or_default(desc),
            None,
            &mut self.draw(key, desc).rng("#name"),
        ))
    }

    /// The draw of one call, generating messages of `desc`'s pool.
    fn draw(&self, key: &[u8], desc: &MessageDescriptor) -> Draw {
        let mut h = fnv1a(FNV_OFFSET, &self.seed.to_le_bytes());
        h = fnv1a(h, key);
        let pool = desc.parent_pool();
        let types = match &self.types {
            Some((known, types)) if known == pool => types.clone(),
            _ => Arc::new(ResourceTypes::of(pool)),
        };
        Draw {
            base: h,
            max_depth: self.max_depth,
            types,
            bindings: Vec::new(),
        }
    }

    /// The draw of a call answering `out` to `request`: the names it
    /// generates reuse what the request's names bind.
    fn call_draw(&self, key: &[u8], out: &MessageDescriptor, request: &DynamicMessage) -> Draw {
        let mut draw = self.draw(key, out);
        let out_type = references::resource_type(out);
        draw.bindings = request_bindings(&draw.types, request, out_type.as_deref());
        draw
    }

    /// Generation plus echo: the shared core of `respond` and `fill_unset`.
    fn response(
        &self,
        out: &MessageDescriptor,
        request: &DynamicMessage,
        key: &[u8],
    ) -> DynamicMessage {
        let draw = self.call_draw(key, out, request);
        let mut resp = draw.message(out, "", 0, None);
        if let Some((list, elem)) = list_shape(out) {
            draw.page(&mut resp, &list, &elem, request);
        }
        echo(&draw, out, request, &mut resp);
        resp
    }
}

/// FNV-1a 64's starting value.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64, continued from `h`: stable across runs, platforms and Rust
/// versions, unlike `DefaultHasher`.
pub(crate) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

const HTTP_BODY: &str = "google.api.HttpBody";

/// Where a value goes: the field's name (singular for list elements), the
/// message holding it, and the name of the field holding that message.
#[derive(Clone, Copy)]
struct Site<'a> {
    name: &'a str,
    owner: Option<&'a MessageDescriptor>,
    holder: Option<&'a str>,
    /// The field itself (its annotations), when the value is a field's.
    field: Option<&'a FieldDescriptor>,
}

impl Site<'_> {
    /// Whether the owner's type name or the holding field names a person
    /// (`Author`, `user.name`) or an organisation.
    fn context(&self, list: &[&str]) -> bool {
        let owner = self.owner.map(|o| snake_case(o.name())).unwrap_or_default();
        let holder = self.holder.map(singularize).unwrap_or_default();
        words(&owner)
            .chain(words(&holder))
            .any(|w| list.contains(&w))
    }
}

/// One generation: the hash of (seed, key) that every field stream continues.
struct Draw {
    base: u64,
    max_depth: usize,
    /// The pool's resource types, for names and references.
    types: Arc<ResourceTypes>,
    /// The variables the request's resource names bind (`project` → `p1`):
    /// generated names of any type reuse them.
    bindings: Vec<(String, String)>,
}

impl Draw {
    fn rng(&self, path: &str) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(fnv1a(self.base, path.as_bytes()))
    }

    fn message(
        &self,
        desc: &MessageDescriptor,
        path: &str,
        depth: usize,
        holder: Option<&str>,
    ) -> DynamicMessage {
        let site = Site {
            name: holder.unwrap_or(""),
            owner: None,
            holder: None,
            field: None,
        };
        if let Some(wkt) = self.well_known(desc, site, path, depth) {
            return wkt.unwrap_or_else(|| DynamicMessage::new(desc.clone()));
        }
        let mut msg = DynamicMessage::new(desc.clone());
        let mut chosen = Vec::new();
        for oneof in desc.oneofs().filter(|o| !o.is_synthetic()) {
            let members: Vec<FieldDescriptor> = oneof.fields().collect();
            if !members.is_empty() {
                let i = self
                    .rng(&join(path, &format!("({})", oneof.name())))
                    .random_range(0..members.len());
                chosen.extend(members.get(i).map(FieldDescriptor::number));
            }
        }
        for field in desc.fields() {
            if let Some(o) = field.containing_oneof()
                && !o.is_synthetic()
                && !chosen.contains(&field.number())
            {
                continue;
            }
            let site = Site {
                name: field.name(),
                owner: Some(desc),
                holder,
                field: Some(&field),
            };
            if let Some(v) = self.field(&field, site, &join(path, field.name()), depth) {
                put(&mut msg, &field, v);
            }
        }
        msg
    }

    fn field(
        &self,
        field: &FieldDescriptor,
        site: Site<'_>,
        path: &str,
        depth: usize,
    ) -> Option<Value> {
        let kind = field.kind();
        if field.is_map() {
            let Kind::Message(entry) = kind else {
                return None;
            };
            // A map field's annotations say nothing of its values' names.
            let site = Site {
                field: None,
                ..site
            };
            return self.map(&entry, site, path, depth).map(Value::Map);
        }
        if field.is_list() {
            if self.too_deep(&kind, depth) {
                return None;
            }
            let n = self.rng(&format!("{path}#n")).random_range(2..=4);
            let singular = singularize(site.name);
            let elem = Site {
                name: &singular,
                ..site
            };
            let items = (0..n)
                .filter_map(|i| self.single(&kind, elem, &format!("{path}[{i}]"), depth))
                .collect();
            return Some(Value::List(items));
        }
        self.single(&kind, site, path, depth)
    }

    fn too_deep(&self, kind: &Kind, depth: usize) -> bool {
        matches!(kind, Kind::Message(m) if !is_well_known(m)) && depth >= self.max_depth
    }

    fn single(&self, kind: &Kind, site: Site<'_>, path: &str, depth: usize) -> Option<Value> {
        if let Kind::Message(m) = kind {
            if let Some(wkt) = self.well_known(m, site, path, depth) {
                return wkt.map(Value::Message);
            }
            if depth >= self.max_depth {
                return None;
            }
            return Some(Value::Message(self.message(
                m,
                path,
                depth + 1,
                Some(site.name),
            )));
        }
        let mut rng = self.rng(path);
        let name = site.name;
        Some(match kind {
            Kind::Double => Value::F64(float_for(name, &mut rng)),
            // Quarters are exact in f32, so JSON shows `12.25`, not `12.2500…`.
            Kind::Float => Value::F32(((float_for(name, &mut rng) * 4.0).round() / 4.0) as f32),
            Kind::Int32 => Value::I32(to_i32(int_for(name, false, false, &mut rng))),
            Kind::Sint32 | Kind::Sfixed32 => {
                Value::I32(to_i32(int_for(name, false, true, &mut rng)))
            }
            Kind::Int64 => Value::I64(int_for(name, true, false, &mut rng)),
            Kind::Sint64 | Kind::Sfixed64 => Value::I64(int_for(name, true, true, &mut rng)),
            Kind::Uint32 | Kind::Fixed32 => {
                Value::U32(u32::try_from(int_for(name, false, false, &mut rng)).unwrap_or(0))
            }
            Kind::Uint64 | Kind::Fixed64 => {
                Value::U64(u64::try_from(int_for(name, true, false, &mut rng)).unwrap_or(0))
            }
            Kind::Bool => Value::Bool(bool_for(name, &mut rng)),
            Kind::String => Value::String(self.text(site, &mut rng)),
            Kind::Bytes => Value::Bytes(bytes_for(name, &mut rng).into()),
            Kind::Enum(e) => Value::EnumNumber(pick_enum(e, &mut rng)),
            Kind::Message(_) => return None,
        })
    }
}

fn set(msg: &mut DynamicMessage, name: &str, value: Value) {
    if let Some(field) = msg.descriptor().get_field_by_name(name) {
        put(msg, &field, value);
    }
}

/// Sets a field, or clears it when the value is the default of a field
/// without presence: a stored default would make the message unequal to
/// its own encode/decode round trip.
fn put(msg: &mut DynamicMessage, field: &FieldDescriptor, value: Value) {
    if !field.supports_presence() && value.is_default_for_field(field) {
        msg.clear_field(field);
    } else {
        let _ = msg.try_set_field(field, value);
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn is_well_known(desc: &MessageDescriptor) -> bool {
    desc.full_name().starts_with("google.protobuf.") || desc.full_name() == HTTP_BODY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable() {
        // FNV-1a 64 reference values.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
