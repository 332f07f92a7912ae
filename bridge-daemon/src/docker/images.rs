//! Images: the list with what uses each, removal, pulls followed layer by layer, and whether a
//! registry now names another image under a tag than the one here.

use bollard::query_parameters::{CreateImageOptionsBuilder, ListImagesOptions, RemoveImageOptionsBuilder};
use futures_util::StreamExt;
use porta_shared::bridge::Done;
use porta_shared::docker::{
    DockerJob, DockerPull, Image, ImageCheck, ImageChecked, ImageRemove, ImagesListed, image_reference,
};
use porta_shared::{ErrorBody, ErrorCode};

use super::jobs::Reporter;
use super::{Docker, READ_WITHIN, unavailable};

/// A pull whose registry sends nothing for this long ends.
const PULL_STALL: std::time::Duration = std::time::Duration::from_secs(300);

impl Docker {
    /// Every image with a name or used by a container (not the layers between), newest first.
    pub async fn images(&self) -> Result<ImagesListed, ErrorBody> {
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let listed = self.ask("the image list", client.list_images(None::<ListImagesOptions>)).await?;
        let users = self.users(&client).await?;
        let mut images: Vec<Image> = listed
            .into_iter()
            .map(|i| Image {
                containers: users.of_image(&i.id),
                tags: i.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect(),
                digests: i.repo_digests.into_iter().filter(|d| !d.starts_with("<none>@")).collect(),
                size: u64::try_from(i.size).unwrap_or(0),
                created_ms: u64::try_from(i.created).unwrap_or(0) * 1000,
                id: i.id,
            })
            .collect();
        images.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(ImagesListed { images })
    }

    /// Removes an image, or a tag of it; never one a container uses.
    pub async fn remove_image(&self, req: &ImageRemove) -> Result<Done, ErrorBody> {
        let image = image_reference(&req.image).map_err(|m| ErrorBody::new(ErrorCode::BadRequest, m))?;
        let (client, _) = self.engine().await.map_err(unavailable)?;
        // The engine's force also removes an image a stopped container was made from (leaving
        // the container without it): refused here whatever `force` says.
        let found = self.ask(image, client.inspect_image(image)).await?;
        let id = found.id.unwrap_or_default();
        let users = self.users(&client).await?.of_image(&id);
        let by_id = id == image || id.trim_start_matches("sha256:").starts_with(image.trim_start_matches("sha256:"));
        if !users.is_empty() && (by_id || found.repo_tags.as_ref().is_none_or(|t| t.len() <= 1)) {
            let msg = format!("{image} is used by {}: remove them first", users.join(", "));
            return Err(ErrorBody::new(ErrorCode::Conflict, msg));
        }
        // Never the engine's force: an image with several tags, named by id, goes tag by tag
        // (the last one removes it), so nothing a container uses is taken from under it.
        let tags = found.repo_tags.unwrap_or_default();
        let names: Vec<&str> = if by_id && tags.len() > 1 {
            if !req.force {
                let msg = format!("{image} has the tags {}: confirm removing them all", tags.join(", "));
                return Err(ErrorBody::new(ErrorCode::Conflict, msg));
            }
            tags.iter().map(String::as_str).collect()
        } else {
            vec![image]
        };
        for name in names {
            let options = RemoveImageOptionsBuilder::new().force(false).build();
            self.ask(name, client.remove_image(name, Some(options), None)).await?;
        }
        Ok(Done {})
    }

    /// Starts pulling an image; its layers are followed with `docker.job.read`.
    pub async fn pull(&self, req: &DockerPull) -> Result<DockerJob, ErrorBody> {
        let image = with_tag(image_reference(req.image.trim()).map_err(|m| ErrorBody::new(ErrorCode::BadRequest, m))?);
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let (job, report) = self.jobs.start()?;
        let watch = self.watch.clone();
        report.say(format!("Pulling {image}"));
        tracing::info!(job = report.job(), %image, "pulling an image");
        tokio::spawn(async move {
            let pulled = pull_into(&client, &image, &report).await;
            report.end(pulled.err());
            // What runs may be current now.
            watch.recheck();
        });
        Ok(job)
    }

