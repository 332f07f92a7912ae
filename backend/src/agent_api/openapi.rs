//! The OpenAPI 3.1 document of the Porta agent API, served at `/api/v1/openapi.json`.
//!
//! Written by hand next to the handlers it describes; a test checks that it names exactly the
//! routes [`super::ENDPOINTS`] lists, and the end-to-end tests call each of them.

use serde_json::{Value, json};

use super::{ENDPOINTS, MAX_BODY, MAX_PAGE, MAX_STEPS};
use crate::assistant::tools;

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn integer(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

/// An object schema; `required` names the fields that must be there.
fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

/// A request body's schema: as [`object`], and nothing else (the server refuses an unknown
/// field with 400, so a client's typo is not silently ignored).
fn request(required: &[&str], properties: Value) -> Value {
    let mut schema = object(required, properties);
    schema["additionalProperties"] = json!(false);
    schema
}

/// `agent_id` and `server_id`, which every call on a server carries.
fn on_server(required: &[&str], mut properties: Value) -> Value {
    if let Some(map) = properties.as_object_mut() {
        map.insert("agent_id".into(), json!({ "$ref": "#/components/schemas/AgentId" }));
        map.insert("server_id".into(), string("The server to act on (its id on the dashboard)."));
    }
    let mut all = vec!["agent_id", "server_id"];
    all.extend_from_slice(required);
    request(&all, properties)
}

fn command_run() -> Value {
    object(
        &["command", "stdout", "stderr", "return_code", "duration_ms", "timed_out", "truncated"],
        json!({
            "command": string("The command line that ran."),
            "stdout": string("Standard output (its last 256 KiB)."),
            "stderr": string("Standard error (its last 256 KiB)."),
            "return_code": { "type": ["integer", "null"], "description": "The exit code; null when a signal ended it." },
            "signal": integer("The signal that ended it, if one did."),
            "duration_ms": integer("How long it ran."),
            "timed_out": boolean("It was killed at its time limit."),
            "truncated": boolean("The start of the output was dropped."),
        }),
    )
}

/// One operation: its request and answer schemas and what it does.
fn operation(summary: &str, description: &str, request: Option<Value>, response: Value) -> Value {
    let mut op = json!({
        "summary": summary,
        "description": description,
        "security": [{ "token": [] }],
        "responses": {
            "200": { "description": "Done.", "content": { "application/json": { "schema": response } } },
            "400": { "$ref": "#/components/responses/BadRequest" },
            "401": { "$ref": "#/components/responses/Unauthorized" },
            "403": { "$ref": "#/components/responses/Forbidden" },
            "404": { "$ref": "#/components/responses/NotFound" },
            "503": { "$ref": "#/components/responses/Offline" },
        },
    });
    if let Some(schema) = request {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    op
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn page(items: Value) -> Value {
    object(
        &["agent_id", "total", "limit", "offset", "items"],
        json!({
            "agent_id": string("The calling agent."),
            "total": integer("How many match in all."),
            "limit": integer("Page size."),
            "offset": integer("Rows skipped."),
            "items": { "type": "array", "items": items },
        }),
    )
}

/// The audit log's export, served beside this API (by `crate::http`), for the same tokens; the
/// conformance test calls it at the documented path.
pub const AUDIT_EXPORT: &str = "/api/audit/export";

fn audit_export() -> Value {
    let param = |name: &str, schema: Value, description: &str| json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description });
    let stream = |media: &str| json!({ media: { "schema": { "type": "string" } } });
    let mut both = stream("application/x-ndjson");
    both["text/csv"] = json!({ "schema": { "type": "string" } });
    json!({
        "summary": "Export the audit log",
        "description": "The audit log, or the part the filters pick, oldest first, as JSON lines or CSV, with every event's `prev_hash` and `hash` so a copy can be checked outside Porta. Needs the `admin` scope, a token not limited to a workspace, and an admin. The export is itself audited.",
        "security": [{ "token": [] }],
        "parameters": [
            param("format", json!({ "type": "string", "enum": ["jsonl", "csv"], "default": "jsonl" }), "The file's format."),
            param("actor", json!({ "type": "string" }), "Only events by this actor."),
            param("server", json!({ "type": "string" }), "Only events on this server."),
            param("action", json!({ "type": "string" }), "Only this action."),
            param("since_ms", json!({ "type": "integer" }), "From this time (Unix ms, inclusive)."),
            param("until_ms", json!({ "type": "integer" }), "Before this time (Unix ms)."),
        ],
        "responses": {
            "200": { "description": "The events, streamed as a download.", "content": both },
            "400": { "$ref": "#/components/responses/BadRequest" },
            "401": { "$ref": "#/components/responses/Unauthorized" },
            "403": { "$ref": "#/components/responses/Forbidden" },
        },
    })
}

/// The document, with `public_url` as its server.
pub fn document(public_url: &str) -> Value {
    let limit = json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50 });
    let offset = json!({ "type": "integer", "minimum": 0, "default": 0 });
    let timeout = json!({ "type": "integer", "minimum": 1, "maximum": tools::MAX_TIMEOUT.as_secs(), "default": tools::DEFAULT_TIMEOUT.as_secs(), "description": "Time limit in seconds." });
    let agent = object(
        &["agent_id", "id", "workspace_id", "kind", "status", "created_ms", "operations"],
        json!({
            "agent_id": string("Its name, as it calls itself."),
            "id": string("Porta's id for it."),
            "workspace_id": string("The workspace it acts in."),
            "kind": { "type": "string", "enum": ["api", "assistant"] },
            "status": { "type": "string", "enum": ["active", "idle", "disabled"] },
            "created_ms": integer("When it registered (Unix ms)."),
            "last_seen_ms": { "type": ["integer", "null"], "description": "When it last acted (Unix ms)." },
            "operations": integer("How many operations it has done."),
        }),
    );
    let mut paths = serde_json::Map::new();
    let mut put = |method: &str, path: &str, op: Value| {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = op;
    };
    put(
        "get",
        "/api/v1/meta",
        operation(
            "About this Porta",
            "Name, version, uptime, process id, port and the endpoints.",
            None,
            object(
                &["name", "version", "uptime_s", "pid", "port", "endpoints"],
                json!({
                    "name": string("Porta"), "version": string("Its version."), "uptime_s": integer("Seconds since it started."),
                    "pid": integer("Its process id."), "port": integer("The port it listens on."),
                    "endpoints": { "type": "array", "items": { "type": "string" } },
                }),
            ),
        ),
    );
    put(
        "get",
        "/api/v1/openapi.json",
        json!({ "summary": "This document", "security": [], "responses": { "200": { "description": "The OpenAPI document." } } }),
    );
    put(
        "post",
        "/api/v1/run_bash",
        operation(
            "Run a command",
            "Runs a command line through `sh -c` on the server, with the token's user's permissions. Needs the `terminal` scope and a developer role. A command that fails still answers 200, with its return code.",
            Some(on_server(
                &["command"],
                json!({
                    "command": string("The command line."),
                    "cwd": string("The folder to run in."),
                    "timeout_s": timeout,
                }),
            )),
            command_run(),
        ),
    );
    put(
        "post",
        "/api/v1/write_file",
        operation(
            "Write a file",
            "Replaces a file's content atomically (at most 512 KiB). Needs the `write` scope and a developer role. With `expected_sha256`, refuses (409) when the file changed since it was read.",
            Some(on_server(
                &["path", "content"],
                json!({
                    "path": string("The file; relative paths are beneath the server's home."),
                    "content": string("The new content."),
                    "encoding": { "type": "string", "enum": ["utf-8", "base64"], "default": "utf-8" },
                    "expected_sha256": string("Write only over this content (the sha256 read_file returned)."),
                }),
            )),
            object(
                &["path", "size", "sha256"],
                json!({
                    "agent_id": string("The calling agent."), "server_id": string("The server."), "path": string("The file."),
                    "size": integer("Bytes written."), "sha256": string("Hex SHA-256 of the new content."),
                }),
            ),
        ),
    );
    put(
        "post",
        "/api/v1/read_file",
        operation(
            "Read a file",
            "Reads up to 512 KiB of a file from `offset`. Text comes back as UTF-8, anything else as base64. Needs the `read` scope.",
            Some(on_server(
                &["path"],
                json!({
                    "path": string("The file."),
                    "offset": { "type": "integer", "minimum": 0, "default": 0 },
                    "limit": { "type": "integer", "minimum": 0, "maximum": porta_shared::bridge::FsRead::MAX_LIMIT, "description": "Bytes to read; the most when absent. More is refused (400)." },
                }),
            )),
            object(
                &["path", "content", "encoding", "size", "eof"],
                json!({
                    "agent_id": string("The calling agent."), "server_id": string("The server."), "path": string("The file."),
                    "content": string("The bytes read."),
                    "encoding": { "type": "string", "enum": ["utf-8", "base64"] },
                    "size": integer("The file's whole size."), "eof": boolean("The content reaches the end of the file."),
                    "sha256": string("Hex SHA-256 of the file, when the content is all of it."),
                }),
            ),
        ),
    );
    put(
        "post",
        "/api/v1/list_dir",
        operation(
            "List a folder",
            "The entries of a folder. Needs the `read` scope.",
            Some(on_server(
                &["path"],
                json!({
                    "path": string("The folder."),
                    "hidden": { "type": "boolean", "default": false, "description": "Include names starting with a dot." },
                }),
            )),
            object(
                &["path", "entries"],
                json!({
                    "agent_id": string("The calling agent."), "server_id": string("The server."), "path": string("The folder."),
                    "entries": { "type": "array", "items": object(&["name", "kind", "size", "mode"], json!({
                        "name": string("The entry's name."),
                        "kind": { "type": "string", "enum": ["file", "dir", "symlink", "other"] },
                        "size": integer("Bytes."), "mode": integer("Permission bits."),
                        "modified_ms": integer("Last change (Unix ms)."),
                    })) },
                }),
            ),
        ),
    );
    put(
        "post",
        "/api/v1/agent/status",
        operation(
            "This agent's status",
            "Whether the agent is registered, and its registry entry. Calling it counts as being seen.",
            Some(request(
                &["agent_id"],
                json!({
                    "agent_id": { "$ref": "#/components/schemas/AgentId" },
                    "workspace_id": string("Look only in this workspace."),
                }),
            )),
            object(
                &["agent_id", "status", "timestamp_ms"],
                json!({
                    "agent_id": string("The agent."),
                    "status": { "type": "string", "enum": ["active", "disabled", "unregistered"] },
                    "timestamp_ms": integer("Now (Unix ms)."),
                    "agent": agent.clone(),
                }),
            ),
        ),
    );
    put(
        "post",
        "/api/v1/agent/list",
        operation(
            "List agents",
            "The agents of the workspaces the token reaches, by name, a page at a time.",
            Some(request(
                &["agent_id"],
                json!({
                    "agent_id": { "$ref": "#/components/schemas/AgentId" },
                    "workspace_id": string("Only this workspace."),
                    "status": { "type": "string", "enum": ["active", "idle", "disabled"] },
                    "kind": { "type": "string", "enum": ["api", "assistant"] },
                    "name_contains": string("Part of the name, any case."),
                    "limit": limit, "offset": offset,
                }),
            )),
            page(agent),
        ),
    );
    put(
        "post",
        "/api/v1/agent/history",
        operation(
            "An agent's operations",
            "What an agent did, newest first, filtered by type, outcome and time.",
            Some(request(
                &["agent_id"],
                json!({
                    "agent_id": { "$ref": "#/components/schemas/AgentId" },
                    "of_agent": string("Whose history; the caller's own when absent."),
                    "workspace_id": string("Only this workspace."),
                    "operation_type": { "type": "string", "enum": ["run_bash", "write_file", "read_file", "list_dir", "pipeline"] },
                    "success": boolean("Only successes, or only failures."),
                    "since_ms": integer("From this time (Unix ms, inclusive)."),
                    "until_ms": integer("Before this time (Unix ms)."),
                    "limit": limit, "offset": offset,
                }),
            )),
            page(object(
                &["id", "agent_id", "operation_type", "details", "timestamp_ms", "duration_ms", "success"],
                json!({
                    "id": integer("The operation's number."), "agent_id": string("The agent."),
                    "operation_type": string("What it was."), "details": string("The path, the command, the outcome."),
                    "server_id": string("Where."), "timestamp_ms": integer("When (Unix ms)."),
                    "duration_ms": integer("How long it took."), "success": boolean("Whether it succeeded."),
                }),
            )),
        ),
    );
    put(
        "post",
        "/api/v1/agent/pipeline",
        operation(
            "Run commands in order",
            "Runs each step through `sh -c`, in order, and stops at the first that fails (a return code other than 0, or its time limit). Every step that ran is in the answer with its output, return code and duration. Needs the `terminal` scope and a developer role.",
            Some(on_server(
                &["steps"],
                json!({
                    "steps": { "type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": { "oneOf": [
                        string("A command line."),
                        request(&["command"], json!({ "command": string("A command line."), "cwd": string("Its folder."), "timeout_s": timeout })),
                    ] } },
                    "cwd": string("The folder steps run in, unless a step names its own."),
                    "timeout_s": timeout,
                }),
            )),
            object(
                &["success", "failed_step", "steps", "skipped", "duration_ms"],
                json!({
                    "agent_id": string("The calling agent."), "server_id": string("The server."),
                    "success": boolean("Every step ran and succeeded."),
                    "failed_step": { "type": ["integer", "null"], "description": "The index of the step that failed." },
                    "steps": { "type": "array", "items": command_run() },
                    "skipped": integer("Steps not run after the failure."),
                    "duration_ms": integer("How long the whole pipeline took."),
                }),
            ),
        ),
    );
    put("get", AUDIT_EXPORT, audit_export());
    debug_assert_eq!(paths.len(), ENDPOINTS.len() + 1);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Porta agent API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Lets an external agent act on the servers its API token reaches. Every call but this document carries the token in `X-PORTA-TOKEN`; every operation is recorded in the agent's history and the audit log. Bodies are JSON of at most {} KiB.", MAX_BODY >> 10),
        },
        "servers": [{ "url": public_url }],
        "paths": paths,
        "components": {
            "securitySchemes": { "token": { "type": "apiKey", "in": "header", "name": "X-PORTA-TOKEN" } },
            "schemas": {
                "AgentId": { "type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,64}$", "description": "The calling agent's name; it registers on its first call on a server." },
                "Error": object(&["error"], json!({ "error": object(&["code", "message"], json!({
                    "code": string("A stable code: bad_request, unauthorized, forbidden, not_found, conflict, server_offline, …"),
                    "message": string("What went wrong, for people."),
                })) })),
            },
            "responses": {
                "BadRequest": error_response("The body is malformed, too large, or a field is out of range."),
                "Unauthorized": error_response("No API token, or a wrong, expired or revoked one."),
                "Forbidden": error_response("The token lacks the scope, or the user the role."),
                "NotFound": error_response("No such server, file or workspace, or not one this token reaches."),
                "Offline": error_response("The server's bridge is not connected."),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_endpoint_and_nothing_else() {
        let doc = document("http://porta.example");
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented: Vec<String> = paths
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object().into_iter().flatten().map(move |(m, _)| format!("{} {path}", m.to_uppercase()))
            })
            .collect();
        let mut routed: Vec<String> = ENDPOINTS.iter().map(|(m, p)| format!("{m} {p}")).collect();
        routed.push(format!("GET {AUDIT_EXPORT}"));
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
        assert_eq!(doc["servers"][0]["url"], "http://porta.example");
    }

    #[test]
    fn the_routes_are_the_listed_endpoints() {
        // The router's source names each endpoint once, in `ENDPOINTS`' order.
        let source = include_str!("mod.rs");
        let routes: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".route(\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        let listed: Vec<&str> = ENDPOINTS.iter().map(|(_, p)| *p).collect();
        assert_eq!(routes, listed);
    }
}
