//! Compose stacks: found by their containers' `com.docker.compose.*` labels (so stacks started
//! outside Porta too), and acted on whole through the server's compose program (`docker
//! compose`, else `docker-compose`), run in the stack's folder with its own files, its output
//! followed as a job. Start, stop and restart need no compose program: the engine does them to
//! each of the stack's containers.
//!
//! A container's labels are whatever its maker wrote: a project's files are believed only when
//! every container of it names the same absolute ones, so a container labelled into someone
//! else's project cannot have its compose file run there.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptionsBuilder, RestartContainerOptions, StopContainerOptions};
use porta_shared::docker::{DockerJob, Stack, StackAction, StackVerb, StacksListed};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::jobs::Reporter;
use super::{Docker, reference, unavailable};

const PROJECT: &str = "com.docker.compose.project";
const FILES: &str = "com.docker.compose.project.config_files";
const FOLDER: &str = "com.docker.compose.project.working_dir";
const SERVICE: &str = "com.docker.compose.service";
/// Stacks remembered after their containers went, at most.
const MAX_SEEN: usize = 256;
/// How long the file system may take to say whether a stack's files are there.
const FS_WAIT: Duration = Duration::from_secs(5);
/// A compose run is stopped when it says nothing for this long, or runs this long in all.
const STALL: Duration = Duration::from_secs(15 * 60);
const TOTAL: Duration = Duration::from_secs(2 * 60 * 60);
/// The longest line of a compose program's output kept whole.
const MAX_LINE: u64 = 16 * 1024;

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
        // What the first container of each project said of its files and folder.
        let mut claims: BTreeMap<String, Claim> = BTreeMap::new();
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
                conflict: None,
            });
            let claim = Claim::of(&labels);
            match claims.get(project) {
                None => {
                    claims.insert(project.clone(), claim);
                }
                Some(first) if *first != claim => {
                    s.conflict = Some(format!(
                        "its containers name different compose files or folders ({} and {}): \
                         compose is not run for it until they agree",
                        first.said(),
                        claim.said()
                    ));
                }
                Some(_) => {}
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
        for (name, s) in &mut stacks {
            let Some(claim) = claims.remove(name) else { continue };
            if s.conflict.is_some() {
                continue;
            }
            match claim.absolute() {
                Ok((files, dir)) => (s.files, s.working_dir) = (files, dir),
                Err(why) => s.conflict = Some(why),
            }
        }
        // Stacks taken down stay listed while their files are there.
        let remembered: Vec<Stack> = {
            let mut seen = self.stacks.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (name, s) in &stacks {
                if !s.files.is_empty() && s.conflict.is_none() {
                    seen.insert(name.clone(), Stack { containers: Vec::new(), running: 0, ..s.clone() });
                }
            }
            while seen.len() > MAX_SEEN {
                let Some(old) = seen.keys().find(|k| !stacks.contains_key(*k)).cloned() else { break };
                seen.remove(&old);
            }
            seen.values().filter(|s| !stacks.contains_key(&s.name)).cloned().collect()
        };
        let checked = remembered.iter().map(|s| s.files.clone()).collect::<Vec<_>>();
        let present = on_disk(move || {
            checked.iter().map(|files| files.iter().all(|f| Path::new(f).is_file())).collect::<Vec<bool>>()
        })
        .await
        .unwrap_or_default();
        let mut gone = Vec::new();
        for (s, there) in remembered.into_iter().zip(present) {
            if there {
                stacks.insert(s.name.clone(), s);
            } else {
                gone.push(s.name);
            }
        }
        self.stacks.seen.lock().unwrap_or_else(|p| p.into_inner()).retain(|name, _| !gone.contains(name));
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
        let (client, engine) = self.engine().await.map_err(unavailable)?;
        let engine_does = matches!(req.action, StackVerb::Start | StackVerb::Stop | StackVerb::Restart);
        let compose = self.stacks.compose().await;
        let command = match compose {
            Some(program) => Some(compose_command(&program, &stack, req.action, &engine.socket).await?),
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
                tokio::spawn(run(cmd, report, verb, (STALL, TOTAL)));
            }
            None => {
                tokio::spawn(each_container(client, stack.containers, req.action, report));
            }
        }
        Ok(job)
    }
}

/// What one container says of its project's compose files and folder.
#[derive(PartialEq)]
struct Claim {
    files: Vec<String>,
    dir: Option<String>,
}

impl Claim {
    fn of(labels: &std::collections::HashMap<String, String>) -> Self {
        let files = labels.get(FILES).into_iter().flat_map(|f| f.split(',')).map(str::trim);
        let mut files: Vec<String> = files.filter(|f| !f.is_empty()).map(str::to_owned).collect();
        files.dedup();
        Claim { files, dir: labels.get(FOLDER).filter(|d| !d.is_empty()).cloned() }
    }

