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
//! `{parent}/{collection}/{n}` when the request has a `parent`, numbered on
//! from the request's `page_token`, and always has a `next_page_token`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fake::Fake;
use fake::faker::address::en::{
    BuildingNumber, CityName, CountryCode, CountryName, PostCode, StateAbbr, StateName, StreetName,
    TimeZone,
};
use fake::faker::barcode::en::Isbn10;
use fake::faker::company::en::{CatchPhrase, CompanyName, Industry, Profession};
use fake::faker::creditcard::en::CreditCardNumber;
use fake::faker::currency::en::CurrencyCode;
use fake::faker::filesystem::en::{FileName, FilePath, MimeType, Semver};
use fake::faker::internet::en::{
    DomainSuffix, IPv4, MACAddress, Password, SafeEmail, UserAgent, Username,
};
use fake::faker::job::en::Title as JobTitle;
use fake::faker::lorem::en::{Sentence, Word, Words};
use fake::faker::name::en::{FirstName, LastName, Name as PersonName};
use fake::faker::phone_number::en::PhoneNumber;
use fake::rand::{RngExt, SeedableRng};
use fake::uuid::UUIDv4;
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    MethodDescriptor, ReflectMessage, Value,
};
use rand_chacha::ChaCha8Rng;

/// How many levels of messages nest below the generated message by default.
pub const DEFAULT_MAX_DEPTH: usize = 3;

/// Elements in a generated List response when the request has no `page_size`.
pub const DEFAULT_PAGE_SIZE: usize = 3;

/// The most elements a generated List response holds, whatever `page_size` says.
pub const MAX_PAGE_SIZE: usize = 50;

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
}

impl Generator {
    /// A generator whose data is fixed by `seed`.
    pub fn new(seed: u64) -> Generator {
        Generator {
            seed,
            max_depth: DEFAULT_MAX_DEPTH,
        }
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
        self.draw(key).message(desc, "", 0, None)
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
            &mut self.draw(key).rng("#name"),
        ))
    }

    fn draw(&self, key: &[u8]) -> Draw {
        let mut h = fnv1a(FNV_OFFSET, &self.seed.to_le_bytes());
        h = fnv1a(h, key);
        Draw {
            base: h,
            max_depth: self.max_depth,
        }
    }

    /// Generation plus echo: the shared core of `respond` and `fill_unset`.
    fn response(
        &self,
        out: &MessageDescriptor,
        request: &DynamicMessage,
        key: &[u8],
    ) -> DynamicMessage {
        let draw = self.draw(key);
        let mut resp = draw.message(out, "", 0, None);
        if let Some((list, elem)) = list_shape(out) {
            draw.page(&mut resp, &list, &elem, request);
        }

        // The request's copy of the resource (CreateBook.book) wins over generation.
        for f in request.descriptor().fields() {
            let same_type =
                matches!(f.kind(), Kind::Message(m) if m.full_name() == out.full_name());
            if !same_type || f.is_list() || !request.has_field(&f) {
                continue;
            }
            if let Some(m) = request.get_field(&f).as_message() {
                overlay(&mut resp, m);
            }
        }
        // Bound values (path variables, query parameters) come back.
        let mut named_by_request = false;
        for (f, v) in request.fields() {
            if let Some(rf) = out.get_field_by_name(f.name())
                && compatible(&f, &rf)
            {
                named_by_request |= rf.name() == "name";
                put(&mut resp, &rf, v.clone());
            }
        }
        // A Create-like request names the new resource by its parent and id
        // (AIP-133: the name inside the request's resource is ignored).
        if !named_by_request && let Some(nf) = name_field(out) {
            let parent = string_field(request, "parent").filter(|p| !p.is_empty());
            let id_field = format!("{}_id", snake_case(out.name()));
            let id = string_field(request, &id_field).filter(|i| !i.is_empty());
            if parent.is_some() || id.is_some() {
                let pattern = pattern_or_default(out);
                let mut rng = draw.rng("#name");
                let name = match parent {
                    Some(p) => {
                        let id = id.unwrap_or_else(|| random_id(&mut rng));
                        format!("{p}/{}/{id}", collection_of(&pattern, out))
                    }
                    None => fill_pattern(&pattern, id.as_deref(), &mut rng),
                };
                put(&mut resp, &nf, Value::String(name));
            }
        }
        resp
    }
}

/// The lowerCamel plural collection id of a resource type: the last
/// collection of its name pattern when it has one (see the module docs),
/// else the plural of its type name (`Shelf` → `shelves`).
///
/// ```
/// use protogate::upstream::mock::generate::collection_id;
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let shelf = pool.get_message_by_name("library.v1.Shelf").unwrap();
/// assert_eq!(collection_id(&shelf), "shelves");
/// ```
pub fn collection_id(desc: &MessageDescriptor) -> String {
    match resource_pattern(desc) {
        Some(p) => collection_of(&p, desc),
        None => pluralize(&lower_camel(desc.name())),
    }
}

/// The name pattern of a resource type with `*` for each id
/// (`shelves/*/books/*`), from its `google.api.resource` option or its
/// `Get<Type>` method's HTTP rule; `None` when neither says.
///
/// ```
/// use protogate::upstream::mock::generate::resource_pattern;
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let book = pool.get_message_by_name("library.v1.Book").unwrap();
/// assert_eq!(resource_pattern(&book).as_deref(), Some("shelves/*/books/*"));
/// ```
pub fn resource_pattern(desc: &MessageDescriptor) -> Option<String> {
    let pool = desc.parent_pool();
    if let Some(ext) = pool.get_extension_by_name("google.api.resource") {
        let opts = desc.options();
        if opts.has_extension(&ext) {
            let value = opts.get_extension(&ext);
            let first = value
                .as_message()
                .and_then(|m| m.get_field_by_name("pattern"))
                .and_then(|p| p.as_list().and_then(|l| l.first().cloned()))
                .and_then(|p| p.as_str().map(str::to_owned));
            if let Some(p) = first {
                return Some(normalize_pattern(&p));
            }
        }
    }
    let http = pool.get_extension_by_name("google.api.http")?;
    let get = format!("Get{}", desc.name());
    for svc in desc.parent_file().services() {
        for m in svc.methods() {
            if m.name() != get || m.output().full_name() != desc.full_name() {
                continue;
            }
            let opts = m.options();
            if !opts.has_extension(&http) {
                continue;
            }
            let value = opts.get_extension(&http);
            let Some(rule) = value.as_message() else {
                continue;
            };
            for verb in ["get", "post", "put", "patch", "delete"] {
                let path = rule.get_field_by_name(verb);
                if let Some(t) = path
                    .as_deref()
                    .and_then(Value::as_str)
                    .and_then(name_variable)
                {
                    return Some(normalize_pattern(t));
                }
            }
        }
    }
    None
}

