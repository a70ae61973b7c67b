//! What a field's name says about its string value: the keyword lists,
//! the kind of string a name asks for (`Text`, `classify`) and the string
//! itself (`Draw::text`), plus the word forms of names (singular, cases).

use fake::Fake;
use fake::faker::address::en::{
    BuildingNumber, CityName, CountryCode, CountryName, PostCode, StateAbbr, StateName, StreetName,
    TimeZone,
};
use fake::faker::barcode::en::Isbn10;
use fake::faker::company::en::{CompanyName, Industry, Profession};
use fake::faker::creditcard::en::CreditCardNumber;
use fake::faker::currency::en::CurrencyCode;
use fake::faker::filesystem::en::{FileName, FilePath, MimeType, Semver};
use fake::faker::internet::en::{IPv4, MACAddress, Password, SafeEmail, UserAgent, Username};
use fake::faker::job::en::Title as JobTitle;
use fake::faker::lorem::en::Words;
use fake::faker::name::en::{FirstName, LastName, Name as PersonName};
use fake::faker::phone_number::en::PhoneNumber;
use fake::rand::RngExt;
use fake::uuid::UUIDv4;
use rand_chacha::ChaCha8Rng;

use super::formats::{domain_suffix, isbn13, lower_word, pick, rfc3339, sentence, title, token};
use super::references::{fill, resource_type};
use super::resource::{fill_pattern, is_resource, pattern_or_default};
use super::{Draw, Site};

/// BCP 47 tags for `locale`/`language` fields (fake has no locale faker).
const LOCALES: &[&str] = &[
    "en-US", "en-GB", "fr-FR", "de-DE", "es-ES", "it-IT", "ja-JP", "pt-BR", "nl-NL", "pl-PL",
];

/// 2021-01-01T00:00:00Z and 2026-01-01T00:00:00Z: timestamps fall between,
/// fixed rather than relative to now so that answers do not drift.
pub(super) const TIME_FROM: i64 = 1_609_459_200;
pub(super) const TIME_TO: i64 = 1_767_225_600;

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
pub(super) const LABEL_WORDS: &[&str] = &[
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

pub(super) fn is_image_word(w: &str) -> bool {
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

pub(super) fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split('_').filter(|w| !w.is_empty())
}

fn last_word(name: &str) -> &str {
    words(name).last().unwrap_or("")
}

/// What a string field holds, decided by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Text {
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

pub(super) fn classify(name: &str) -> Text {
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

impl Draw {
    /// A string for `site`, by name and context (see the module docs).
    pub(super) fn text(&self, site: Site<'_>, rng: &mut ChaCha8Rng) -> String {
        if let Some(name) = self.referenced_name(site, rng) {
            return name;
        }
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
                    match resource_type(owner) {
                        Some(ty) => fill(&self.types.pattern(&ty), &self.bindings, rng),
                        None => fill_pattern(&pattern_or_default(owner), None, rng),
                    }
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
}

/// What the keys of a map named `name` describe: the part after `_by_`
/// (`price_by_currency`), the words before the last (`genre_counts`), or
/// the singular name (`labels` → `label`).
pub(super) fn map_key_hint(name: &str) -> String {
    if let Some((_, after)) = name.split_once("_by_") {
        return after.to_owned();
    }
    match name.rsplit_once('_') {
        Some((head, _)) => head.to_owned(),
        None => singularize(name),
    }
}

pub(super) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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
pub(super) fn lower_camel(s: &str) -> String {
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
pub(super) fn pascal_case(s: &str) -> String {
    words(s).map(capitalize).collect()
}

/// The singular of a snake_case name's last word (`authors` → `author`).
pub(super) fn singularize(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singulars_and_cases() {
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
}
