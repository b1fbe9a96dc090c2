//! The publisher's dashboard: one server-rendered page (no script) with
//! totals, the offload percentage, a per-day chart and per-release rows.
//! The token is entered once in a form and kept in an HttpOnly,
//! SameSite=Strict cookie (Secure when served over HTTPS), so it is not in
//! URLs or browser history. The login refuses a form posted from another
//! site (login CSRF: a page logging the victim in as the attacker), by its
//! `Origin` (or `Referer`) header. Every figure that failed a check is shown
//! as "flagged", apart from the billed ones.

use std::fmt::Write;
use std::sync::Arc;
use units::format_bytes;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::announce_query::percent_decode;
use crate::api::{
    authenticate, day_range, usage_report, ApiError, Range, Totals, UsageReport, TOKEN_COOKIE,
};
use crate::client_addr::is_https;
use crate::listener::RemoteAddr;
use crate::state::AppState;

/// Longest login form accepted: a token is 64 characters.
const MAX_LOGIN_BYTES: usize = 1024;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard", get(page))
        .route(
            "/dashboard/login",
            post(login).layer(DefaultBodyLimit::max(MAX_LOGIN_BYTES)),
        )
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/dashboard") }),
        )
}

async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> Response {
    let Some(control) = state.control.as_ref() else {
        return (StatusCode::NOT_FOUND, "open tracker: no dashboard\n").into_response();
    };
    let publisher = match authenticate(control, &headers).await {
        Ok(publisher) => publisher,
        Err(ApiError(StatusCode::UNAUTHORIZED, _)) => return Html(login_form()).into_response(),
        Err(error) => return error.into_response(),
    };
    let report = match day_range(&range) {
        Ok((from, to)) => usage_report(control, publisher, from, to).await,
        Err(error) => Err(error),
    };
    match report {
        Ok(report) => Html(render(&report)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Whether a form post came from a page of this very site: its `Origin`
/// (or, from older browsers, `Referer`) names the `Host` it was sent to.
/// A request with neither (a script, curl) is not a browser's cross-site
/// form, and is allowed.
fn same_site(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match (source, host) {
        (None, _) => true,
        (Some(source), Some(host)) => {
            let rest = source
                .strip_prefix("https://")
                .or_else(|| source.strip_prefix("http://"));
            rest.and_then(|r| r.split('/').next())
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        }
        (Some(_), None) => false,
    }
}

/// Takes `token=…` from the form and sets the cookie.
async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(RemoteAddr(remote)): ConnectInfo<RemoteAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_site(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "cross-site login refused: open the dashboard itself and log in there\n",
        )
            .into_response();
    }
    let settings = &state.settings;
    let secure = if is_https(
        remote.ip(),
        &headers,
        &settings.trusted_proxies,
        settings.public_https,
    ) {
        "; Secure"
    } else {
        ""
    };
    let token = body
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"token="))
        .and_then(|v| {
            percent_decode(
                &v.iter()
                    .map(|&b| if b == b'+' { b' ' } else { b })
                    .collect::<Vec<_>>(),
            )
        })
        .and_then(|v| String::from_utf8(v).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| {
            !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    let Some(token) = token else {
        return (StatusCode::BAD_REQUEST, Html(login_form())).into_response();
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/dashboard".to_owned()),
            (
                header::SET_COOKIE,
                format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"),
            ),
        ],
    )
        .into_response()
}

fn login_form() -> String {
    page_shell(
        "shoal — publisher dashboard",
        "<h1>Publisher dashboard</h1>\
         <form method=\"post\" action=\"/dashboard/login\">\
         <label>API token <input name=\"token\" type=\"password\" size=\"70\" autocomplete=\"off\"></label> \
         <button>Show my usage</button></form>\
         <p>The token is the one printed by <code>shoal-tracker publisher add</code>.</p>",
    )
}

fn page_shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.big{{font-size:2em;font-weight:600}}\
         .cards{{display:flex;gap:2em;margin:1em 0}}.peer{{fill:#2a7}}.origin{{fill:#d64}}</style></head>\
         <body>{body}</body></html>",
        escape(title)
    )
}