/// The plural of an English noun (`shelf` → `shelves`, `category` →
/// `categories`, `box` → `boxes`, `book` → `books`); only the last word of a
/// lowerCamel id changes.
///
/// ```
/// use protogate::upstream::mock::generate::pluralize;
/// assert_eq!(pluralize("shelf"), "shelves");
/// assert_eq!(pluralize("bookReview"), "bookReviews");
/// assert_eq!(pluralize("category"), "categories");
/// ```
pub fn pluralize(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let stem = |n: usize| &word[..word.len().saturating_sub(n)];
    if lower.ends_with("person") {
        format!("{}ople", stem(4))
    } else if lower.ends_with("child") {
        format!("{word}ren")
    } else if lower.ends_with('y')
        && !lower.ends_with("ay")
        && !lower.ends_with("ey")
        && !lower.ends_with("oy")
        && !lower.ends_with("uy")
    {
        format!("{}ies", stem(1))
    } else if lower.ends_with("lf") {
        format!("{}ves", stem(1))
    } else if lower.ends_with("ife") {
        format!("{}ves", stem(2))
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64, continued from `h`: stable across runs, platforms and Rust
/// versions, unlike `DefaultHasher`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

const HTTP_BODY: &str = "google.api.HttpBody";

/// A valid 1×1 PNG, for image-like bytes fields and HttpBody answers.
const TINY_PNG: [u8; 69] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf0, 0xaa, 0xda, 0x01,
    0x00, 0x02, 0x8e, 0x01, 0x7d, 0x9e, 0xbe, 0xb8, 0x54, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// BCP 47 tags for `locale`/`language` fields (fake has no locale faker).
const LOCALES: &[&str] = &[
    "en-US", "en-GB", "fr-FR", "de-DE", "es-ES", "it-IT", "ja-JP", "pt-BR", "nl-NL", "pl-PL",
];

/// 2021-01-01T00:00:00Z and 2026-01-01T00:00:00Z: timestamps fall between,
/// fixed rather than relative to now so that answers do not drift.
const TIME_FROM: i64 = 1_609_459_200;
const TIME_TO: i64 = 1_767_225_600;

const PERSON_WORDS: &[&str] = &[
    "person",
    "people",
    "user",
    "author",
    "owner",
    "creator",
    "customer",
    "member",
    "employee",
    "contact",
    "reviewer",
    "speaker",
    "student",
    "teacher",
    "patient",
    "friend",
    "assignee",
    "reporter",
    "sender",
    "recipient",
    "buyer",
    "seller",
    "manager",
    "profile",
    "artist",
    "director",
    "editor",
    "translator",
    "narrator",
    "guest",
    "host",
    "actor",
    "player",
    "driver",
];
const ORG_WORDS: &[&str] = &[
    "publisher",
    "company",
    "organization",
    "organisation",
    "org",
    "employer",
    "brand",
    "manufacturer",
    "vendor",
    "supplier",
    "merchant",
    "business",
    "agency",
    "bank",
    "studio",
    "label",
];
const MONEY_WORDS: &[&str] = &[
    "price", "amount", "cost", "fee", "balance", "salary", "total", "subtotal", "tax", "revenue",
    "budget", "charge", "payment", "discount", "income", "spend",
];
const SENTENCE_WORDS: &[&str] = &[
    "description",
    "summary",
    "text",
    "comment",
    "body",
    "content",
    "message",
    "note",
    "bio",
    "biography",
    "about",
    "abstract",
    "details",
    "detail",
    "reason",
    "review",
    "caption",
    "excerpt",
    "snippet",
    "instructions",
    "feedback",
    "overview",
    "quote",
    "answer",
    "question",
    "blurb",
];
const LABEL_WORDS: &[&str] = &[
    "label",
    "tag",
    "annotation",
    "attribute",
    "metadata",
    "property",
    "param",
    "parameter",
    "header",
    "setting",
    "option",
    "extra",
    "env",
    "variable",
    "feature",
    "flag",
    "field",
    "key",
    "entry",
    "data",
    "meta",
];

fn is_image_word(w: &str) -> bool {
    [
        "image",
        "img",
        "photo",
        "picture",
        "thumbnail",
        "avatar",
        "icon",
        "logo",
        "cover",
        "banner",
    ]
    .contains(&w)
}

fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split('_').filter(|w| !w.is_empty())
}

fn last_word(name: &str) -> &str {
    words(name).last().unwrap_or("")
}

/// What a string field holds, decided by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Email,
    Url,
    Website,
    ImageUrl,
    Uuid,
    Phone,
    CountryCode,
    CountryName,
    City,
    State,
    StateAbbr,
    PostalCode,
    Address,
    Street,
    Company,
    Isbn13,
    Isbn10,
    FirstName,
    LastName,
    Person,
    Username,
    /// `name`/`display_name`: resource, person, company or title by context.
    Name,
    /// `<type>_name`: a resource name when `<type>` is a resource type.
    NameOf,
    Title,
    JobTitle,
    Sentence,
    Timestamp,
    Date,
    Token,
    Currency,
    Language,
    Locale,
    Color,
    TimeZone,
    MimeType,
    FileName,
    FilePath,
    Version,
    Slug,
    Password,
    Profession,
    Industry,
    Hostname,
    Ip,
    Mac,
    UserAgent,
    CreditCard,
    Word,
    Words,
}

