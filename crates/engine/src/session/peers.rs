//! The connection table: dialling, registering handshaken connections with
//! the swarm, routing their events to it, and closing them. Which
//! connections to keep is the swarm's decision; this module only holds the
//! sockets' queues.

use std::net::SocketAddr;

use swarm::{PeerCaps, PeerKey};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wire::Handshake;

use crate::connection::{self, ConnEvent, WriterCmd};
use crate::SHOAL_PEER_ID_PREFIX;

use super::{Internal, Session};

/// Blocks queued to one peer's socket, at most: enough to keep a fast link
/// busy, few enough that a choke takes effect soon.
const UPLOADS_IN_FLIGHT: usize = 16;

pub(super) struct Conn {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub writer: mpsc::UnboundedSender<WriterCmd>,
    pub uploads_in_flight: usize,
    /// The peer id of the side that opened the connection: when two
    /// connections join the same pair of peers, both sides keep the one
    /// opened by the smaller id.
    opened_by: [u8; 20],
    peer_id: [u8; 20],
}

impl Conn {
    /// Whether another block may be queued to this socket.
    pub fn has_upload_room(&self) -> bool {
        self.uploads_in_flight < UPLOADS_IN_FLIGHT
    }
}

impl Session {
    pub(super) fn conn_of(&self, key: PeerKey) -> Option<&Conn> {
        self.keys.get(&key).and_then(|id| self.conns.get(id))
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

    pub(super) fn send(&self, key: PeerKey, bytes: Vec<u8>) {
        if let Some(conn) = self.conn_of(key) {
            let _ = conn.writer.send(WriterCmd::Bytes(bytes));
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
        let opened_by = if outgoing {
            self.handshake.peer_id
        } else {
            theirs.peer_id
        };
        // A peer that dialled us while we dialled it: one connection is
        // enough, and a second would take a slot another peer could use.
        let twin = self
            .conns
            .iter()
            .find(|(_, c)| c.peer_id == theirs.peer_id)
            .map(|(_, c)| (c.key, c.opened_by));
        if let Some((twin_key, twin_opened_by)) = twin {
            if twin_opened_by <= opened_by {
                tracing::debug!(%addr, "second connection to a connected peer dropped");
                if outgoing {
                    self.swarm.handle_connect_failed(self.now(), addr);
                }
                return;
            }
            tracing::debug!(%addr, "connection replaces its twin");
            self.close(twin_key);
        }
        let caps = PeerCaps {
            fast: theirs.reserved.fast(),
            extended: theirs.reserved.extension_protocol(),
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
                self.conns.insert(
                    id,
                    Conn {
                        key,
                        addr,
                        writer,
                        uploads_in_flight: 0,
                        opened_by,
                        peer_id: theirs.peer_id,
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
            ConnEvent::Message { conn, message } => {
                let Some(key) = self.conns.get(&conn).map(|c| c.key) else {
                    return;
                };
                if let Err(violation) = self.swarm.handle_message(now, key, &message.message()) {
                    tracing::info!(%violation, "closing connection");
                }
            }
            ConnEvent::Block { conn, block, data } => {
                let Some(key) = self.conns.get(&conn).map(|c| c.key) else {
                    return;
                };
                match self.swarm.handle_block(now, key, block) {
                    Ok(true) => self.buffer(block, &data),
                    Ok(false) => {}
                    Err(violation) => tracing::info!(%violation, "closing connection"),
                }
            }
            ConnEvent::BlockSent {
                conn,
                blocks,
                bytes,
            } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.uploads_in_flight = c.uploads_in_flight.saturating_sub(blocks);
                let key = c.key;
                self.swarm.handle_block_sent(now, key, bytes);
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
