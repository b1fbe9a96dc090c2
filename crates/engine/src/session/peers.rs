//! The connection table: dialling, registering handshaken connections with
//! the swarm, routing their events to it, and closing them. Which
//! connections to keep is the swarm's decision; this module only holds the
//! sockets' queues.

use std::net::SocketAddr;

use swarm::{PeerCaps, PeerKey};
use tokio::net::TcpStream;
use wire::{Handshake, Message};

use crate::announcer::TrackerAnswer;
use crate::connection::{self, ConnEvent, Incoming};
use crate::SHOAL_PEER_ID_PREFIX;

use super::{Conn, Internal, Session};

impl Session {
    pub(super) fn conn_of(&self, key: PeerKey) -> Option<&Conn> {
        self.keys.get(&key).and_then(|id| self.conns.get(id))
    }

    /// Peers to dial, and the swarm's size, which tells the origin planner
    /// how widely its claim on unheld pieces is shared.
    pub(super) fn on_tracker_answer(&mut self, answer: TrackerAnswer) {
        let now = self.now();
        self.swarm
            .handle_tracker_answer(now, answer.peers, answer.agents);
    }

    pub(super) fn dial(&self, addr: SocketAddr) {
        let internal = self.internal_tx.clone();
        let handshake = self.handshake;
        let timeout = self.settings.connect_timeout;
        tokio::spawn(async move {
            let result = connection::dial(addr, &handshake, timeout).await;
            let _ = internal.send(Internal::Dialed { addr, result }).await;
        });
    }

    /// Queues `message` for `key`. Messages wait in the connection's
    /// outbox until the session's actions are carried out, and then go to
    /// its writer together (`flush_outboxes`): one hop per batch of
    /// requests, not one per request.
    pub(super) fn send(&mut self, key: PeerKey, message: &Message<'_>) {
        let Some(conn) = self.keys.get(&key).and_then(|id| self.conns.get_mut(id)) else {
            return;
        };
        message.encode_into(&mut conn.outbox);
        if !self.outbox_pending.contains(&key) {
            self.outbox_pending.push(key);
        }
    }

    /// Hands every connection's queued messages to its writer.
    pub(super) fn flush_outboxes(&mut self) {
        for key in std::mem::take(&mut self.outbox_pending) {
            if let Some(conn) = self.keys.get(&key).and_then(|id| self.conns.get_mut(id)) {
                conn.flush_outbox();
            }
        }
    }

    pub(super) fn close(&mut self, key: PeerKey) {
        if let Some(id) = self.keys.remove(&key) {
            // Dropping the writer's queue ends the writer, which shuts the
            // socket; the reader then ends too.
            self.conns.remove(&id);
        }
        self.swarm.handle_peer_disconnected(self.now(), key);
    }

    pub(super) fn register(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        outgoing: bool,
        theirs: &Handshake,
    ) {
        let caps = PeerCaps {
            fast: theirs.reserved.fast(),
            extended: theirs.reserved.extension_protocol(),
            peer_id: theirs.peer_id,
            origin_share_id: theirs
                .peer_id
                .starts_with(SHOAL_PEER_ID_PREFIX)
                .then(|| swarm::origin_share_id(&theirs.peer_id)),
        };
        match self
            .swarm
            .handle_peer_connected(self.now(), addr, outgoing, caps)
        {
            Ok(key) => {
                let id = self.next_conn;
                self.next_conn += 1;
                let _ = stream.set_nodelay(true);
                let writer = connection::start(stream, id, self.conn_context.clone());
                let outbox = Vec::new();
                self.conns.insert(
                    id,
                    Conn {
                        key,
                        addr,
                        writer,
                        outbox,
                    },
                );
                self.keys.insert(key, id);
            }
            Err(reason) => tracing::debug!(%addr, ?reason, "refused peer"),
        }
    }

    pub(super) fn on_conn_event(&mut self, event: ConnEvent) {
        let now = self.now();
        match event {
            ConnEvent::Received { conn, items } => {
                for item in items {
                    // A violation may close the connection mid-batch: the
                    // rest of its messages are then dropped.
                    let Some(key) = self.conns.get(&conn).map(|c| c.key) else {
                        return;
                    };
                    match item {
                        Incoming::Message(message) => {
                            let message = message.message();
                            if let Err(violation) = self.swarm.handle_message(now, key, &message) {
                                tracing::info!(%violation, "closing connection");
                            }
                        }
                        Incoming::Block { block, data } => {
                            match self.swarm.handle_block(now, key, block) {
                                Ok(true) => self.buffer(block, &data),
                                Ok(false) => {}
                                Err(violation) => tracing::info!(%violation, "closing connection"),
                            }
                        }
                    }
                }
            }
            ConnEvent::BlockSent {
                conn,
                blocks,
                bytes,
            } => {
                let Some(key) = self.conns.get(&conn).map(|c| c.key) else {
                    return;
                };
                self.swarm.handle_block_sent(now, key, blocks, bytes);
                self.serve_uploads(key);
            }
            ConnEvent::Closed { conn, reason } => {
                if let Some(c) = self.conns.remove(&conn) {
                    tracing::debug!(peer = %c.addr, %reason, "connection closed");
                    self.keys.remove(&c.key);
                    self.swarm.handle_peer_disconnected(now, c.key);
                }
            }
        }
    }
}