fn classify(name: &str) -> Text {
    let n = name.to_ascii_lowercase();
    let toks: Vec<&str> = words(&n).collect();
    let last = toks.last().copied().unwrap_or("");
    let has = |t: &str| toks.contains(&t);
    let is = |list: &[&str]| list.contains(&n.as_str());
    let last_in = |list: &[&str]| list.contains(&last);
    if has("email") {
        Text::Email
    } else if is(&["ip", "ip_address", "ipv4", "remote_addr"]) {
        Text::Ip
    } else if is(&["mac", "mac_address"]) {
        Text::Mac
    } else if n == "user_agent" {
        Text::UserAgent
    } else if last_in(&["url", "uri", "link", "href", "website", "homepage", "site"]) {
        if toks.iter().any(|t| is_image_word(t)) {
            Text::ImageUrl
        } else if last_in(&["website", "homepage", "site"]) {
            Text::Website
        } else {
            Text::Url
        }
    } else if last_in(&["id", "uuid", "guid"]) {
        Text::Uuid
    } else if has("phone") || last_in(&["mobile", "fax", "telephone", "tel"]) {
        Text::Phone
    } else if n == "country_name" {
        Text::CountryName
    } else if has("country") {
        Text::CountryCode
    } else if has("city") || last == "town" {
        Text::City
    } else if is(&["state_code", "state_abbr", "state_abbreviation"]) {
        Text::StateAbbr
    } else if last_in(&["state", "province"]) {
        Text::State
    } else if has("zip") || has("postcode") || n.contains("postal_code") || n == "post_code" {
        Text::PostalCode
    } else if has("address") || is(&["address_line1", "address_line2", "address_line"]) {
        Text::Address
    } else if has("street") {
        Text::Street
    } else if has("isbn10") {
        Text::Isbn10
    } else if has("isbn") || has("isbn13") {
        Text::Isbn13
    } else if last_in(ORG_WORDS) && last != "label" || n == "company_name" {
        Text::Company
    } else if is(&["first_name", "given_name", "firstname", "forename"]) {
        Text::FirstName
    } else if is(&["last_name", "family_name", "surname", "lastname"]) {
        Text::LastName
    } else if n == "full_name" || n == "author_name" || last_in(PERSON_WORDS) && last != "user" {
        Text::Person
    } else if last_in(&["username", "login", "handle", "nickname", "user"]) || n == "user_name" {
        Text::Username
    } else if is(&["filename", "file_name"]) {
        Text::FileName
    } else if is(&["hostname", "host_name"]) {
        Text::Hostname
    } else if n == "name" || n == "display_name" {
        Text::Name
    } else if last == "name" {
        Text::NameOf
    } else if n == "job_title" {
        Text::JobTitle
    } else if last_in(&["title", "headline", "subject", "heading"]) {
        Text::Title
    } else if last_in(SENTENCE_WORDS) {
        Text::Sentence
    } else if last_in(&["time", "at", "timestamp", "datetime"])
        || is(&["created", "updated", "modified", "deleted", "expiry"])
    {
        Text::Timestamp
    } else if last_in(&["date", "birthday", "dob"]) {
        Text::Date
    } else if last_in(&["token", "cursor", "etag", "nonce", "secret"]) || n == "api_key" {
        Text::Token
    } else if has("currency") {
        Text::Currency
    } else if last == "locale" {
        Text::Locale
    } else if last_in(&["language", "lang"]) || n == "language_code" {
        Text::Language
    } else if last_in(&["color", "colour"]) {
        Text::Color
    } else if is(&["timezone", "time_zone", "tz"]) {
        Text::TimeZone
    } else if is(&["mime_type", "content_type", "media_type", "mimetype"]) {
        Text::MimeType
    } else if is(&["path", "file_path", "filepath"]) {
        Text::FilePath
    } else if last_in(&["version", "semver"]) {
        Text::Version
    } else if last == "slug" {
        Text::Slug
    } else if last == "password" {
        Text::Password
    } else if last_in(&["job", "profession", "occupation"]) {
        Text::Profession
    } else if last == "industry" {
        Text::Industry
    } else if last_in(&["host", "domain"]) {
        Text::Hostname
    } else if is(&["credit_card", "card_number", "credit_card_number"]) {
        Text::CreditCard
    } else if last_in(&[
        "genre", "category", "tag", "keyword", "topic", "label", "kind", "type", "status", "mood",
        "format",
    ]) {
        Text::Word
    } else {
        Text::Words
    }
}

