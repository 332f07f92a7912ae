//! The container tools: `docker_logs` reads, `docker_action` changes (after the person's
//! approval, judged by the command policy as the `docker` command it amounts to).

use porta_shared::bridge;
use porta_shared::docker::{
    ContainerAction, ContainerDetails, DockerAction, DockerInspect, DockerLogBatch, DockerLogs, DockerLogsClose,
    DockerLogsOpened, DockerLogsRead, LogLine,
};
use porta_shared::{ErrorBody, ErrorCode};

use super::{Assistant, MAX_RESULT_CHARS, arg};
use crate::relay::command;

/// `docker_action`: the container named by its name, then the action.
pub(super) async fn act(
    ai: &Assistant,
    server: &str,
    args: &serde_json::Value,
) -> Result<serde_json::Value, ErrorBody> {
    let asked = container_action(args)?;
    // The policy judged the command by the name given: an id (or another container's
    // prefix) must not reach what a rule about that name would have stopped.
    let look = DockerInspect { id: asked.id.clone(), reveal_env: false };
    let found: ContainerDetails = command::ask(&ai.relay, server, look.into()).await?;
    if found.container.name != asked.id {
        let msg = format!(
            "name the container by its name, as docker_list shows it ({}), not by its id",
            found.container.name
        );
        return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
    }
    let (container, action) = (asked.id.clone(), asked.action.word());
    let _: bridge::Done = command::ask(&ai.relay, server, asked.into()).await?;
    Ok(serde_json::json!({ "container": container, "action": action, "done": true }))
}

/// `docker_action`'s arguments as the bridge's request.
fn container_action(args: &serde_json::Value) -> Result<DockerAction, ErrorBody> {
    let action = match arg(args, "action")? {
        "start" => ContainerAction::Start,
        "stop" => ContainerAction::Stop,
        "restart" => ContainerAction::Restart,
        "pause" => ContainerAction::Pause,
        "unpause" => ContainerAction::Unpause,
        "kill" => ContainerAction::Kill,
        "remove" => ContainerAction::Remove { force: args["force"].as_bool().unwrap_or(false) },
        other => {
            let msg =
                format!("there is no container action {other:?}: start, stop, restart, pause, unpause, kill or remove");
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
    };
    Ok(DockerAction { id: arg(args, "container")?.to_owned(), action })
}

/// Most lines `docker_logs` reads.
pub(super) const LOG_LINES_MAX: u32 = 2000;
/// Batches `docker_logs` reads at most (each up to 256 KiB).
const MAX_READS: usize = 64;

/// `docker_logs`: the latest lines, oldest first, as `time name: text` (the name only when
/// several containers are read), the oldest left out when they would not fit a result.
pub(super) async fn logs(
    ai: &Assistant,
    server: &str,
    args: &serde_json::Value,
) -> Result<serde_json::Value, ErrorBody> {
    let text = |key: &str| args[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let number = |key: &str| match &args[key] {
        serde_json::Value::Null => Ok(None),
        v => v.as_u64().filter(|&n| n > 0).map(Some).ok_or_else(|| {
            ErrorBody::new(ErrorCode::BadRequest, format!("the argument {key:?} must be a whole number above 0"))
        }),
    };
    let lines = number("lines")?.map_or(100, |n| n.min(u64::from(LOG_LINES_MAX)) as u32);
    let now = u64::try_from(crate::clock::now_ms()).unwrap_or(0);
    let since_ms = number("since_minutes")?.map(|m| now.saturating_sub(m.saturating_mul(60_000)));
    let asked = DockerLogs {
        containers: text("container").into_iter().collect(),
        project: text("project"),
        since_ms,
        tail: Some(lines),
        contains: text("contains"),
        ..Default::default()
    };
    let opened: DockerLogsOpened = command::ask(&ai.relay, server, asked.into()).await?;
    // Read to the end (a reading that is not followed ends with its last line), keeping the
    // newest `lines`; closed whatever happens.
    let mut got: std::collections::VecDeque<LogLine> = std::collections::VecDeque::new();
    let mut notes = Vec::new();
    let read = DockerLogsRead { session: opened.session.clone(), wait_ms: 5_000, max_bytes: None };
    let mut reads = 0;
    let whole = loop {
        let batch: DockerLogBatch = match command::ask(&ai.relay, server, read.clone().into()).await {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        got.extend(batch.lines);
        got.drain(..got.len().saturating_sub(lines as usize));
        notes.extend(batch.notes);
        reads += 1;
        if batch.ended {
            break Ok(());
        }
        if reads >= MAX_READS {
            notes.push("the log was too long to read to its end: these are not its latest lines".into());
            break Ok(());
        }
    };
    let _ = command::ask::<bridge::Done>(&ai.relay, server, DockerLogsClose { session: opened.session }.into()).await;
    whole?;
    let got: Vec<LogLine> = got.into();
    // Each container's last lines: several together keep the latest of them all.
    let several = opened.containers.len() > 1;
    let mut shown: Vec<String> = got
        .iter()
        .map(|l| {
            let when = crate::clock::rfc3339_ms(l.ts_ms);
            let who = opened.containers.get(usize::from(l.c)).filter(|_| several);
            let stream = if l.err { " (stderr)" } else { "" };
            match who {
                Some(name) => format!("{when} {name}{stream}: {}", l.text),
                None => format!("{when}{stream} {}", l.text),
            }
        })
        .collect();
    // The newest lines matter most: the oldest go first when the result would be cut.
    let mut size: usize = shown.iter().map(|l| l.chars().count() + 4).sum();
    let mut left_out = 0;
    while size > MAX_RESULT_CHARS - 1_000 && !shown.is_empty() {
        size -= shown.remove(0).chars().count() + 4;
        left_out += 1;
    }
    Ok(serde_json::json!({
        "containers": opened.containers,
        "lines": shown,
        "older_lines_left_out": left_out,
        "notes": notes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_is_read_from_its_arguments_or_refused() {
        let rm = serde_json::json!({ "container": "db", "action": "remove", "force": true });
        assert_eq!(container_action(&rm).map(|a| a.action), Ok(ContainerAction::Remove { force: true }));
        let bad = container_action(&serde_json::json!({ "container": "web", "action": "explode" }));
        assert_eq!(bad.map_err(|e| e.code), Err(ErrorCode::BadRequest));
    }
}
