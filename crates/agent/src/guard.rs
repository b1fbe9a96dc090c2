//! Who may talk to the API. A web page the user visits can make the
//! browser send requests to 127.0.0.1, so:
//! * the `Host` header must name the loopback address and our port: a page
//!   on `attacker.example` that rebinds its DNS name to 127.0.0.1 still
//!   sends `Host: attacker.example` and is refused (DNS rebinding);
//! * every `/v1/` endpoint, reads included (the release list is the
//!   customer's download history), needs the per-install token, which only
//!   the user's own programs (and the agent's own web UI) know, and must
//!   not come from another origin's page;
//! * the exceptions are the web UI's page and script (`/`, `/shoal.js`,
//!   no data in them), the hand-off (`/v1/handoff`), which a publisher's
//!   page calls without a token and whose handler admits only origins the
//!   release's signed manifest lists (see `handoff.rs`), and the stream
//!   (`/v1/stream/SECRET`), whose 128-bit secret is its own credential.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::token::same_token;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-shoal-token";
/// The path a page may call without the token.
const HANDOFF_PATH: &str = "/v1/handoff";
/// Streams: the secret in the path is the credential.
const STREAM_PREFIX: &str = "/v1/stream/";

/// What the guard checks against.
#[derive(Debug, Clone)]
pub struct Guard {
    /// `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`.
    allowed_hosts: Vec<String>,
    /// The same, as the origins of the agent's own web UI.
    own_origins: Vec<String>,
    token: String,
}

impl Guard {
    pub fn new(port: u16, token: String) -> Guard {
        let allowed_hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|host| format!("{host}:{port}"))
            .collect();
        Guard {
            own_origins: allowed_hosts
                .iter()
                .map(|host| format!("http://{host}"))
                .collect(),
            allowed_hosts,
            token,
        }
    }

    /// A request with no `Origin` is not from a page (curl, the CLI); one
    /// with ours is the web UI.
    fn origin_allowed(&self, origin: Option<&str>) -> bool {
        origin.is_none_or(|origin| {
            self.own_origins
                .iter()
                .any(|own| own.eq_ignore_ascii_case(origin))
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }
}

/// Middleware: refuses a request before any handler sees it.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !guard.host_allowed(host) {
        return refuse(format!(
            "the agent answers only requests addressed to {}; this one was for {host:?}",
            guard.allowed_hosts.join(", ")
        ));
    }
    if !is_public(request.method(), request.uri().path()) {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .map(|value| value.to_str().unwrap_or("invalid"));
        if !guard.origin_allowed(origin) {
            return refuse(format!(
                "a page on {} may not change the agent's state",
                origin.unwrap_or_default()
            ));
        }
        let given = request
            .headers()
            .get(TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !same_token(&guard.token, given) {
            return refuse(
                "this request needs the X-Shoal-Token header with the token from the file \
                 api-token in the agent's state folder (`shoal agent ui` prints a link \
                 to the web UI that carries it)"
                    .to_owned(),
            );
        }
    }
    next.run(request).await
}

/// The requests served without the token: the web UI's static files, a
/// page's hand-off and its stream.
fn is_public(method: &Method, path: &str) -> bool {
    let read = matches!(*method, Method::GET | Method::HEAD);
    (read && (matches!(path, "/" | "/shoal.js") || path.starts_with(STREAM_PREFIX)))
        || (path == HANDOFF_PATH && matches!(*method, Method::POST | Method::OPTIONS))
}

fn refuse(message: String) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_with_our_port_are_allowed() {
        let guard = Guard::new(6880, "t".into());
        for host in [
            "127.0.0.1:6880",
            "localhost:6880",
            "LOCALHOST:6880",
            "[::1]:6880",
        ] {
            assert!(guard.host_allowed(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:6880",
            "127.0.0.1",
            "127.0.0.1:6881",
            "localhost.attacker.example:6880",
            "",
        ] {
            assert!(!guard.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn only_static_files_the_hand_off_and_streams_go_without_the_token() {
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/shoal.js"),
            (Method::POST, "/v1/handoff"),
            (Method::OPTIONS, "/v1/handoff"),
            (Method::GET, "/v1/stream/abc"),
            (Method::HEAD, "/v1/stream/abc"),
        ] {
            assert!(is_public(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/v1/releases"),
            (Method::GET, "/v1/settings"),
            (Method::GET, "/v1/handoff"),
            (Method::POST, "/v1/releases"),
            (Method::POST, "/v1/stream/abc"),
            (Method::GET, "/v1/unknown"),
            (Method::GET, "/index.html"),
        ] {
            assert!(!is_public(&method, path), "{method} {path}");
        }
    }

    #[test]
    fn only_our_own_pages_or_no_page_may_change_state() {
        let guard = Guard::new(6880, "t".into());
        assert!(guard.origin_allowed(None));
        assert!(guard.origin_allowed(Some("http://127.0.0.1:6880")));
        assert!(guard.origin_allowed(Some("http://localhost:6880")));
        assert!(!guard.origin_allowed(Some("http://127.0.0.1:6881")));
        assert!(!guard.origin_allowed(Some("https://attacker.example")));
        assert!(!guard.origin_allowed(Some("null")));
    }
}
