//! Safe-path checks: a name that passes can never leave the folder it is
//! joined to, on this platform's path rules, and is within the limits; a
//! path of '/'-separated names passes only if each name does.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use meta::path::{check_component, component_from_bytes, SafePath, MAX_COMPONENT_BYTES, MAX_DEPTH};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = component_from_bytes(data) else {
        assert!(std::str::from_utf8(data).is_err());
        return;
    };
    if check_component(&name).is_ok() {
        assert!(!name.is_empty() && name.len() <= MAX_COMPONENT_BYTES);
        assert!(name != "." && name != "..");
        assert!(!name.contains(['/', '\\', '\0', ':']));
        let joined = Path::new("root").join(&name);
        let mut parts = joined.components();
        assert_eq!(parts.next(), Some(Component::Normal("root".as_ref())));
        assert_eq!(parts.next(), Some(Component::Normal(name.as_ref())));
        assert_eq!(parts.next(), None);
    }
    let components: Vec<String> = name.split('/').map(str::to_owned).collect();
    let every_name_safe = components.iter().all(|c| check_component(c).is_ok());
    match SafePath::new(components.clone()) {
        Ok(path) => {
            assert!(every_name_safe && components.len() <= MAX_DEPTH);
            let root = Path::new("out");
            let full = path.under(root);
            assert!(full.starts_with(root));
            assert!(full.components().all(|c| matches!(c, Component::Normal(_))));
            assert_eq!(full.components().count(), components.len() + 1);
            assert_eq!(path.to_string(), name);
        }
        Err(err) => {
            assert!(!every_name_safe || components.len() > MAX_DEPTH);
            // Errors quote the entry in a bounded form.
            assert!(err.entry.chars().count() <= 80 * 10);
        }
    }
});
