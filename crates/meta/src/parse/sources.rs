//! Where a torrent says its data can be fetched: trackers (`announce`,
//! `announce-list`, BEP 12) and web seeds (`url-list`, BEP 19). Unusable
//! entries are skipped, never fatal: they only cost a source.

use bencode::{Value, ValueKind};

pub(super) fn parse_trackers(top: &Value<'_>) -> Vec<Vec<String>> {
    let tiers: Vec<Vec<String>> = top
        .get("announce-list")
        .and_then(Value::as_list)
        .map(|tiers| {
            tiers
                .iter()
                .filter_map(Value::as_list)
                .map(|tier| {
                    tier.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|tier| !tier.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !tiers.is_empty() {
        return tiers;
    }
    // BEP 12: `announce` is used only when there is no usable announce-list.
    top.get("announce")
        .and_then(Value::as_str)
        .filter(|url| !url.is_empty())
        .map(|url| vec![vec![url.to_owned()]])
        .unwrap_or_default()
}

pub(super) fn parse_web_seeds(top: &Value<'_>) -> Vec<String> {
    match top.get("url-list") {
        Some(v) => match &v.kind {
            ValueKind::Bytes(_) => v
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
            ValueKind::List(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}
