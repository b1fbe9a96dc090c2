//! A page's offer of a release (`POST /v1/handoff`) and the browser's
//! acceptance of it (opening the stream URL as a download). See
//! `handoff/` for the rules; this is where they meet the releases.
//!
//! The offer checks everything that can be checked without costing the
//! customer disk or bandwidth (the torrent, its signature, the origin, the
//! addresses it names) and keeps the torrent pending in memory. The
//! release is added and started only when its stream is opened as a
//! browser download. A hand-off never changes a release already in the
//! agent: one that streams as it is (running, or complete on disk) is
//! streamed; any other (paused, failed) is refused, and the page falls
//! back to the origin.
//!
//! A hand-off streams one file: the release's only one, or, for a release
//! of several files, the one the page's link names (`data-shoal-file`,
//! matched by `handoff::choose_file`). The whole release is fetched and
//! shared as usual; the stream URL is bound to that one file.

use engine::address_policy::is_public;

use crate::handoff::{self, Admission, Offer, StreamTarget};
use crate::release::{Live, Release};
use crate::releases::{AddedBy, Releases};
use crate::runner::lock;
use crate::source;
use crate::state::unix_now;
use crate::stream::StreamSource;
use crate::AgentError;

/// What a page's hand-off gets: where the browser downloads the file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HandoffAnswer {
    /// The path of the stream URL, `/v1/stream/SECRET`.
    pub stream_path: String,
    pub info_hash: String,
    /// The name the browser saves the file under: its base name.
    pub name: String,
    /// The file's length in bytes.
    pub size: u64,
    /// The release's name (its folder, for a release of several files).
    pub release: String,
    /// The file's path inside the release, `/`-separated.
    pub file: String,
}

/// A stream's source (none for a HEAD request), the file's name and
/// its length.
#[derive(Debug)]
pub struct StreamPlan {
    pub source: Option<StreamSource>,
    pub name: String,
    pub length: u64,
}

impl Releases {
    /// A page on `page_origin` offers the file `file` (a path inside the
    /// release, from the page's `data-shoal-file`; none for a release of
    /// one file) of the release at `torrent_url`.
    pub async fn handoff(
        &self,
        page_origin: &str,
        torrent_url: &str,
        file: Option<&str>,
    ) -> Result<HandoffAnswer, AgentError> {
        handoff::check_page_origin(page_origin, torrent_url)?;
        handoff::check_file_param(file)?;
        let slot = self.handoffs.admit(page_origin).map_err(|why| match why {
            Admission::TooMany => AgentError::TooManyHandoffs(format!(
                "{page_origin} asked for too many hand-offs this minute; \
                 its downloads go to the origin for now"
            )),
            Admission::Busy => AgentError::Busy(
                "the agent is busy checking other hand-offs; this download goes to the origin"
                    .to_owned(),
            ),
        })?;
        let fetched = source::fetch_for_page(torrent_url, page_origin).await?;
        let torrent = fetched.torrent;
        let publisher = handoff::publisher_for_origin(torrent_url, &torrent, page_origin)?;
        if !self.trusted.contains(&publisher) {
            let vouched = self
                .handoffs
                .origin_vouches(page_origin, &publisher)
                .await
                .map_err(|reason| AgentError::Fetch {
                    location: format!("{page_origin}/.well-known/shoal.json"),
                    reason,
                })?;
            if !vouched {
                return Err(AgentError::Untrusted {
                    location: torrent_url.to_owned(),
                    publisher: hex::encode(publisher),
                });
            }
        }
        let file = handoff::choose_file(&torrent, torrent_url, file)?;
        let entry = offered_file(&torrent, file).ok_or_else(|| {
            AgentError::Internal(format!(
                "file {file} of {torrent_url} was chosen but is none"
            ))
        })?;
        let (name, size, path) = (
            file_name(&torrent, entry),
            entry.length,
            entry.path.to_string(),
        );
        // Seen from here, the origin is on a local network only if the
        // torrent came from a local address; a name that resolves to one
        // but served nothing signed changes nothing.
        let origin_is_local = fetched.from.is_some_and(|addr| !is_public(addr.ip()));
        if !origin_is_local {
            handoff::check_remotes(torrent_url, &torrent).await?;
        }
        drop(slot);
        let id = source::release_id(&torrent);
        let answer = |secret: String| HandoffAnswer {
            stream_path: format!("/v1/stream/{secret}"),
            info_hash: id.clone(),
            name: name.clone(),
            size,
            release: torrent.name.clone(),
            file: path.clone(),
        };
        if let Some(release) = self.get(&id) {
            streamable(&release, &release.live())?;
            let target = StreamTarget {
                release: id.clone(),
                file,
            };
            return Ok(answer(self.handoffs.issue(target)));
        }
        self.check_name_free(&torrent.name)?;
        let answer = answer(String::new());
        let offer = Offer::new(torrent, fetched.bytes, !origin_is_local, file);
        let secret = self.handoffs.offer(offer);
        Ok(HandoffAnswer {
            stream_path: format!("/v1/stream/{secret}"),
            ..answer
        })
    }

