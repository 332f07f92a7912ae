//! `GET /api/audit/export`: the audit log (or the part a filter picks) as JSON lines or CSV,
//! oldest first, with every event's `prev_hash` and `hash`, so a copy can be checked outside
//! Porta. Streamed in batches; admins only; the export is itself an audit event.

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use serde::Deserialize;

use crate::audit::Record;
use crate::auth::AuthUser;
use crate::db::{AuditEvent, AuditQuery};
use crate::error::Result;
use crate::state::AppState;

/// Events read from the database per batch.
const BATCH: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/audit/export", get(export))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Jsonl,
    Csv,
}

#[derive(Debug, Deserialize)]
struct ExportParams {
    #[serde(default)]
    format: Format,
    actor: Option<String>,
    server: Option<String>,
    action: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
}

async fn export(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    user: AuthUser,
    super::AppQuery(p): super::AppQuery<ExportParams>,
) -> Result<Response> {
    // As for `auditLog`: an admin, and a token only with the admin scope and no workspace limit.
    user.require(crate::auth::scopes::Scope::Admin)?;
    state
        .store
        .audit(
            // Who exported: the person, or the API token that did it for them.
            AuditEvent::new(&user.actor(), "audit.export")
                .detail(format!("{:?} {p:?}", p.format).to_lowercase())
                .source(addr.ip().to_string()),
        )
        .await;
    let query = AuditQuery {
        actor: p.actor,
        server: p.server,
        action: p.action,
        since_ms: p.since_ms,
        until_ms: p.until_ms,
        limit: BATCH,
        oldest_first: true,
        ..Default::default()
    };
    let format = p.format;
    let header = (format == Format::Csv).then(|| Ok::<_, std::io::Error>(csv_line(&CSV_HEADER)));
    // Batches in order of `seq`, each read after the last one was sent.
    let batches = futures_util::stream::unfold(Some(query), move |q| {
        let store = state.store.clone();
        async move {
            let mut q = q?;
            match store.audit_events(&q).await {
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    q.after_seq = events.last().map(|e| e.seq);
                    let text: String = events.iter().map(|e| encode(format, e)).collect();
                    Some((Ok(text), Some(q)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed");
                    Some((Err(std::io::Error::other("the audit log could not be read")), None))
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::iter(header).chain(batches));
    let (kind, name) = match format {
        Format::Jsonl => ("application/x-ndjson", "porta-audit.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "porta-audit.csv"),
    };
    Ok(([(CONTENT_TYPE, kind.to_owned()), (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))], body)
        .into_response())
}

const CSV_HEADER: [&str; 12] = [
    "seq",
    "at_ms",
    "actor",
    "source",
    "server_id",
    "workspace_id",
    "action",
    "target",
    "result",
    "detail",
    "prev_hash",
    "hash",
];

fn encode(format: Format, r: &Record) -> String {
    match format {
        Format::Jsonl => serde_json::to_string(r).map(|mut s| {
            s.push('\n');
            s
        }),
        Format::Csv => Ok(csv_line(&[
            r.seq.to_string().as_str(),
            r.at_ms.to_string().as_str(),
            r.actor.as_deref().unwrap_or_default(),
            r.source.as_deref().unwrap_or_default(),
            r.server_id.as_deref().unwrap_or_default(),
            r.workspace_id.as_deref().unwrap_or_default(),
            &r.action,
            r.target.as_deref().unwrap_or_default(),
            &r.result,
            r.detail.as_deref().unwrap_or_default(),
            r.prev_hash.as_deref().unwrap_or_default(),
            r.hash.as_deref().unwrap_or_default(),
        ])),
    }
    // Serialising strings and numbers cannot fail.
    .unwrap_or_default()
}

/// A cell a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, or a tab or other control
/// character first) gets a leading `'`, so it opens as text: a username like
/// `=HYPERLINK(…)` must not become a live link in someone's spreadsheet.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some(c) if matches!(c, '=' | '+' | '-' | '@') || c.is_control() => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// One CSV record (RFC 4180 quoting, by the `csv` crate), every cell [`inert`].
fn csv_line(fields: &[&str]) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let _ = w.write_record(fields.iter().map(|f| inert(f).into_owned()));
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_line(&["1", "a,b", "say \"hi\"", ""]), "1,\"a,b\",\"say \"\"hi\"\"\",\r\n");
        assert_eq!(csv_line(&CSV_HEADER).lines().count(), 1);
    }

    #[test]
    fn formulas_open_as_text() {
        let line = csv_line(&["=HYPERLINK(\"http://evil\",\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "carol", "a=b"]);
        assert_eq!(line, "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",'+1,'-2,'@SUM(A1),'\tx,carol,a=b\r\n");
    }
}
