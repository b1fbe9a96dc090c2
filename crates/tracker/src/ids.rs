//! The database's row ids. The store issues them and the accounting keys
//! its reports by them; they live here so neither module depends on the
//! other for them. Public as `store::PublisherId` and `store::ReleaseId`.

pub type PublisherId = i64;
pub type ReleaseId = i64;
