//! The resume file and the end of a download. Progress is saved now and
//! then while downloading (and once more on stopping), so a restart only
//! re-downloads what was not verified; a complete download is moved into
//! its final place once.

use std::path::PathBuf;

use crate::events::TorrentEvent;

use super::error::{blocking, DiskError};
use super::{Internal, Session};

impl Session {
    pub(super) fn finish(&mut self) {
        let store = self.store.clone();
        let internal = self.internal_tx.clone();
        let state = self.resume.clone();
        tokio::spawn(async move {
            let result = blocking(move || store.finish(&state)).await;
            let _ = internal.send(Internal::Finished(result)).await;
        });
    }

    /// The release is in its final place. Returns whether the session ends
    /// (unless it keeps seeding).
    pub(super) fn finished(&mut self, path: PathBuf) -> bool {
        self.finished = true;
        let progress = self.progress();
        // The tracker accounts the completion's totals.
        self.publish_totals(&progress, |t| {
            t.completed = true;
            t.left = 0;
        });
        self.emit(TorrentEvent::Completed { path, progress });
        !self.keep_seeding
    }

    pub(super) fn save_resume_if_needed(&mut self) {
        if !self.resume_dirty || self.resume_saving || self.finished {
            return;
        }
        self.resume_dirty = false;
        self.resume_saving = true;
        let store = self.store.clone();
        let state = self.resume.clone();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = blocking(move || store.save_resume(&state)).await;
            let _ = internal.send(Internal::ResumeSaved(result)).await;
        });
    }

    pub(super) fn resume_saved(&mut self, result: Result<(), DiskError>) -> Result<(), DiskError> {
        self.resume_saving = false;
        result
    }

    /// The last save, when stopping before completion; its failure is not
    /// reported (a start after it downloads again what the file lacks).
    pub(super) async fn save_resume_on_stop(&self) {
        if self.finished {
            return;
        }
        let _ = tokio::task::spawn_blocking({
            let store = self.store.clone();
            let state = self.resume.clone();
            move || store.save_resume(&state)
        })
        .await;
    }
}
