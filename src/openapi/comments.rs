//! Descriptions from proto comments. The loader keeps the leading and
//! trailing comments of messages, fields, enums, services and methods
//! (`descriptors::source_info`); here they are indexed by location path,
//! once per file, when a document is built.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, FileDescriptor};

/// Comments of every file of a pool, by file name and location path.
#[derive(Debug, Default)]
pub struct Comments {
    files: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Comments {
    /// Indexes the comments of every file in `pool`.
    pub fn new(pool: &DescriptorPool) -> Comments {
        let files = pool
            .files()
            .map(|f| (f.name().to_string(), index(&f)))
            .collect();
        Comments { files }
    }

    /// The comment of the element at `path` in `file` (leading, then
    /// trailing), trimmed; `None` when it has none.
    pub fn get(&self, file: &FileDescriptor, path: &[i32]) -> Option<&str> {
        self.files.get(file.name())?.get(path).map(String::as_str)
    }
}

fn index(file: &FileDescriptor) -> HashMap<Vec<i32>, String> {
    let Some(info) = &file.file_descriptor_proto().source_code_info else {
        return HashMap::new();
    };
    info.location
        .iter()
        .filter_map(|l| {
            let text = clean(l.leading_comments(), l.trailing_comments());
            (!text.is_empty()).then(|| (l.path.clone(), text))
        })
        .collect()
}

/// Leading and trailing comments joined, each line stripped of the one
/// space protoc leaves after `//`, blank edges dropped.
fn clean(leading: &str, trailing: &str) -> String {
    let lines = |s: &str| -> String {
        let kept: Vec<&str> = s
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
            .collect();
        kept.join("\n").trim().to_string()
    };
    let (l, t) = (lines(leading), lines(trailing));
    match (l.is_empty(), t.is_empty()) {
        (false, false) => format!("{l}\n\n{t}"),
        (false, true) => l,
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn joins_and_strips_comment_lines() {
        assert_eq!(
            clean(" A shelf.\n Holds books.\n", ""),
            "A shelf.\nHolds books."
        );
        assert_eq!(clean("", " trailing\n"), "trailing");
        assert_eq!(clean(" a\n", " b\n"), "a\n\nb");
        assert_eq!(clean("\n", ""), "");
    }
}