/// Where a value goes: the field's name (singular for list elements), the
/// message holding it, and the name of the field holding that message.
#[derive(Clone, Copy)]
struct Site<'a> {
    name: &'a str,
    owner: Option<&'a MessageDescriptor>,
    holder: Option<&'a str>,
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

    fn map(
        &self,
        entry: &MessageDescriptor,
        site: Site<'_>,
        path: &str,
        depth: usize,
    ) -> Option<HashMap<MapKey, Value>> {
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        if self.too_deep(&value_kind, depth) {
            return None;
        }
        let mut rng = self.rng(&format!("{path}#n"));
        let n = if key_kind == Kind::Bool {
            rng.random_range(1..=2)
        } else {
            rng.random_range(1..=3)
        };
        let hint = map_key_hint(site.name);
        let labels = LABEL_WORDS.contains(&hint.as_str());
        let mut map = HashMap::new();
        // A few extra draws make up for keys that collide.
        for i in 0..n * 4 {
            if map.len() == n {
                break;
            }
            let entry_path = format!("{path}{{{i}}}");
            let key = self.map_key(&key_kind, &hint, labels, site, &mut self.rng(&entry_path));
            if map.contains_key(&key) {
                continue;
            }
            let value_path = format!("{entry_path}v");
            let value = if labels && value_kind == Kind::String {
                Some(Value::String(lower_word(&mut self.rng(&value_path))))
            } else {
                self.single(&value_kind, site, &value_path, depth)
            };
            if let Some(v) = value {
                map.insert(key, v);
            }
        }
        Some(map)
    }

    fn map_key(
        &self,
        kind: &Kind,
        hint: &str,
        labels: bool,
        site: Site<'_>,
        rng: &mut ChaCha8Rng,
    ) -> MapKey {
        match kind {
            Kind::Bool => MapKey::Bool(rng.random_bool(0.5)),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(rng.random_range(1..=1000)),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                MapKey::I64(rng.random_range(1..=100_000))
            }
            Kind::Uint32 | Kind::Fixed32 => MapKey::U32(rng.random_range(1..=1000)),
            Kind::Uint64 | Kind::Fixed64 => MapKey::U64(rng.random_range(1..=100_000)),
            _ => {
                if labels {
                    return MapKey::String(lower_word(rng));
                }
                // `genre_counts` in a package with a `Genre` enum: key by its value names.
                if let Some(owner) = site.owner {
                    let enum_name = format!("{}.{}", owner.package_name(), pascal_case(hint));
                    if let Some(e) = owner.parent_pool().get_enum_by_name(&enum_name) {
                        let number = pick_enum(&e, rng);
                        if let Some(v) = e.get_value(number) {
                            return MapKey::String(v.name().to_owned());
                        }
                    }
                }
                let key_site = Site { name: hint, ..site };
                match classify(hint) {
                    Text::Words | Text::Name | Text::NameOf | Text::Title | Text::Sentence => {
                        MapKey::String(lower_word(rng))
                    }
                    _ => MapKey::String(self.text(key_site, rng)),
                }
            }
        }
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

    /// A well-known type in a valid form: `None` when `desc` is not one,
    /// `Some(None)` when it is but none can be made (an Any without Empty
    /// in the pool).
    fn well_known(
        &self,
        desc: &MessageDescriptor,
        site: Site<'_>,
        path: &str,
        depth: usize,
    ) -> Option<Option<DynamicMessage>> {
        let mut rng = self.rng(path);
        let mut msg = DynamicMessage::new(desc.clone());
        match desc.full_name() {
            "google.protobuf.Timestamp" => {
                set(
                    &mut msg,
                    "seconds",
                    Value::I64(rng.random_range(TIME_FROM..TIME_TO)),
                );
                set(
                    &mut msg,
                    "nanos",
                    Value::I32(rng.random_range(0..1000) * 1_000_000),
                );
            }
            "google.protobuf.Duration" => {
                let short = words(site.name).any(|w| {
                    ["timeout", "deadline", "ttl", "interval", "delay", "backoff"].contains(&w)
                });
                let seconds = if short {
                    rng.random_range(1..=60)
                } else {
                    rng.random_range(60..=36_000)
                };
                set(&mut msg, "seconds", Value::I64(seconds));
                set(
                    &mut msg,
                    "nanos",
                    Value::I32(rng.random_range(0..4) * 250_000_000),
                );
            }
            "google.protobuf.FieldMask" => {
                let paths = mask_paths(site.owner, &mut rng);
                set(&mut msg, "paths", Value::List(paths));
            }
            name if crate::wkt::is_wrapper(name) => {
                let field = desc.get_field_by_name("value")?;
                if let Some(v) = self.single(&field.kind(), site, &format!("{path}.value"), depth) {
                    put(&mut msg, &field, v);
                }
            }
            "google.protobuf.Struct" => {
                let entry = match desc.get_field_by_name("fields")?.kind() {
                    Kind::Message(e) => e,
                    _ => return Some(None),
                };
                let Kind::Message(value_desc) = entry.map_entry_value_field().kind() else {
                    return Some(None);
                };
                let mut fields = HashMap::new();
                let n = rng.random_range(2..=3);
                for i in 0..n * 4 {
                    if fields.len() == n {
                        break;
                    }
                    let mut r = self.rng(&format!("{path}{{{i}}}"));
                    let key = MapKey::String(lower_word(&mut r));
                    fields
                        .entry(key)
                        .or_insert_with(|| Value::Message(json_value(&value_desc, &mut r)));
                }
                set(&mut msg, "fields", Value::Map(fields));
            }
            "google.protobuf.Value" => return Some(Some(json_value(desc, &mut rng))),
            "google.protobuf.ListValue" => {
                let Kind::Message(value_desc) = desc.get_field_by_name("values")?.kind() else {
                    return Some(None);
                };
                let n = rng.random_range(2..=3);
                let values = (0..n)
                    .map(|_| Value::Message(json_value(&value_desc, &mut rng)))
                    .collect();
                set(&mut msg, "values", Value::List(values));
            }
            "google.protobuf.Any" => {
                // Any other payload would need a type the JSON side can resolve.
                let empty = desc
                    .parent_pool()
                    .get_message_by_name("google.protobuf.Empty");
                if empty.is_none() {
                    return Some(None);
                }
                set(
                    &mut msg,
                    "type_url",
                    Value::String("type.googleapis.com/google.protobuf.Empty".into()),
                );
            }
            "google.protobuf.Empty" => {}
            HTTP_BODY => {
                set(
                    &mut msg,
                    "content_type",
                    Value::String("text/plain; charset=utf-8".into()),
                );
                set(
                    &mut msg,
                    "data",
                    Value::Bytes(sentence(&mut rng).into_bytes().into()),
                );
            }
            _ => return None,
        }
        Some(Some(msg))
    }

    /// A string for `site`, by name and context (see the module docs).
    fn text(&self, site: Site<'_>, rng: &mut ChaCha8Rng) -> String {
        match classify(site.name) {
            Text::Email => SafeEmail().fake_with_rng(rng),
            Text::Url => format!(
                "https://{}.{}/{}/{}",
                lower_word(rng),
                domain_suffix(rng),
                lower_word(rng),
                lower_word(rng)
            ),
            Text::Website => format!(
                "https://www.{}{}.{}",
                lower_word(rng),
                lower_word(rng),
                domain_suffix(rng)
            ),
            Text::ImageUrl => format!("https://picsum.photos/seed/{}/640/480", lower_word(rng)),
            Text::Uuid => UUIDv4.fake_with_rng(rng),
            Text::Phone => PhoneNumber().fake_with_rng(rng),
            Text::CountryCode => CountryCode().fake_with_rng(rng),
            Text::CountryName => CountryName().fake_with_rng(rng),
            Text::City => CityName().fake_with_rng(rng),
            Text::State => StateName().fake_with_rng(rng),
            Text::StateAbbr => StateAbbr().fake_with_rng(rng),
            Text::PostalCode => PostCode().fake_with_rng(rng),
            Text::Address => {
                let number: String = BuildingNumber().fake_with_rng(rng);
                let street: String = StreetName().fake_with_rng(rng);
                format!("{number} {street}")
            }
            Text::Street => StreetName().fake_with_rng(rng),
            Text::Company => CompanyName().fake_with_rng(rng),
            Text::Isbn13 => isbn13(rng),
            Text::Isbn10 => Isbn10().fake_with_rng(rng),
            Text::FirstName => FirstName().fake_with_rng(rng),
            Text::LastName => LastName().fake_with_rng(rng),
            Text::Person => PersonName().fake_with_rng(rng),
            Text::Username => Username().fake_with_rng(rng),
            Text::Name => {
                if site.name == "name"
                    && let Some(owner) = site.owner
                    && is_resource(owner)
                {
                    fill_pattern(&pattern_or_default(owner), None, rng)
                } else if site.context(PERSON_WORDS) {
                    PersonName().fake_with_rng(rng)
                } else if site.context(ORG_WORDS) {
                    CompanyName().fake_with_rng(rng)
                } else {
                    title(rng)
                }
            }
            Text::NameOf => {
                let prefix = site.name.strip_suffix("_name").unwrap_or(site.name);
                let target = site.owner.and_then(|o| {
                    let full = format!("{}.{}", o.package_name(), pascal_case(last_word(prefix)));
                    o.parent_pool().get_message_by_name(&full)
                });
                match target {
                    Some(t) if is_resource(&t) => fill_pattern(&pattern_or_default(&t), None, rng),
                    _ => title(rng),
                }
            }
            Text::Title => title(rng),
            Text::JobTitle => JobTitle().fake_with_rng(rng),
            Text::Sentence => sentence(rng),
            Text::Timestamp => rfc3339(rng.random_range(TIME_FROM..TIME_TO)),
            Text::Date => {
                let ts = rfc3339(rng.random_range(TIME_FROM..TIME_TO));
                ts.get(..10).unwrap_or(&ts).to_owned()
            }
            Text::Token => token(rng),
            Text::Currency => CurrencyCode().fake_with_rng(rng),
            Text::Locale => pick(LOCALES, rng).to_owned(),
            Text::Language => {
                let tag = pick(LOCALES, rng);
                tag.split('-').next().unwrap_or(tag).to_owned()
            }
            Text::Color => format!("#{:06x}", rng.random_range(0..0x0100_0000u32)),
            Text::TimeZone => TimeZone().fake_with_rng(rng),
            Text::MimeType => MimeType().fake_with_rng(rng),
            Text::FileName => FileName().fake_with_rng(rng),
            Text::FilePath => FilePath().fake_with_rng(rng),
            Text::Version => Semver().fake_with_rng(rng),
            Text::Slug => {
                let w: Vec<String> = Words(2..4).fake_with_rng(rng);
                w.join("-").to_lowercase()
            }
            Text::Password => Password(12..20).fake_with_rng(rng),
            Text::Profession => Profession().fake_with_rng(rng),
            Text::Industry => Industry().fake_with_rng(rng),
            Text::Hostname => format!("{}.{}", lower_word(rng), domain_suffix(rng)),
            Text::Ip => IPv4().fake_with_rng(rng),
            Text::Mac => MACAddress().fake_with_rng(rng),
            Text::UserAgent => UserAgent().fake_with_rng(rng),
            Text::CreditCard => CreditCardNumber().fake_with_rng(rng),
            Text::Word => lower_word(rng),
            Text::Words => {
                let w: Vec<String> = Words(1..3).fake_with_rng(rng);
                w.join(" ")
            }
        }
    }

    /// Fills the list of a List-like response: `page_size` elements numbered
    /// on from `page_token`, named under `parent`, and a next page token.
    fn page(
        &self,
        resp: &mut DynamicMessage,
        list: &FieldDescriptor,
        elem: &MessageDescriptor,
        request: &DynamicMessage,
    ) {
        if self.max_depth == 0 {
            return;
        }
        let size = int_field(request, "page_size")
            .filter(|n| *n > 0)
            .map(|n| {
                usize::try_from(n)
                    .unwrap_or(MAX_PAGE_SIZE)
                    .min(MAX_PAGE_SIZE)
            })
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let offset = string_field(request, "page_token")
            .and_then(|t| decode_token(&t))
            .unwrap_or(0);
        let parent = string_field(request, "parent").filter(|p| !p.is_empty());
        let collection = lower_camel(list.name());
        let name = name_field(elem);
        let holder = singularize(list.name());
        let items = (offset..offset + size)
            .map(|idx| {
                let mut m =
                    self.message(elem, &format!("{}[{idx}]", list.name()), 1, Some(&holder));
                if let (Some(p), Some(nf)) = (&parent, &name) {
                    put(
                        &mut m,
                        nf,
                        Value::String(format!("{p}/{collection}/{}", idx + 1)),
                    );
                }
                Value::Message(m)
            })
            .collect();
        put(resp, list, Value::List(items));
        set(
            resp,
            "next_page_token",
            Value::String(encode_token(offset + size)),
        );
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

/// The singular string `name` field of a message.
fn name_field(desc: &MessageDescriptor) -> Option<FieldDescriptor> {
    desc.get_field_by_name("name")
        .filter(|f| f.kind() == Kind::String && !f.is_list())
}

/// Whether `desc` looks like an AIP resource (see the module docs).
fn is_resource(desc: &MessageDescriptor) -> bool {
    if name_field(desc).is_none() {
        return false;
    }
    let pool = desc.parent_pool();
    if let Some(ext) = pool.get_extension_by_name("google.api.resource")
        && desc.options().has_extension(&ext)
    {
        return true;
    }
    desc.parent_file()
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .any(|m| m.output().full_name() == desc.full_name())
}

fn pattern_or_default(desc: &MessageDescriptor) -> String {
    resource_pattern(desc).unwrap_or_else(|| format!("{}/*", pluralize(&lower_camel(desc.name()))))
}

/// `shelves/{shelf}/books/{book}` or `shelves/*/books/*` → `shelves/*/books/*`.
fn normalize_pattern(p: &str) -> String {
    p.trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') || s == "**" {
                "*"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The template of a `{name=…}` variable in an HTTP rule path.
fn name_variable(path: &str) -> Option<&str> {
    let start = path.find("{name=")? + "{name=".len();
    let len = path.get(start..)?.find('}')?;
    path.get(start..start + len)
}

/// The collection of the last id in a pattern (`shelves/*/books/*` → `books`).
fn collection_of(pattern: &str, desc: &MessageDescriptor) -> String {
    let segs: Vec<&str> = pattern.split('/').collect();
    match segs.as_slice() {
        [.., coll, "*"] if *coll != "*" => (*coll).to_owned(),
        _ => pluralize(&lower_camel(desc.name())),
    }
}

/// A pattern with its ids filled in; the last id is `last_id` when given.
fn fill_pattern(pattern: &str, last_id: Option<&str>, rng: &mut ChaCha8Rng) -> String {
    let segs: Vec<&str> = pattern.split('/').collect();
    let last_star = segs.iter().rposition(|s| *s == "*");
    segs.iter()
        .enumerate()
        .map(|(i, s)| match (*s, last_id) {
            ("*", Some(id)) if Some(i) == last_star => id.to_owned(),
            ("*", _) => random_id(rng),
            (lit, _) => lit.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn random_id(rng: &mut ChaCha8Rng) -> String {
    rng.random_range(1..=999u32).to_string()
}

/// The repeated message field and element type of a List-like response.
fn list_shape(out: &MessageDescriptor) -> Option<(FieldDescriptor, MessageDescriptor)> {
    out.get_field_by_name("next_page_token")
        .filter(|f| f.kind() == Kind::String)?;
    out.fields().find_map(|f| match f.kind() {
        Kind::Message(m) if f.is_list() && !is_well_known(&m) => Some((f, m)),
        _ => None,
    })
}

fn compatible(a: &FieldDescriptor, b: &FieldDescriptor) -> bool {
    if a.is_list() != b.is_list() || a.is_map() != b.is_map() {
        return false;
    }
    match (a.kind(), b.kind()) {
        (Kind::Message(x), Kind::Message(y)) if a.is_map() => {
            same_kind(
                &x.map_entry_key_field().kind(),
                &y.map_entry_key_field().kind(),
            ) && same_kind(
                &x.map_entry_value_field().kind(),
                &y.map_entry_value_field().kind(),
            )
        }
        (x, y) => same_kind(&x, &y),
    }
}

fn same_kind(a: &Kind, b: &Kind) -> bool {
    match (a, b) {
        (Kind::Message(x), Kind::Message(y)) => x.full_name() == y.full_name(),
        (Kind::Enum(x), Kind::Enum(y)) => x.full_name() == y.full_name(),
        (x, y) => x == y,
    }
}

fn string_field(msg: &DynamicMessage, name: &str) -> Option<String> {
    msg.get_field_by_name(name)?.as_str().map(str::to_owned)
}

fn int_field(msg: &DynamicMessage, name: &str) -> Option<i64> {
    let v = msg.get_field_by_name(name)?;
    match v.as_ref() {
        Value::I32(n) => Some(i64::from(*n)),
        Value::I64(n) => Some(*n),
        Value::U32(n) => Some(i64::from(*n)),
        Value::U64(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

/// Copies every field `src` has over `dst`, merging into singular messages
/// both have (but not well-known types, whose parts belong together), so a
/// partial request resource keeps the generated rest of its nested parts.
fn overlay(dst: &mut DynamicMessage, src: &DynamicMessage) {
    for (f, v) in src.fields() {
        let nested = matches!(f.kind(), Kind::Message(m) if !is_well_known(&m));
        if nested
            && !f.is_list()
            && !f.is_map()
            && dst.has_field(&f)
            && let (Some(d), Some(s)) = (dst.get_field_mut(&f).as_message_mut(), v.as_message())
        {
            overlay(d, s);
            continue;
        }
        put(dst, &f, v.clone());
    }
}

/// Copies every field `dst` lacks from `src`, recursing into set singular
/// messages (but not well-known types, whose parts belong together).
fn merge_unset(dst: &mut DynamicMessage, src: &DynamicMessage) {
    let desc = dst.descriptor();
    for f in desc.fields() {
        if dst.has_field(&f) {
            let nested = matches!(f.kind(), Kind::Message(m) if !is_well_known(&m));
            if nested && !f.is_list() && !f.is_map() && src.has_field(&f) {
                let from = src.get_field(&f);
                if let (Some(d), Some(s)) =
                    (dst.get_field_mut(&f).as_message_mut(), from.as_message())
                {
                    merge_unset(d, s);
                }
            }
            continue;
        }
        if let Some(o) = f.containing_oneof()
            && !o.is_synthetic()
            && o.fields().any(|x| dst.has_field(&x))
        {
            continue;
        }
        if src.has_field(&f) {
            put(dst, &f, src.get_field(&f).into_owned());
        }
    }
}

const TOKEN_PREFIX: &str = "pg1:";

/// An opaque page token for an offset.
fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let s = std::str::from_utf8(&raw).ok()?;
    // A cap keeps `offset + size` far from overflow.
    s.strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
        .filter(|n| *n < 1_000_000_000)
}

/// FieldMask paths: one or two proto3-JSON-safe field names of the first
/// singular message field next to the mask (UpdateBookRequest.book).
fn mask_paths(owner: Option<&MessageDescriptor>, rng: &mut ChaCha8Rng) -> Vec<Value> {
    let target = owner.and_then(|o| {
        o.fields().find_map(|f| match f.kind() {
            Kind::Message(m) if !f.is_list() && !is_well_known(&m) => Some(m),
            _ => None,
        })
    });
    let Some(target) = target else {
        return Vec::new();
    };
    // Names that survive the lowerCamel round trip of the JSON form.
    let names: Vec<String> = target
        .fields()
        .map(|f| f.name().to_owned())
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !n.contains("__")
                && !n.ends_with('_')
                && n.split('_')
                    .skip(1)
                    .all(|w| w.starts_with(|c: char| c.is_ascii_lowercase()))
        })
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    let start = rng.random_range(0..names.len());
    let take = rng.random_range(1..=2).min(names.len());
    (0..take)
        .map(|i| Value::String(names[(start + i) % names.len()].clone()))
        .collect()
}

/// A small google.protobuf.Value: a string, a number or a bool.
fn json_value(desc: &MessageDescriptor, rng: &mut ChaCha8Rng) -> DynamicMessage {
    let mut v = DynamicMessage::new(desc.clone());
    match rng.random_range(0..3) {
        0 => set(&mut v, "string_value", Value::String(lower_word(rng))),
        1 => set(
            &mut v,
            "number_value",
            Value::F64(f64::from(rng.random_range(0..100_000)) / 100.0),
        ),
        _ => set(&mut v, "bool_value", Value::Bool(rng.random_bool(0.5))),
    }
    v
}

fn int_for(name: &str, wide: bool, signed: bool, rng: &mut ChaCha8Rng) -> i64 {
    let n = name.to_ascii_lowercase();
    let toks: Vec<&str> = words(&n).collect();
    let last = toks.last().copied().unwrap_or("");
    let first = toks.first().copied().unwrap_or("");
    let has = |t: &str| toks.contains(&t);
    let last_in = |list: &[&str]| list.contains(&last);
    if last_in(&["time", "at", "timestamp", "epoch"]) || has("unix") {
        let secs = rng.random_range(TIME_FROM..TIME_TO);
        return if wide && (has("ms") || has("millis")) {
            secs * 1000 + rng.random_range(0..1000)
        } else {
            secs
        };
    }
    if last_in(&["ms", "millis", "latency"]) {
        return rng.random_range(1..=5000);
    }
    if last_in(&["seconds", "secs", "duration", "timeout", "ttl", "interval"]) {
        return rng.random_range(1..=3600);
    }
    if last == "id" || last == "ids" {
        return if wide {
            rng.random_range(1..=9_999_999)
        } else {
            rng.random_range(1..=99_999)
        };
    }
    if toks.iter().any(|t| MONEY_WORDS.contains(t)) && !has("count") {
        return if has("micros") && wide {
            rng.random_range(1..=50_000) * 10_000
        } else if has("cents") || has("micros") {
            rng.random_range(100..=50_000)
        } else {
            rng.random_range(1..=500)
        };
    }
    let (lo, hi) = match (n.as_str(), last) {
        ("page_count" | "num_pages", _) | (_, "pages") => (24, 1200),
        ("page_size", _) => (10, 50),
        ("page" | "page_number", _) => (1, 20),
        (_, "age") => (18, 90),
        (_, "rating" | "stars") => (1, 5),
        (_, "score" | "percent" | "percentage" | "progress") => (0, 100),
        (_, "year") => (1950, 2025),
        (_, "month") => (1, 12),
        (_, "day") => (1, 28),
        (_, "hour" | "hours") => (0, 23),
        (_, "minute" | "minutes" | "second") => (0, 59),
        (_, "port") => (1024, 65535),
        (_, "width" | "height") => (100, 1920),
        (_, "priority" | "level" | "rank" | "position" | "order" | "index" | "weight") => (1, 10),
        (_, "version" | "revision" | "generation") => (1, 20),
        _ if last_in(&[
            "count", "counts", "total", "totals", "quantity", "qty", "size", "length",
        ]) || first == "num"
            || first == "total" =>
        {
            (0, 500)
        }
        // Signed encodings hint at negatives; zero would read as unset.
        _ if signed => {
            let n = rng.random_range(1..=1000);
            return if rng.random_bool(0.5) { -n } else { n };
        }
        _ if wide => (1, 100_000),
        _ => (1, 1000),
    };
    rng.random_range(lo..=hi)
}

fn to_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn float_for(name: &str, rng: &mut ChaCha8Rng) -> f64 {
    let n = name.to_ascii_lowercase();
    let toks: Vec<&str> = words(&n).collect();
    let last = toks.last().copied().unwrap_or("");
    let hundredths =
        |rng: &mut ChaCha8Rng, lo: i32, hi: i32| f64::from(rng.random_range(lo..=hi)) / 100.0;
    if toks.iter().any(|t| MONEY_WORDS.contains(t)) {
        return hundredths(rng, 100, 50_000);
    }
    match last {
        "rating" | "stars" => f64::from(rng.random_range(10..=50)) / 10.0,
        "lat" | "latitude" => f64::from(rng.random_range(-90_000_000..=90_000_000)) / 1e6,
        "lng" | "lon" | "long" | "longitude" => {
            f64::from(rng.random_range(-180_000_000..=180_000_000)) / 1e6
        }
        "percent" | "percentage" | "progress" | "score" => {
            f64::from(rng.random_range(0..=1000)) / 10.0
        }
        "ratio" | "probability" | "confidence" | "fraction" | "share" => hundredths(rng, 0, 100),
        "temperature" | "temp" => f64::from(rng.random_range(-100..=400)) / 10.0,
        "weight" | "height" | "width" | "length" | "distance" | "size" => {
            hundredths(rng, 10, 10_000)
        }
        _ => hundredths(rng, 1, 100_000),
    }
}

fn bool_for(name: &str, rng: &mut ChaCha8Rng) -> bool {
    let negative = [
        "deleted",
        "archived",
        "disabled",
        "blocked",
        "banned",
        "locked",
        "hidden",
        "suspended",
        "spam",
        "expired",
        "failed",
        "error",
        "deprecated",
    ];
    let positive = [
        "available",
        "enabled",
        "active",
        "verified",
        "published",
        "visible",
        "public",
        "valid",
        "success",
    ];
    if words(name).any(|w| negative.contains(&w)) {
        rng.random_bool(0.1)
    } else if words(name).any(|w| positive.contains(&w)) {
        rng.random_bool(0.8)
    } else {
        rng.random_bool(0.5)
    }
}

fn bytes_for(name: &str, rng: &mut ChaCha8Rng) -> Vec<u8> {
    if words(name).any(is_image_word) {
        return TINY_PNG.to_vec();
    }
    let n = rng.random_range(4..=16);
    (0..n).map(|_| rng.random::<u8>()).collect()
}

/// Any value of `e` but a zero `*_UNSPECIFIED`/`*_UNKNOWN` one.
fn pick_enum(e: &EnumDescriptor, rng: &mut ChaCha8Rng) -> i32 {
    let unspecified = |name: &str| {
        let n = name.to_ascii_uppercase();
        n == "UNSPECIFIED"
            || n == "UNKNOWN"
            || n.ends_with("_UNSPECIFIED")
            || n.ends_with("_UNKNOWN")
    };
    let mut numbers: Vec<i32> = e
        .values()
        .filter(|v| !(v.number() == 0 && unspecified(v.name())))
        .map(|v| v.number())
        .collect();
    if numbers.is_empty() {
        numbers = e.values().map(|v| v.number()).collect();
    }
    if numbers.is_empty() {
        return 0;
    }
    numbers[rng.random_range(0..numbers.len())]
}

fn pick<'a>(list: &[&'a str], rng: &mut ChaCha8Rng) -> &'a str {
    if list.is_empty() {
        return "";
    }
    list[rng.random_range(0..list.len())]
}

fn lower_word(rng: &mut ChaCha8Rng) -> String {
    let w: String = Word().fake_with_rng(rng);
    w.to_lowercase()
}

fn domain_suffix(rng: &mut ChaCha8Rng) -> String {
    DomainSuffix().fake_with_rng(rng)
}

/// A short title-cased phrase (`Adaptive Zero Tolerance Hub`).
fn title(rng: &mut ChaCha8Rng) -> String {
    let phrase: String = CatchPhrase().fake_with_rng(rng);
    phrase
        .split(' ')
        .map(capitalize)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A capitalized lorem sentence with its full stop.
fn sentence(rng: &mut ChaCha8Rng) -> String {
    let s: String = Sentence(4..10).fake_with_rng(rng);
    capitalize(&s)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A hyphenated ISBN-13 with a valid check digit (fake's can hyphenate
/// badly).
fn isbn13(rng: &mut ChaCha8Rng) -> String {
    let mut digits = vec![9u32, 7, 8];
    digits.extend((0..9).map(|_| rng.random_range(0..10u32)));
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let s: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &s[..3],
        &s[3..4],
        &s[4..8],
        &s[8..12],
        &s[12..]
    )
}

fn token(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(12..=18);
    let bytes: Vec<u8> = (0..n).map(|_| rng.random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `BookReview` → `book_review`.
pub(crate) fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `BookReview` or `book_reviews` → `bookReview`/`bookReviews`.
fn lower_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for (i, c) in s.chars().enumerate() {
        if c == '_' {
            upper = !out.is_empty();
        } else if i == 0 {
            out.push(c.to_ascii_lowercase());
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `genre` → `Genre`, `book_review` → `BookReview`.
fn pascal_case(s: &str) -> String {
    words(s).map(capitalize).collect()
}

/// The singular of a snake_case name's last word (`authors` → `author`).
fn singularize(name: &str) -> String {
    let (head, last) = match name.rsplit_once('_') {
        Some((h, l)) => (format!("{h}_"), l),
        None => (String::new(), name),
    };
    let one = if last == "people" {
        "person".to_owned()
    } else if last == "children" {
        "child".to_owned()
    } else if let Some(s) = last.strip_suffix("ies") {
        format!("{s}y")
    } else if let Some(s) = ["sses", "xes", "zes", "ches", "shes"]
        .iter()
        .find_map(|suf| last.strip_suffix(suf).map(|s| (s, &suf[..suf.len() - 2])))
        .map(|(s, keep)| format!("{s}{keep}"))
    {
        s
    } else if last.ends_with('s')
        && !["ss", "us", "is"].iter().any(|e| last.ends_with(e))
        && last.len() > 1
    {
        last[..last.len() - 1].to_owned()
    } else {
        last.to_owned()
    };
    format!("{head}{one}")
}

/// What the keys of a map named `name` describe: the part after `_by_`
/// (`price_by_currency`), the words before the last (`genre_counts`), or
/// the singular name (`labels` → `label`).
fn map_key_hint(name: &str) -> String {
    if let Some((_, after)) = name.split_once("_by_") {
        return after.to_owned();
    }
    match name.rsplit_once('_') {
        Some((head, _)) => head.to_owned(),
        None => singularize(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_singulars() {
        assert_eq!(pluralize("shelf"), "shelves");
        assert_eq!(pluralize("book"), "books");
        assert_eq!(pluralize("box"), "boxes");
        assert_eq!(pluralize("key"), "keys");
        assert_eq!(pluralize("person"), "people");
        assert_eq!(pluralize("knife"), "knives");
        assert_eq!(singularize("authors"), "author");
        assert_eq!(singularize("categories"), "category");
        assert_eq!(singularize("addresses"), "address");
        assert_eq!(singularize("book_authors"), "book_author");
        assert_eq!(singularize("status"), "status");
        assert_eq!(lower_camel("book_reviews"), "bookReviews");
        assert_eq!(lower_camel("BookReview"), "bookReview");
        assert_eq!(snake_case("GetBookCover"), "get_book_cover");
        assert_eq!(pascal_case("genre"), "Genre");
    }

    #[test]
    fn classify_by_name() {
        assert_eq!(classify("email"), Text::Email);
        assert_eq!(classify("contact_email"), Text::Email);
        assert_eq!(classify("website"), Text::Website);
        assert_eq!(classify("avatar_url"), Text::ImageUrl);
        assert_eq!(classify("book_id"), Text::Uuid);
        assert_eq!(classify("publish_time"), Text::Timestamp);
        assert_eq!(classify("created_at"), Text::Timestamp);
        assert_eq!(classify("birth_date"), Text::Date);
        assert_eq!(classify("next_page_token"), Text::Token);
        assert_eq!(classify("publisher"), Text::Company);
        assert_eq!(classify("author"), Text::Person);
        assert_eq!(classify("user"), Text::Username);
        assert_eq!(classify("name"), Text::Name);
        assert_eq!(classify("other_shelf_name"), Text::NameOf);
        assert_eq!(classify("ip_address"), Text::Ip);
        assert_eq!(classify("street_address"), Text::Address);
        assert_eq!(classify("postal_code"), Text::PostalCode);
        assert_eq!(classify("theme"), Text::Words);
        assert_eq!(classify("label"), Text::Word);
    }

    #[test]
    fn timestamps_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(TIME_FROM), "2021-01-01T00:00:00Z");
        assert_eq!(rfc3339(TIME_TO), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(42)), Some(42));
        assert_eq!(decode_token("garbage"), None);
    }

    #[test]
    fn hash_is_stable() {
        // FNV-1a 64 reference values.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
