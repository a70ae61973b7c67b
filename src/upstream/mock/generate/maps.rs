//! Map fields: how many entries, and keys that fit the map's name (label
//! words, an enum's value names, countries, …).

use std::collections::HashMap;

use fake::rand::RngExt;
use prost_reflect::{Kind, MapKey, MessageDescriptor, Value};
use rand_chacha::ChaCha8Rng;

use super::formats::lower_word;
use super::names::{LABEL_WORDS, Text, classify, map_key_hint, pascal_case};
use super::scalars::pick_enum;
use super::{Draw, Site};

impl Draw {
    pub(super) fn map(
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

    pub(super) fn map_key(
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
}