    /// A hand-off release lands at `download_dir/NAME`: refused when
    /// something is there already, which shoal must not take over (and
    /// later delete) as its own.
    pub(crate) fn check_name_free(&self, name: &str) -> Result<(), AgentError> {
        let path = self.download_dir.join(name);
        if path.symlink_metadata().is_ok() {
            return Err(AgentError::HandoffRefused(format!(
                "{} already exists; the agent does not take over files it did not download, \
                 so this download goes to the origin",
                path.display()
            )));
        }
        Ok(())
    }

    /// What the stream `secret` serves. An offer's first opening as a
    /// browser download (`opened_as_download`) adds and starts its
    /// release; a HEAD request only describes it.
    pub async fn stream(
        &self,
        secret: &str,
        head_only: bool,
        opened_as_download: bool,
    ) -> Result<StreamPlan, AgentError> {
        let unknown = || AgentError::UnknownRelease {
            id: "for this stream URL (it expired, or the release was removed)".to_owned(),
        };
        if self.handoffs.redeem(secret).is_none() {
            let described = self.handoffs.peek_offer(secret, |offer| {
                offered_file(&offer.torrent, offer.file).map(|entry| StreamPlan {
                    source: None,
                    name: file_name(&offer.torrent, entry),
                    length: entry.length,
                })
            });
            let described = described.flatten().ok_or_else(unknown)?;
            if head_only {
                return Ok(described);
            }
            if !opened_as_download {
                return Err(AgentError::Forbidden(
                    "a hand-off starts only when the browser opens its stream URL as a \
                     download (a navigation), not from a script, image or frame fetch"
                        .to_owned(),
                ));
            }
            let offer = self.handoffs.take_offer(secret).ok_or_else(unknown)?;
            let id = source::release_id(&offer.torrent);
            let target = StreamTarget {
                release: id.clone(),
                file: offer.file,
            };
            // Added since it was offered: streamed below as it is, if it can be.
            let present = self.get(&id).is_some();
            if !present {
                self.check_name_free(&offer.torrent.name)?;
                let added_by = AddedBy::Handoff {
                    public_remotes_only: offer.public_remotes_only,
                };
                match self.add_checked(offer.torrent, offer.bytes, added_by).await {
                    Ok(_) | Err(AgentError::AlreadyAdded { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            self.handoffs.bind(secret, target);
        }
        let target = self.handoffs.redeem(secret).ok_or_else(unknown)?;
        let release = self.get(&target.release).ok_or_else(unknown)?;
        let file = target.file;
        let entry = offered_file(&release.torrent, file).ok_or_else(unknown)?;
        let name = file_name(&release.torrent, entry);
        let length = entry.length;
        let mut live = release.live();
        let source = match streamable(&release, &live)? {
            Streamable::Live => live.running.as_ref().map(|running| StreamSource::Live {
                reader: running.reader(),
                file,
            }),
            Streamable::OnDisk => Some(StreamSource::OnDisk {
                path: engine::storage::file_path(&release.torrent, &live.record.out_dir, file),
            }),
        };
        if live.record.handed_off {
            live.record.last_used_at = unix_now();
        }
        drop(live);
        Ok(StreamPlan {
            source: if head_only { None } else { source },
            name,
            length,
        })
    }
}

/// How a release can be streamed without changing its state.
enum Streamable {
    Live,
    OnDisk,
}

fn streamable(release: &Release, live: &Live) -> Result<Streamable, AgentError> {
    if live.record.paused {
        return Err(AgentError::HandoffRefused(format!(
            "{} is paused in this agent; a page cannot resume it, so this download goes to \
             the origin",
            live.record.name
        )));
    }
    if live.running.as_ref().is_some_and(|r| !r.is_finished()) {
        return Ok(Streamable::Live);
    }
    if lock(&release.status).completed {
        return Ok(Streamable::OnDisk);
    }
    Err(AgentError::HandoffRefused(format!(
        "{} is stopped in this agent (see its error in the web UI); a page cannot restart it, \
         so this download goes to the origin",
        live.record.name
    )))
}

/// File `index` of `torrent`, unless it is a pad file (never streamed).
fn offered_file(torrent: &meta::Torrent, index: usize) -> Option<&meta::FileEntry> {
    torrent.files.get(index).filter(|entry| !entry.pad)
}

/// The name the browser saves the file under: the file's own base name.
fn file_name(torrent: &meta::Torrent, entry: &meta::FileEntry) -> String {
    entry
        .path
        .components()
        .last()
        .cloned()
        .unwrap_or_else(|| torrent.name.clone())
}
