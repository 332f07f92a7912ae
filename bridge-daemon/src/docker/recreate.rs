//! "Recreate with the same settings": a container made again from its image's name (after a
//! pull, when asked), keeping everything it was given — its environment, command, ports,
//! volumes (anonymous ones included, with their data), networks and their aliases, restart
//! policy, limits, labels — while what it only had from its old image (the image's own
//! command, environment, labels) comes from the new one. The old container is stopped and set
//! aside under another name until the new one has kept running a few seconds (and turned
//! healthy, with a health check); if the new one cannot be made, does not start or stops, it is
//! removed and the old one gets its name back and runs as before. A container started with
//! `--rm`, or whose network others share, is refused: stopping it would lose it or them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use porta_shared::docker::{DockerJob, Recreate};
use porta_shared::{ErrorBody, ErrorCode};

use super::jobs::Reporter;
use super::{Docker, reference, unavailable};

/// How long the new container must keep running before the old one is removed; with a health
/// check, how long it may take to become healthy.
const STAY_UP: Duration = Duration::from_secs(5);
const HEALTHY_WITHIN: Duration = Duration::from_secs(90);

impl Docker {
    /// Starts recreating a container; the steps are read as a job.
    pub async fn recreate(&self, req: &Recreate) -> Result<DockerJob, ErrorBody> {
        let id = reference(&req.id)?;
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let old = self.ask(id, client.inspect_container(id, None)).await?;
        let name = old.name.clone().unwrap_or_default().trim_start_matches('/').to_owned();
        let full = old.id.clone().unwrap_or_default();
        if old.host_config.as_ref().and_then(|h| h.auto_remove) == Some(true) {
            let msg = format!("{name} was started with --rm: stopping it would remove it, so it cannot be recreated");
            return Err(ErrorBody::new(ErrorCode::Conflict, msg));
        }
        let dependents = self.sharing_network(&client, &full, &name).await?;
        if !dependents.is_empty() {
            let msg = format!(
                "{} use {name}'s network (network_mode container:{name}): recreate them with it, or first",
                dependents.join(", ")
            );
            return Err(ErrorBody::new(ErrorCode::Conflict, msg));
        }
        let grace = self.grace(&client, id).await?;
        let claimed = Claimed::take(&self.recreating, &full)
            .ok_or_else(|| ErrorBody::new(ErrorCode::Conflict, format!("{name} is being recreated already")))?;
        let (job, report) = self.jobs.start()?;
        report.say(format!("Recreating {name} with its settings"));
        tracing::info!(job = report.job(), container = %name, pull = req.pull, "recreating a container");
        let (pull, watch) = (req.pull, self.watch.clone());
        // A person's stop and removal of the old one: no death to alert about.
        watch.asked(&full);
        tokio::spawn(async move {
            let outcome = run(&client, old, name, pull, grace, &report).await;
            if outcome.is_err() {
                // The old one is back: a death of it is news again.
                watch.not_asked(&full);
            }
            report.end(outcome.err());
            watch.recheck();
            drop(claimed);
        });
        Ok(job)
    }

    /// Containers that run in the network of container `id` (`network_mode: container:…`):
    /// they would lose it with the old container.
    async fn sharing_network(&self, client: &bollard::Docker, id: &str, name: &str) -> Result<Vec<String>, ErrorBody> {
        let all = ListContainersOptionsBuilder::new().all(true).build();
        let listed = self.ask("the container list", client.list_containers(Some(all))).await?;
        let ours = [format!("container:{id}"), format!("container:{name}")];
        Ok(listed
            .into_iter()
            .filter(|c| c.host_config.as_ref().and_then(|h| h.network_mode.as_ref()).is_some_and(|m| ours.contains(m)))
            .filter_map(|c| c.names.into_iter().flatten().next().map(|n| n.trim_start_matches('/').to_owned()))
            .collect())
    }
}

/// A container claimed for one recreation, let go when dropped.
struct Claimed(std::sync::Arc<Mutex<HashSet<String>>>, String);

impl Claimed {
    fn take(set: &std::sync::Arc<Mutex<HashSet<String>>>, id: &str) -> Option<Self> {
        set.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned()).then(|| Claimed(set.clone(), id.to_owned()))
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}

