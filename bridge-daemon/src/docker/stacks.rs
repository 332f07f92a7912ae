//! Compose stacks: found by their containers' `com.docker.compose.*` labels (so stacks started
//! outside Porta too), and acted on whole through the server's compose program (`docker
//! compose`, else `docker-compose`), run in the stack's folder with its own files, its output
//! followed as a job. Start, stop and restart need no compose program: the engine does them to
//! each of the stack's containers.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Mutex;

use bollard::query_parameters::{ListContainersOptionsBuilder, RestartContainerOptions, StopContainerOptions};
use porta_shared::docker::{DockerJob, Stack, StackAction, StackVerb, StacksListed};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::jobs::Reporter;
use super::{Docker, reference, unavailable};

const PROJECT: &str = "com.docker.compose.project";
const FILES: &str = "com.docker.compose.project.config_files";
const FOLDER: &str = "com.docker.compose.project.working_dir";
const SERVICE: &str = "com.docker.compose.service";

/// The compose program, once found, and the stacks seen: one taken down has no containers
/// left to find it by, and is still listed (while its files are there) to be brought up.
#[derive(Default)]
pub struct Stacks {
    compose: Mutex<Option<Vec<String>>>,
    seen: Mutex<BTreeMap<String, Stack>>,
}

impl Stacks {
    /// `docker compose`, else `docker-compose`; none when the server has neither (looked for
    /// again next time: it may be installed meanwhile).
    async fn compose(&self) -> Option<Vec<String>> {
        if let Some(found) = self.compose.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Some(found);
        }
        for program in [vec!["docker", "compose"], vec!["docker-compose"]] {
            let mut cmd = tokio::process::Command::new(program[0]);
            cmd.args(&program[1..]).arg("version").stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
            let ran = tokio::time::timeout(std::time::Duration::from_secs(10), cmd.status()).await;
            if matches!(ran, Ok(Ok(status)) if status.success()) {
                let found: Vec<String> = program.into_iter().map(str::to_owned).collect();
                *self.compose.lock().unwrap_or_else(|p| p.into_inner()) = Some(found.clone());
                return Some(found);
            }
        }
        None
    }
}

impl Docker {
    /// Every compose stack the engine's containers belong to.
    pub async fn stacks(&self) -> Result<StacksListed, ErrorBody> {
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let all = ListContainersOptionsBuilder::new().all(true).build();
        let listed = self.ask("the container list", client.list_containers(Some(all))).await?;
        let mut stacks: BTreeMap<String, Stack> = BTreeMap::new();
        for c in listed {
            let labels = c.labels.unwrap_or_default();
            let Some(project) = labels.get(PROJECT) else { continue };
            let s = stacks.entry(project.clone()).or_insert_with(|| Stack {
                name: project.clone(),
                files: Vec::new(),
                working_dir: None,
                services: Vec::new(),
                containers: Vec::new(),
                running: 0,
            });
            for f in labels.get(FILES).into_iter().flat_map(|f| f.split(',')).map(str::trim) {
                if !f.is_empty() && !s.files.iter().any(|x| x == f) {
                    s.files.push(f.to_owned());
                }
            }
            if s.working_dir.is_none() {
                s.working_dir = labels.get(FOLDER).filter(|d| !d.is_empty()).cloned();
            }
            if let Some(service) = labels.get(SERVICE).filter(|x| !s.services.contains(x)) {
                s.services.push(service.clone());
            }
            let name = c.names.iter().flatten().next().map(|n| n.trim_start_matches('/').to_owned());
            s.containers.extend(name);
            if c.state.is_some_and(|st| st.to_string() == "running") {
                s.running += 1;
            }
        }
        {
            let mut seen = self.stacks.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (name, s) in &stacks {
                if !s.files.is_empty() {
                    let empty = Stack { containers: Vec::new(), running: 0, ..s.clone() };
                    seen.insert(name.clone(), empty);
                }
            }
            seen.retain(|_, s| s.files.iter().all(|f| std::path::Path::new(f).is_file()));
            for (name, s) in seen.iter() {
                stacks.entry(name.clone()).or_insert_with(|| s.clone());
            }
        }
        let mut stacks: Vec<Stack> = stacks.into_values().collect();
        for s in &mut stacks {
            s.services.sort();
            s.containers.sort();
        }
        let compose = self.stacks.compose().await.map(|p| p.join(" "));
        Ok(StacksListed { stacks, compose })
    }

