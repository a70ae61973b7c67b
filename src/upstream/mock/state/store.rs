//! The store's data: resources by creation order and by name, and the ids
//! handed out under each collection.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Inner {
    /// Creation order: every resource under the sequence number it got.
    pub(super) by_seq: BTreeMap<u64, Entry>,
    pub(super) by_name: HashMap<String, u64>,
    pub(super) last_seq: u64,
    /// The last number handed out as an id under `{parent}/{collection}`.
    pub(super) last_id: HashMap<String, u64>,
    /// The last id a batch answer handed out (see [`fill_ids`]).
    pub(super) last_batch_id: u64,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) resource: DynamicMessage,
}

impl Inner {
    /// Stores a new resource called `name`, filling what it leaves unset;
    /// ALREADY_EXISTS when the name is taken.
    pub(super) fn add(
        &mut self,
        res: &MessageDescriptor,
        name: String,
        mut resource: DynamicMessage,
        request: &DynamicMessage,
        generator: &Generator,
        key: &[u8],
    ) -> Result<DynamicMessage, Status> {
        if self.by_name.contains_key(&name) {
            return Err(Status::already_exists(format!(
                "{} {name:?} already exists",
                res.name()
            )));
        }
        generator.fill_unset(&mut resource, request, &[key, name.as_bytes()].concat());
        set(&mut resource, "name", Value::String(name.clone()));
        stamp(&mut resource, &["create_time", "update_time"]);
        self.insert(name, resource.clone());
        Ok(resource)
    }

    pub(super) fn insert(&mut self, name: String, resource: DynamicMessage) {
        self.last_seq += 1;
        self.by_name.insert(name.clone(), self.last_seq);
        self.by_seq.insert(self.last_seq, Entry { name, resource });
    }

    pub(super) fn remove(&mut self, seq: u64) -> Option<DynamicMessage> {
        let entry = self.by_seq.remove(&seq)?;
        self.by_name.remove(&entry.name);
        Some(entry.resource)
    }

    /// The resource called `name`, when it is of type `res`.
    pub(super) fn find(&self, res: &MessageDescriptor, name: &str) -> Option<&Entry> {
        let entry = self.by_seq.get(self.by_name.get(name)?)?;
        (entry.resource.descriptor().full_name() == res.full_name()).then_some(entry)
    }

    /// `{prefix}/{n}` for the next number `n` nobody has taken.
    pub(super) fn free_name(&mut self, prefix: &str) -> String {
        let last = self.last_id.entry(prefix.to_owned()).or_insert(0);
        loop {
            *last += 1;
            let name = format!("{prefix}/{last}");
            if !self.by_name.contains_key(&name) {
                return name;
            }
        }
    }
}