    /// Whether the registry's tag names another image than the one pulled here under it.
    pub async fn check_image(&self, req: &ImageCheck) -> Result<ImageChecked, ErrorBody> {
        let image = with_tag(image_reference(req.image.trim()).map_err(|m| ErrorBody::new(ErrorCode::BadRequest, m))?);
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let found = self.ask(&image, client.inspect_image(&image)).await?;
        let repository = repository(&image);
        // An image pulled under several names of one repository keeps a digest for each.
        let locals: Vec<String> = found
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| {
                let (name, digest) = d.split_once('@')?;
                same_repository(name, repository).then(|| digest.to_owned())
            })
            .collect();
        let local = locals.first().cloned();
        let mut checked = ImageChecked { image: image.clone(), local, remote: None, update: false, note: None };
        if checked.local.is_none() {
            checked.note = Some("not pulled from a registry (built or imported here): nothing to compare".into());
            return Ok(checked);
        }
        match tokio::time::timeout(READ_WITHIN, client.inspect_registry_image(&image, None)).await {
            Err(_) => checked.note = Some("the registry did not answer within 10 s".into()),
            Ok(Err(e)) => checked.note = Some(registry_failed(e)),
            Ok(Ok(remote)) => {
                checked.remote = remote.descriptor.digest;
                if let Some(r) = &checked.remote {
                    checked.update = !locals.contains(r);
                    if !checked.update {
                        // The digest here that matches.
                        checked.local = Some(r.clone());
                    }
                }
            }
        }
        Ok(checked)
    }
}

/// Pulls `image`, each layer's progress and what the engine says reported; why it failed.
pub(crate) async fn pull_into(client: &bollard::Docker, image: &str, report: &Reporter) -> Result<(), String> {
    // Without a tag the engine would pull every tag of the repository.
    let image = with_tag(image);
    let options = CreateImageOptionsBuilder::new().from_image(&image).build();
    let mut stream = client.create_image(Some(options), None, None);
    loop {
        // A registry that stalls ends the pull (dropping the stream stops the engine's).
        let item = match tokio::time::timeout(PULL_STALL, stream.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => return Ok(()),
            Err(_) => return Err("the registry sent nothing for 5 minutes".into()),
        };
        let info = item.map_err(pull_failed)?;
        if let Some(error) = info.error_detail.and_then(|e| e.message) {
            return Err(error);
        }
        let status = info.status.unwrap_or_default();
        match info.id.filter(|id| !id.is_empty() && !status.starts_with("Pulling from")) {
            Some(id) => {
                let detail = info.progress_detail.unwrap_or_default();
                let amount = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).filter(|&n| n > 0);
                report.step(&id, &status, amount(detail.current), amount(detail.total));
            }
            None if !status.is_empty() => report.say(status),
            None => {}
        }
    }
}

/// `name` with `:latest` when it names no tag or digest (the engine pulls every tag of a
/// name given alone).
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') { image.to_owned() } else { format!("{image}:latest") }
}

/// The repository of a reference: without its tag or digest.
fn repository(image: &str) -> &str {
    let cut = image.find('@').unwrap_or(image.len());
    let image = &image[..cut];
    let slash = image.rfind('/').map_or(0, |s| s + 1);
    match image[slash..].find(':') {
        Some(colon) => &image[..slash + colon],
        None => image,
    }
}

/// Whether two repository names are one, counting Docker Hub's implied parts
/// (`nginx` = `docker.io/library/nginx`).
fn same_repository(a: &str, b: &str) -> bool {
    fn full(name: &str) -> String {
        let first = name.split('/').next().unwrap_or(name);
        let has_host = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        match (has_host, name.contains('/')) {
            (true, _) => name.to_owned(),
            (false, true) => format!("docker.io/{name}"),
            (false, false) => format!("docker.io/library/{name}"),
        }
    }
    full(a) == full(b)
}

fn pull_failed(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        bollard::errors::Error::DockerStreamError { error } => error,
        other => format!("the engine stopped answering: {other}"),
    }
}

fn registry_failed(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code: 401 | 403, .. } => {
            "the registry asks for credentials the engine was not given".into()
        }
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            format!("the registry could not be asked: {}", message.trim())
        }
        other => format!("the registry could not be asked: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_without_a_tag_means_latest_and_repositories_compare_as_docker_does() {
        assert_eq!(with_tag("nginx"), "nginx:latest");
        assert_eq!(with_tag("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(with_tag("127.0.0.1:5000/app:2"), "127.0.0.1:5000/app:2");
        assert_eq!(with_tag("app@sha256:00"), "app@sha256:00");
        assert_eq!(repository("127.0.0.1:5000/app:2"), "127.0.0.1:5000/app");
        assert_eq!(repository("nginx:1.27"), "nginx");
        assert_eq!(repository("app@sha256:00"), "app");
        assert!(same_repository("nginx", "docker.io/library/nginx"));
        assert!(same_repository("grafana/grafana", "docker.io/grafana/grafana"));
        assert!(!same_repository("127.0.0.1:5000/app", "app"));
        assert!(same_repository("localhost/app", "localhost/app"));
    }
}