    fn said(&self) -> String {
        format!("{} in {}", self.files.join(", "), self.dir.as_deref().unwrap_or("no folder"))
    }

    /// Its files as absolute paths (relative ones taken from its folder), and its folder; or
    /// why they cannot be trusted.
    fn absolute(self) -> Result<(Vec<String>, Option<String>), String> {
        let dir = self.dir.filter(|d| Path::new(d).is_absolute());
        let mut files = Vec::new();
        for f in self.files {
            match (Path::new(&f).is_absolute(), &dir) {
                (true, _) => files.push(f),
                (false, Some(d)) => files.push(Path::new(d).join(&f).to_string_lossy().into_owned()),
                (false, None) => return Err(format!("its compose file {f} is not an absolute path")),
            }
        }
        if files.iter().any(|f| f.split('/').any(|part| part == "..")) {
            return Err("its compose files' paths climb out with `..`".into());
        }
        Ok((files, dir))
    }
}

/// File system checks under way at most: one stuck on a hung mount keeps its thread.
const FS_CHECKS: usize = 4;
static FS_CHECKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(FS_CHECKS);

/// Runs `f` (which asks the file system) off the runtime, for at most [`FS_WAIT`]: a hung
/// mount makes it none, and so do [`FS_CHECKS`] checks still stuck (each would hold a thread
/// of the runtime's blocking pool for good).
async fn on_disk<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let permit = FS_CHECKING.try_acquire().ok()?;
    permit.forget();
    let checked = tokio::task::spawn_blocking(move || {
        let found = f();
        FS_CHECKING.add_permits(1);
        found
    });
    tokio::time::timeout(FS_WAIT, checked).await.ok()?.ok()
}

/// The compose program asked to do `verb` to `stack`, with its files and folder, talking to
/// the engine found at `socket` (whatever context the bridge's user has chosen).
async fn compose_command(
    program: &[String],
    stack: &Stack,
    verb: StackVerb,
    socket: &str,
) -> Result<tokio::process::Command, ErrorBody> {
    if let Some(why) = &stack.conflict {
        return Err(ErrorBody::new(ErrorCode::Conflict, format!("{}: {why}", stack.name)));
    }
    if stack.files.is_empty() {
        let msg = format!("{} has no compose file on record (its containers carry no config_files label)", stack.name);
        return Err(ErrorBody::new(ErrorCode::NotFound, msg));
    }
    let (files, dir) = (stack.files.clone(), stack.working_dir.clone());
    let found = on_disk(move || {
        let gone = files.iter().find(|f| !Path::new(f).is_file()).cloned();
        let dir = dir.filter(|d| Path::new(d).is_dir());
        (gone, dir.or_else(|| Path::new(&files[0]).parent().map(|p| p.to_string_lossy().into_owned())))
    })
    .await;
    let Some((gone, folder)) = found else {
        let msg = format!("the file system did not say within {FS_WAIT:?} whether {}'s files are there", stack.name);
        return Err(ErrorBody::new(ErrorCode::Unavailable, msg));
    };
    if let Some(gone) = gone {
        return Err(ErrorBody::new(ErrorCode::NotFound, format!("{}'s compose file {gone} is gone", stack.name)));
    }
    let folder = folder.unwrap_or_else(|| "/".into());
    let mut cmd = tokio::process::Command::new(&program[0]);
    cmd.args(&program[1..]).args(["-p", &stack.name, "--project-directory", &folder]);
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
    cmd.env("COMPOSE_INTERACTIVE_NO_CLI", "1").env("NO_COLOR", "1").env_remove("DOCKER_CONTEXT");
    cmd.env("DOCKER_HOST", format!("unix://{socket}"));
    Ok(cmd)
}

/// Runs the compose program in a process group of its own, each line it writes said in the
/// job; stopped (the whole group) when it says nothing for `limits.0` or runs over `limits.1`.
async fn run(mut cmd: tokio::process::Command, report: Reporter, verb: &'static str, limits: (Duration, Duration)) {
    let (stall, total) = limits;
    let mut child = match cmd.process_group(0).spawn() {
        Ok(child) => child,
        Err(e) => return report.end(Some(format!("the compose program could not start: {e}"))),
    };
    let (lines, mut said) = tokio::sync::mpsc::channel::<String>(64);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, lines.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, lines.clone()));
    }
    drop(lines);
    let deadline = tokio::time::Instant::now() + total;
    let mins = |d: Duration| d.as_secs().div_ceil(60);
    let stopped = loop {
        match tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + stall), said.recv()).await {
            Ok(Some(line)) => report.say(line),
            Ok(None) => break None,
            Err(_) if tokio::time::Instant::now() >= deadline => {
                break Some(format!("compose {verb} ran over {} minutes: stopped", mins(total)));
            }
            Err(_) => break Some(format!("compose {verb} said nothing for {} minutes: stopped", mins(stall))),
        }
    };
    let waited = match stopped {
        None => tokio::time::timeout_at(deadline, child.wait()).await.ok(),
        Some(_) => None,
    };
    let Some(waited) = waited else {
        if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        let why = stopped.unwrap_or_else(|| format!("compose {verb} ran over {} minutes: stopped", mins(total)));
        return report.end(Some(why));
    };
    match waited {
        Ok(status) if status.success() => report.end(None),
        Ok(status) => report.end(Some(format!("compose {verb} failed ({status})"))),
        Err(e) => report.end(Some(format!("compose {verb}: {e}"))),
    }
}

