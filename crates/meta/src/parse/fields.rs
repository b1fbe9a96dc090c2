//! The small fields every torrent version shares: integers, names, the
//! piece length and file lengths, each checked before it is used.

use bencode::Value;

use crate::error::TorrentError;
use crate::path::{check_component, component_from_bytes};
use crate::torrent::{MAX_PIECE_LENGTH, MIN_V2_PIECE_LENGTH};

pub(super) fn optional_int(dict: &Value<'_>, key: &str) -> Result<Option<i64>, TorrentError> {
    match dict.get(key) {
        None => Ok(None),
        Some(v) => v.as_int().map(Some).ok_or_else(|| {
            TorrentError::malformed(
                key,
                format!("expected an integer, found a {}", v.type_name()),
            )
        }),
    }
}

/// The `.utf-8` variant of a text field wins when present (old clients
/// wrote names in a local code page under the plain key).
pub(super) fn utf8_preferred<'v, 'a>(dict: &'v Value<'a>, key: &str) -> Option<&'v Value<'a>> {
    dict.get(&format!("{key}.utf-8")).or_else(|| dict.get(key))
}

pub(super) fn parse_name(info: &Value<'_>) -> Result<String, TorrentError> {
    let raw = utf8_preferred(info, "name")
        .and_then(Value::as_bytes)
        .ok_or(TorrentError::Missing { field: "info.name" })?;
    let name = component_from_bytes(raw)?;
    check_component(&name)?;
    Ok(name)
}

pub(super) fn parse_piece_length(info: &Value<'_>, has_v2: bool) -> Result<u64, TorrentError> {
    let field = "info.piece length";
    let raw = optional_int(info, "piece length")?.ok_or(TorrentError::Missing { field })?;
    let length = u64::try_from(raw)
        .map_err(|_| TorrentError::malformed(field, format!("{raw} is negative")))?;
    if length == 0 || length > MAX_PIECE_LENGTH {
        return Err(TorrentError::malformed(
            field,
            format!("{length} is not between 1 and {MAX_PIECE_LENGTH}"),
        ));
    }
    if has_v2 && (!length.is_power_of_two() || length < MIN_V2_PIECE_LENGTH) {
        return Err(TorrentError::malformed(
            field,
            format!(
                "{length} is not a power of two of at least {MIN_V2_PIECE_LENGTH}, as v2 requires"
            ),
        ));
    }
    Ok(length)
}

pub(super) fn parse_length(value: Option<&Value<'_>>, field: &str) -> Result<u64, TorrentError> {
    let value = value.ok_or_else(|| TorrentError::malformed(field, "no `length`"))?;
    let n = value
        .as_int()
        .ok_or_else(|| TorrentError::malformed(field, "`length` is not an integer"))?;
    u64::try_from(n).map_err(|_| TorrentError::malformed(field, format!("length {n} is negative")))
}

pub(super) fn add_size(total: u64, length: u64) -> Result<u64, TorrentError> {
    total
        .checked_add(length)
        .ok_or_else(|| TorrentError::malformed("info", "file sizes add up past 2^64 bytes"))
}