    /// Starts doing `req.action` to a whole stack; its output is read as a job.
    pub async fn stack(&self, req: &StackAction) -> Result<DockerJob, ErrorBody> {
        let project = reference(&req.project)?;
        let listed = self.stacks().await?;
        let Some(stack) = listed.stacks.into_iter().find(|s| s.name == project) else {
            return Err(ErrorBody::new(ErrorCode::NotFound, format!("no compose stack {project} on this server")));
        };
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let engine_does = matches!(req.action, StackVerb::Start | StackVerb::Stop | StackVerb::Restart);
        let compose = self.stacks.compose().await;
        let command = match compose {
            Some(program) => Some(self.compose_command(&program, &stack, req.action)?),
            None if engine_does => None,
            None => {
                return Err(ErrorBody::new(
                    ErrorCode::Unavailable,
                    "no compose program on this server: install Docker's compose plugin \
                     (sudo apt install docker-compose-plugin) or docker-compose",
                ));
            }
        };
        let (job, report) = self.jobs.start()?;
        let verb = req.action.word();
        report.say(format!("{verb} {project}"));
        tracing::info!(job = report.job(), project, verb, "acting on a compose stack");
        match command {
            Some(cmd) => {
                tokio::spawn(run(cmd, report, verb));
            }
            None => {
                tokio::spawn(each_container(client, stack.containers, req.action, report));
            }
        }
        Ok(job)
    }

    fn compose_command(
        &self,
        program: &[String],
        stack: &Stack,
        verb: StackVerb,
    ) -> Result<tokio::process::Command, ErrorBody> {
        if stack.files.is_empty() {
            let msg =
                format!("{} has no compose file on record (its containers carry no config_files label)", stack.name);
            return Err(ErrorBody::new(ErrorCode::NotFound, msg));
        }
        if let Some(gone) = stack.files.iter().find(|f| !std::path::Path::new(f).is_file()) {
            return Err(ErrorBody::new(ErrorCode::NotFound, format!("{}'s compose file {gone} is gone", stack.name)));
        }
        let folder = stack
            .working_dir
            .clone()
            .filter(|d| std::path::Path::new(d).is_dir())
            .or_else(|| std::path::Path::new(&stack.files[0]).parent().map(|p| p.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "/".into());
        let mut cmd = tokio::process::Command::new(&program[0]);
        cmd.args(&program[1..]).args(["-p", &stack.name]);
        for f in &stack.files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(match verb {
            StackVerb::Up => &["up", "-d"][..],
            StackVerb::Down => &["down"],
            StackVerb::Restart => &["restart"],
            StackVerb::Stop => &["stop"],
            StackVerb::Start => &["start"],
            StackVerb::Pull => &["pull"],
        });
        cmd.current_dir(folder).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd.env("COMPOSE_INTERACTIVE_NO_CLI", "1").env("NO_COLOR", "1");
        if let Some(socket) = self.socket() {
            cmd.env("DOCKER_HOST", format!("unix://{}", socket.display()));
        }
        Ok(cmd)
    }
}

/// Runs the compose program, each line it writes said in the job.
async fn run(mut cmd: tokio::process::Command, report: Reporter, verb: &'static str) {
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return report.end(Some(format!("the compose program could not start: {e}"))),
    };
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let said = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        let report = &report;
        async move {
            let Some(pipe) = pipe else { return };
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let plain = porta_shared::text::plain(&line);
                if !plain.trim().is_empty() {
                    report.say(plain);
                }
            }
        }
    };
    let out = out.map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    let err = err.map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    tokio::join!(said(out), said(err));
    match child.wait().await {
        Ok(status) if status.success() => report.end(None),
        Ok(status) => report.end(Some(format!("compose {verb} failed ({status})"))),
        Err(e) => report.end(Some(format!("compose {verb}: {e}"))),
    }
}

/// Starts, stops or restarts each of a stack's containers through the engine.
async fn each_container(client: bollard::Docker, containers: Vec<String>, verb: StackVerb, report: Reporter) {
    let mut failed = Vec::new();
    for name in containers {
        let done = match verb {
            StackVerb::Start => client.start_container(&name, None).await,
            StackVerb::Stop => client.stop_container(&name, None::<StopContainerOptions>).await,
            _ => client.restart_container(&name, None::<RestartContainerOptions>).await,
        };
        match done {
            Ok(()) => report.say(format!("{name}: done")),
            Err(e) => {
                report.say(format!("{name}: {e}"));
                failed.push(name);
            }
        }
    }
    report.end((!failed.is_empty()).then(|| format!("not done to {}", failed.join(", "))));
}