fn offload(totals: &Totals) -> String {
    totals
        .offload_percent
        .map_or_else(|| "—".to_owned(), |p| format!("{p:.1} %"))
}

pub(crate) fn render(report: &UsageReport) -> String {
    let mut body = String::new();
    let t = &report.totals;
    let _ = write!(
        body,
        "<h1>{}</h1><p>{} to {} (UTC days)</p><div class=\"cards\">\
         <div><div class=\"big\" id=\"offload\">{}</div>offload: peer bytes / (peer + origin)</div>\
         <div><div class=\"big\" id=\"peer-bytes\">{}</div>from peers</div>\
         <div><div class=\"big\" id=\"origin-bytes\">{}</div>from your origin</div>\
         <div><div class=\"big\">{}</div>from other clients (unattributed)</div>\
         <div><div class=\"big\">{}</div>completed downloads</div>\
         <div><div class=\"big\" id=\"flagged\">{}</div>flagged: reported beyond what a line could carry, never billed</div></div>",
        escape(&report.publisher),
        report.from,
        report.to,
        offload(t),
        format_bytes(t.usage.peer_bytes),
        format_bytes(t.usage.origin_bytes),
        format_bytes(t.usage.unattributed_bytes),
        t.usage.completions,
        format_bytes(t.usage.flagged_bytes),
    );
    body.push_str(&chart(report));
    body.push_str(
        "<h2>Releases</h2><table><tr><th>release</th><th>info-hash</th><th>size</th>\
         <th>from peers</th><th>from origin</th><th>unattributed</th><th>offload</th>\
         <th>completions</th><th>peer-days</th><th>flagged</th></tr>",
    );
    for r in &report.releases {
        let _ = write!(
            body,
            "<tr><td>{}{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.name),
            if r.withdrawn { " (withdrawn)" } else { "" },
            r.info_hash,
            format_bytes(r.size),
            format_bytes(r.totals.usage.peer_bytes),
            format_bytes(r.totals.usage.origin_bytes),
            format_bytes(r.totals.usage.unattributed_bytes),
            offload(&r.totals),
            r.totals.usage.completions,
            r.totals.peer_days,
            format_bytes(r.totals.usage.flagged_bytes),
        );
    }
    body.push_str("</table><p>The same data as JSON: <code>GET /api/v1/usage</code> with <code>Authorization: Bearer TOKEN</code>.</p>");
    page_shell(&format!("shoal — {}", report.publisher), &body)
}

/// Stacked bars per day: bytes from peers (green) over bytes from the
/// origin (red), as inline SVG.
fn chart(report: &UsageReport) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 160.0;
    let max = report
        .days
        .iter()
        .map(|d| {
            d.totals
                .usage
                .peer_bytes
                .saturating_add(d.totals.usage.origin_bytes)
        })
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = WIDTH / report.days.len().max(1) as f64;
    let mut svg = format!(
        "<h2>Per day</h2><svg width=\"{WIDTH}\" height=\"{}\" role=\"img\" aria-label=\"bytes per day, peers and origin\">",
        HEIGHT + 20.0
    );
    for (i, day) in report.days.iter().enumerate() {
        let x = i as f64 * slot + 2.0;
        let w = (slot - 4.0).max(1.0);
        let origin_h = HEIGHT * day.totals.usage.origin_bytes as f64 / max;
        let peer_h = HEIGHT * day.totals.usage.peer_bytes as f64 / max;
        let _ = write!(
            svg,
            "<g><title>{}: {} from peers, {} from origin</title>\
             <rect class=\"origin\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{origin_h:.1}\"/>\
             <rect class=\"peer\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{peer_h:.1}\"/></g>",
            day.day,
            format_bytes(day.totals.usage.peer_bytes),
            format_bytes(day.totals.usage.origin_bytes),
            HEIGHT - origin_h,
            HEIGHT - origin_h - peer_h,
        );
    }
    if let (Some(first), Some(last)) = (report.days.first(), report.days.last()) {
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><text x=\"{WIDTH}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            HEIGHT + 16.0,
            first.day,
            HEIGHT + 16.0,
            last.day
        );
    } else {
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"20\">no traffic in this range yet</text>"
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_bytes_readable() {
        assert_eq!(escape("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(64 << 20), "64.0 MiB");
    }
}
