//! Accepting connections without spinning. When `accept` fails (out of
//! file descriptors (EMFILE) or memory, a reset in the backlog), trying
//! again at once fails again: the loop would burn a core. Every listener
//! of shoal's (the peer port, the agent's API) waits instead, longer each
//! time, up to a second.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

const FIRST_WAIT: Duration = Duration::from_millis(10);
const LONGEST_WAIT: Duration = Duration::from_secs(1);

/// The wait before the next try, doubled by each failure in a row.
#[derive(Debug)]
pub struct AcceptBackoff {
    wait: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff { wait: FIRST_WAIT }
    }
}

impl AcceptBackoff {
    /// The next connection on `listener`; `what` names it in the warning
    /// logged when accepting starts to fail. Cancel-safe.
    pub async fn accept(&mut self, listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
        loop {
            match listener.accept().await {
                Ok(accepted) => {
                    self.wait = FIRST_WAIT;
                    return accepted;
                }
                Err(e) => {
                    if self.wait == FIRST_WAIT {
                        tracing::warn!("cannot accept {what}: {e}; retrying");
                    }
                    tokio::time::sleep(self.wait).await;
                    self.wait = (self.wait * 2).min(LONGEST_WAIT);
                }
            }
        }
    }
}