/// Sends each line `pipe` carries, made plain, invalid UTF-8 replaced and a very long line cut
/// into pieces, until it ends.
async fn read_lines(pipe: impl tokio::io::AsyncRead + Unpin, to: tokio::sync::mpsc::Sender<String>) {
    let mut pipe = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut pipe).take(MAX_LINE).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let plain = porta_shared::text::plain(&String::from_utf8_lossy(&line));
                if !plain.trim().is_empty() && to.send(plain.trim_end().to_owned()).await.is_err() {
                    return;
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use porta_shared::docker::DockerJobRead;

    use super::super::jobs::Jobs;
    use super::*;

    fn labels(files: &str, dir: &str) -> std::collections::HashMap<String, String> {
        [(FILES.to_owned(), files.to_owned()), (FOLDER.to_owned(), dir.to_owned())].into_iter().collect()
    }

    #[test]
    fn a_projects_files_are_believed_only_as_absolute_paths_its_containers_agree_on() {
        let a = Claim::of(&labels("/srv/shop/compose.yml, extra.yml", "/srv/shop"));
        assert!(a == Claim::of(&labels("/srv/shop/compose.yml,extra.yml", "/srv/shop")));
        assert!(a != Claim::of(&labels("/tmp/evil.yml", "/srv/shop")), "another file is another claim");
        let (files, dir) = a.absolute().unwrap();
        assert_eq!(files, ["/srv/shop/compose.yml", "/srv/shop/extra.yml"]);
        assert_eq!(dir.as_deref(), Some("/srv/shop"));
        assert!(Claim::of(&labels("compose.yml", "")).absolute().unwrap_err().contains("not an absolute path"));
        assert!(Claim::of(&labels("compose.yml", "shop")).absolute().is_err(), "a relative folder is none");
        assert!(Claim::of(&labels("/srv/../etc/x.yml", "/srv")).absolute().is_err());
    }

    /// Runs `script` as a compose program would be, returning what the job ended with.
    async fn ran(script: &str, limits: (Duration, Duration)) -> porta_shared::docker::JobProgress {
        let jobs = Jobs::default();
        let (job, report) = jobs.start().unwrap();
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", script]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        run(cmd, report, "up", limits).await;
        jobs.read(&DockerJobRead { job: job.job, after: 0, wait_ms: 0 }).await.unwrap()
    }

    #[tokio::test]
    async fn every_line_is_said_even_one_that_is_not_utf8_and_a_failure_says_so() {
        let done = ran("printf 'caf\\351\\n'; echo to-stderr >&2; echo last; exit 3", (STALL, TOTAL)).await;
        assert!(done.said.contains(&"caf\u{fffd}".to_owned()), "{:?}", done.said);
        assert!(done.said.contains(&"to-stderr".to_owned()) && done.said.contains(&"last".to_owned()));
        assert!(done.error.as_deref().is_some_and(|e| e.contains("failed")), "{done:?}");
        let well = ran("echo fine", (STALL, TOTAL)).await;
        assert_eq!(well.error, None);
    }

    #[tokio::test]
    async fn a_run_that_stalls_is_stopped_with_everything_it_started() {
        let root = tempfile::tempdir().unwrap();
        let pid_file = root.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; echo started; wait", pid_file.display());
        let done = ran(&script, (Duration::from_millis(500), TOTAL)).await;
        assert!(done.said.contains(&"started".to_owned()), "{done:?}");
        assert!(done.error.as_deref().is_some_and(|e| e.contains("said nothing")), "{done:?}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let proc = Path::new("/proc").join(pid.trim());
        // Killed with its group; reaped by init (wait for that, not for a fixed time).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while proc.exists() && !std::fs::read_to_string(proc.join("stat")).unwrap_or_default().contains(") Z") {
            assert!(std::time::Instant::now() < deadline, "the group's sleep outlived the run");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let long = ran("while true; do echo tick; sleep 0.1; done", (STALL, Duration::from_millis(800))).await;
        assert!(long.error.as_deref().is_some_and(|e| e.contains("ran over")), "{long:?}");
    }
}
