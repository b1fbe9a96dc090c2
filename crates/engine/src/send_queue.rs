//! How much a peer socket may hold that it has not sent yet.
//!
//! Our requests to a peer travel on the same TCP connection as the blocks
//! we upload to it. By default the kernel accepts as much unsent data as
//! the send buffer holds (autotuned to megabytes), and a request written
//! after it waits until all of it has crossed the uplink: measured on a
//! flash crowd with 2 MiB/s uplinks, 200 to 330 KiB unsent per connection,
//! close to a second of delay for every request, so the peers that upload
//! to us ran out of our requests and served others instead. With
//! `TCP_NOTSENT_LOWAT` the socket reports itself writable only once its
//! unsent bytes fall below [`UNSENT_LOW_WATER`]; what is not yet written
//! waits in the swarm's upload queue, where it does not delay requests.

use tokio::net::TcpStream;

/// Unsent bytes below which a peer socket takes more: two blocks, enough
/// to keep a link busy between two wake-ups of the writer (the bytes in
/// flight and the qdisc's queue are on top of this).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const UNSENT_LOW_WATER: u32 = 32 * 1024;

/// Limits the unsent bytes `stream` holds, where the platform can.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn limit_unsent(stream: &TcpStream) {
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LOW_WATER) {
        tracing::debug!(%error, "TCP_NOTSENT_LOWAT not set");
    }
}

/// Elsewhere the socket keeps its default buffering.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn limit_unsent(_stream: &TcpStream) {}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_socket_holds_little_unsent_data() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (dialled, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let stream = dialled.expect("connect");
        drop(accepted);
        limit_unsent(&stream);
        let lowat = socket2::SockRef::from(&stream)
            .tcp_notsent_lowat()
            .expect("read the option back");
        assert_eq!(lowat, UNSENT_LOW_WATER);
    }
}
