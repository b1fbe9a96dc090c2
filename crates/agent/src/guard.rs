//! Who may talk to the API. A web page the user visits can make the
//! browser send requests to 127.0.0.1, so:
//! * the `Host` header must name the loopback address and our port: a page
//!   on `attacker.example` that rebinds its DNS name to 127.0.0.1 still
//!   sends `Host: attacker.example` and is refused (DNS rebinding);
//! * anything that changes state needs the per-install token, which only
//!   the user's own programs can read from the state folder.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::token::same_token;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-shoal-token";

/// What the guard checks against.
#[derive(Debug, Clone)]
pub struct Guard {
    /// `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`.
    allowed_hosts: Vec<String>,
    token: String,
}

impl Guard {
    pub fn new(port: u16, token: String) -> Guard {
        Guard {
            allowed_hosts: ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .map(|host| format!("{host}:{port}"))
                .collect(),
            token,
        }
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
    let read_only = matches!(*request.method(), Method::GET | Method::HEAD);
    if !read_only {
        let given = request
            .headers()
            .get(TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !same_token(&guard.token, given) {
            return refuse(
                "this request changes the agent's state and needs the X-Shoal-Token header \
                 with the token from the agent's state folder"
                    .to_owned(),
            );
        }
    }
    next.run(request).await
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
}