/// The recreation itself; why it failed (having put the old container back).
async fn run(
    client: &bollard::Docker,
    old: ContainerInspectResponse,
    name: String,
    pull: bool,
    grace: i32,
    report: &Reporter,
) -> Result<(), String> {
    let config = old.config.clone().unwrap_or_default();
    let image = config.image.clone().unwrap_or_default();
    if pull {
        if image.starts_with("sha256:") {
            return Err(format!("{name} was made from an image id, not a name: there is nothing to pull"));
        }
        super::images::pull_into(client, &image, report).await?;
    }
    // Without the old image's own settings, everything it set would be pinned on the new one.
    let old_image = match old.image.as_deref() {
        Some(id) => client.inspect_image(id).await.map_err(|e| format!("cannot read {name}'s image: {e}"))?.config,
        None => None,
    };
    let (body, extra) = settings(&old, old_image.unwrap_or_default());
    let running = old.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let old_id = old.id.clone().unwrap_or_default();
    let aside = format!("{name}-porta-old-{}", &old_id[..old_id.len().min(12)]);
    if running {
        report.say(format!("Stopping {name}"));
        let options = StopContainerOptionsBuilder::new().t(grace).build();
        client.stop_container(&old_id, Some(options)).await.map_err(|e| format!("cannot stop {name}: {e}"))?;
    }
    let rename = |to: &str| RenameContainerOptionsBuilder::new().name(to).build();
    if let Err(e) = client.rename_container(&old_id, rename(&aside)).await {
        let back = put_back(client, &old_id, None, None, running).await;
        return Err(format!("cannot set {name} aside: {e}{back}"));
    }
    report.say(format!("Creating {name} from {image}"));
    let made = client.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await;
    let new_id = match made {
        Ok(m) => m.id,
        Err(e) => {
            let back = put_back(client, &old_id, None, Some(&name), running).await;
            return Err(format!("cannot create the new {name}: {e}{back}"));
        }
    };
    for (network, endpoint) in extra {
        let asked = NetworkConnectRequest { container: new_id.clone(), endpoint_config: Some(endpoint) };
        if let Err(e) = client.connect_network(&network, asked).await {
            let back = put_back(client, &old_id, Some(&new_id), Some(&name), running).await;
            return Err(format!("cannot join {network}: {e}{back}"));
        }
    }
    if running {
        report.say(format!("Starting the new {name}"));
        if let Err(e) = client.start_container(&new_id, None).await {
            let back = put_back(client, &old_id, Some(&new_id), Some(&name), running).await;
            return Err(format!("the new {name} does not start: {e}{back}"));
        }
        if let Err(e) = stays_up(client, &new_id, report).await {
            let back = put_back(client, &old_id, Some(&new_id), Some(&name), running).await;
            return Err(format!("the new {name} {e}{back}"));
        }
    }
    // Its anonymous volumes now belong to the new one: kept.
    let keep = RemoveContainerOptionsBuilder::new().v(false).force(true).build();
    if let Err(e) = client.remove_container(&old_id, Some(keep)).await {
        report.say(format!("the old container stays, stopped, as {aside}: {e}"));
    }
    report.say(format!("{name} recreated from {image} ({})", &new_id[..new_id.len().min(12)]));
    Ok(())
}

/// Whether the new container keeps running for [`STAY_UP`] (and, with a health check, turns
/// healthy within [`HEALTHY_WITHIN`]); what went wrong.
async fn stays_up(client: &bollard::Docker, id: &str, report: &Reporter) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    let mut said_waiting = false;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = client.inspect_container(id, None).await.map_err(|e| format!("cannot be read: {e}"))?;
        let state = now.state.unwrap_or_default();
        if state.running != Some(true) || state.restarting == Some(true) || now.restart_count.unwrap_or(0) > 0 {
            let code = state.exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default();
            return Err(format!("stopped as soon as it started{code}"));
        }
        let health = state.health.and_then(|h| h.status).map(|s| s.to_string());
        let up = started.elapsed() >= STAY_UP;
        match health.as_deref() {
            None | Some("" | "none" | "healthy") if up => return Ok(()),
            Some("unhealthy") => return Err("is unhealthy".into()),
            Some("starting") if started.elapsed() >= HEALTHY_WITHIN => {
                return Err(format!("was not healthy within {} s", HEALTHY_WITHIN.as_secs()));
            }
            Some("starting") if up && !said_waiting => {
                said_waiting = true;
                report.say("Waiting for its health check".into());
            }
            _ => {}
        }
    }
}

/// The old container back under its name, running if it was, the new one (if made) removed
/// first; what could not be done, as the end of a sentence.
async fn put_back(
    client: &bollard::Docker,
    old_id: &str,
    new_id: Option<&str>,
    name: Option<&str>,
    running: bool,
) -> String {
    let mut failed = Vec::new();
    if let Some(new_id) = new_id {
        // Its volumes are the old one's: kept.
        let options = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
        if let Err(e) = client.remove_container(new_id, Some(options)).await {
            failed.push(format!("the new one could not be removed ({e})"));
        }
    }
    if let Some(name) = name
        && let Err(e) = client.rename_container(old_id, RenameContainerOptionsBuilder::new().name(name).build()).await
    {
        failed.push(format!("the old one could not get its name back ({e})"));
    }
    if running && let Err(e) = client.start_container(old_id, None).await {
        failed.push(format!("the old one could not start ({e})"));
    }
    if failed.is_empty() {
        "; the old one is back".into()
    } else {
        format!("; putting the old one back: {}", failed.join("; "))
    }
}

