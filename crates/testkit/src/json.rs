//! Reading the JSON that shoal prints (`--json` events, `inspect` output)
//! so that a missing field fails loudly instead of reading as `null`.

use serde_json::Value;

/// `object[key]`, panicking (with the whole object) when the key is absent,
/// so that a missing field cannot pass for an expected `null`.
pub fn field<'a>(object: &'a Value, key: &str) -> &'a Value {
    object
        .get(key)
        .unwrap_or_else(|| panic!("no {key:?} in {object:#}"))
}

/// A `files` array of `{"path", "size"}` objects as comparable pairs.
pub fn file_list(files: &Value) -> Vec<(String, u64)> {
    let entries = files
        .as_array()
        .unwrap_or_else(|| panic!("files is not an array: {files:#}"));
    entries
        .iter()
        .map(|entry| {
            let path = field(entry, "path").as_str();
            let size = field(entry, "size").as_u64();
            match (path, size) {
                (Some(path), Some(size)) => (path.to_owned(), size),
                _ => panic!("malformed file entry: {entry:#}"),
            }
        })
        .collect()
}