/// What the new container is made with, and the networks it joins after (the engine takes one
/// at creation). Settings equal to the old image's own defaults are left to the new image.
fn settings(
    old: &ContainerInspectResponse,
    image: bollard::models::ImageConfig,
) -> (ContainerCreateBody, Vec<(String, EndpointSettings)>) {
    let c = old.config.clone().unwrap_or_default();
    let id = old.id.clone().unwrap_or_default();
    let unless = |mine: Option<Vec<String>>, theirs: Option<Vec<String>>| mine.filter(|m| Some(m) != theirs.as_ref());
    let minus = |mine: Option<Vec<String>>, theirs: &Option<Vec<String>>| {
        mine.map(|m| m.into_iter().filter(|x| !theirs.iter().flatten().any(|t| t == x)).collect::<Vec<_>>())
    };
    let labels = c.labels.map(|l| {
        let theirs = image.labels.clone().unwrap_or_default();
        l.into_iter().filter(|(k, v)| theirs.get(k) != Some(v)).collect::<HashMap<_, _>>()
    });
    let mut host = old.host_config.clone().unwrap_or_default();
    // The volume each place holds now, by name.
    let volume_at = |dest: &str| {
        old.mounts.iter().flatten().find_map(|m| {
            (m.typ.as_deref() == Some("volume") && m.destination.as_deref() == Some(dest)).then(|| m.name.clone())?
        })
    };
    // `--mount type=volume,dst=/data` without a name: the volume it got, named.
    for m in host.mounts.iter_mut().flatten() {
        let sourceless = m.source.as_deref().is_none_or(str::is_empty);
        if m.typ == Some(bollard::models::MountType::VOLUME) && sourceless {
            m.source = m.target.as_deref().and_then(volume_at);
        }
    }
    // Anonymous volumes (`-v /data`, an image's VOLUME) named, so their data goes along.
    let mut binds = host.binds.clone().unwrap_or_default();
    let covered = |dest: &str, binds: &[String]| {
        binds.iter().any(|b| b.split(':').nth(1) == Some(dest))
            || host.mounts.iter().flatten().any(|m| m.target.as_deref() == Some(dest))
    };
    for m in old.mounts.iter().flatten() {
        let (Some(volume), Some(dest)) = (m.name.as_deref(), m.destination.as_deref()) else { continue };
        if m.typ.as_deref() == Some("volume") && !covered(dest, &binds) {
            let ro = if m.rw == Some(false) { ":ro" } else { "" };
            binds.push(format!("{volume}:{dest}{ro}"));
        }
    }
    host.binds = (!binds.is_empty()).then_some(binds);
    // Networks: the main one at creation, the others joined after; aliases kept but the old id's.
    let short = &id[..id.len().min(12)];
    let mut networks: Vec<(String, EndpointSettings)> = old
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(network, e)| {
            // The engine adds the short id as an alias; a person's aliases stay.
            let aliases = e.aliases.map(|a| a.into_iter().filter(|x| x != short && *x != id).collect());
            let endpoint = EndpointSettings {
                aliases,
                links: e.links,
                ipam_config: e.ipam_config,
                driver_opts: e.driver_opts,
                ..Default::default()
            };
            (network, endpoint)
        })
        .collect();
    let main = host.network_mode.clone().filter(|m| networks.iter().any(|(n, _)| n == m));
    let first = match main {
        Some(m) => networks.iter().position(|(n, _)| *n == m),
        None if networks.len() == 1 => Some(0),
        None => None,
    };
    let mut at_creation = first.map(|i| networks.remove(i));
    // In another container's network the engine copied its hostname, and takes none.
    let borrowed = host.network_mode.as_deref().is_some_and(|m| m.starts_with("container:"));
    // Host, none or another container's network: nothing to join.
    if borrowed || matches!(host.network_mode.as_deref(), Some("host" | "none")) {
        networks.clear();
    }
    if borrowed {
        at_creation = None;
    }
    // `--entrypoint ""` is kept as none: the image's would come back in front of the command.
    let entrypoint = match (c.entrypoint, &image.entrypoint) {
        (None, Some(theirs)) if !theirs.is_empty() => Some(vec![String::new()]),
        (mine, theirs) => unless(mine, theirs.clone()),
    };
    let body = ContainerCreateBody {
        hostname: c.hostname.filter(|h| !h.is_empty() && h != short && !borrowed),
        domainname: c.domainname.filter(|_| !borrowed),
        user: c.user.filter(|u| Some(u) != image.user.as_ref()),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: minus(c.exposed_ports, &image.exposed_ports).filter(|p| !p.is_empty()),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: minus(c.env, &image.env),
        cmd: unless(c.cmd, image.cmd.clone()),
        healthcheck: c.healthcheck.filter(|h| Some(h) != image.healthcheck.as_ref()),
        args_escaped: c.args_escaped,
        image: c.image,
        volumes: minus(c.volumes, &image.volumes).filter(|v| !v.is_empty()),
        working_dir: c.working_dir.filter(|w| Some(w) != image.working_dir.as_ref()),
        entrypoint,
        network_disabled: c.network_disabled,
        on_build: c.on_build,
        labels,
        stop_signal: c.stop_signal.filter(|s| Some(s) != image.stop_signal.as_ref()),
        stop_timeout: c.stop_timeout,
        shell: c.shell,
        host_config: Some(host),
        networking_config: at_creation
            .map(|(n, e)| NetworkingConfig { endpoints_config: Some(HashMap::from([(n, e)])) }),
    };
    (body, networks)
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerConfig, HostConfig, ImageConfig, Mount, MountPoint, MountType, NetworkSettings};

    use super::*;

    #[test]
    fn what_came_from_the_old_image_is_left_to_the_new_one_and_anonymous_volumes_go_along() {
        let old = ContainerInspectResponse {
            id: Some("0123456789abcdef".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                image: Some("shop/web:1".into()),
                cmd: Some(vec!["serve".into()]),
                env: Some(vec!["PATH=/bin".into(), "MODE=prod".into()]),
                labels: Some(HashMap::from([("maker".into(), "image".into()), ("team".into(), "web".into())])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                binds: Some(vec!["data:/data".into()]),
                network_mode: Some("shop".into()),
                mounts: Some(vec![Mount {
                    target: Some("/scratch".into()),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([
                    (
                        "shop".into(),
                        EndpointSettings {
                            aliases: Some(vec!["db".into(), "0123456789ab".into(), "web".into()]),
                            ..Default::default()
                        },
                    ),
                    ("other".into(), EndpointSettings { aliases: Some(vec!["x".into()]), ..Default::default() }),
                ])),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("data".into()),
                    destination: Some("/data".into()),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("f00d".into()),
                    destination: Some("/cache".into()),
                    rw: Some(true),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("beef".into()),
                    destination: Some("/scratch".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let image = ImageConfig {
            cmd: Some(vec!["serve".into()]),
            env: Some(vec!["PATH=/bin".into()]),
            labels: Some(HashMap::from([("maker".into(), "image".into())])),
            entrypoint: Some(vec!["/entry".into()]),
            ..Default::default()
        };
        let (body, after) = settings(&old, image.clone());
        assert_eq!(body.cmd, None, "the image's own command comes from the new image");
        assert_eq!(body.env, Some(vec!["MODE=prod".into()]));
        assert_eq!(body.labels, Some(HashMap::from([("team".into(), "web".into())])));
        assert_eq!(body.hostname, None, "the old id as hostname is not kept");
        assert_eq!(body.image.as_deref(), Some("shop/web:1"));
        let binds = body.host_config.as_ref().and_then(|h| h.binds.clone()).unwrap_or_default();
        assert_eq!(binds, vec!["data:/data".to_owned(), "f00d:/cache".to_owned()]);
        let mounts = body.host_config.as_ref().and_then(|h| h.mounts.clone()).unwrap_or_default();
        assert_eq!(mounts[0].source.as_deref(), Some("beef"), "a nameless --mount volume keeps its data");
        assert_eq!(body.entrypoint, Some(vec![String::new()]), "an emptied entrypoint stays empty");
        // The main network at creation with a person's aliases (not the engine's short id, and
        // not one that only begins the id); the other joined after.
        let at_creation = body.networking_config.and_then(|n| n.endpoints_config).unwrap_or_default();
        let aliases = at_creation.get("shop").and_then(|e| e.aliases.clone()).unwrap_or_default();
        assert_eq!(aliases, vec!["db".to_owned(), "web".to_owned()]);
        assert_eq!(after.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["other"]);
        // In another container's network: no hostname of its own, nothing to join.
        let mut borrowed = old.clone();
        if let Some(h) = borrowed.host_config.as_mut() {
            h.network_mode = Some("container:vpn".into());
        }
        if let Some(c) = borrowed.config.as_mut() {
            c.hostname = Some("vpn-host".into());
        }
        let (body, after) = settings(&borrowed, image);
        assert_eq!((body.hostname, body.networking_config.is_none(), after.len()), (None, true, 0));
    }
}
