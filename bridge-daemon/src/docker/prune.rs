//! What no container uses, shown before anything goes; then exactly what was shown goes, each
//! thing checked again as it is removed (a container made meanwhile keeps what it uses). The
//! engine's own prune would remove whatever is unused at that moment, seen or not.

use bollard::query_parameters::{RemoveImageOptionsBuilder, RemoveVolumeOptions};
use porta_shared::docker::{DockerPrune, PruneItem, Pruned, Unused};
use porta_shared::{ErrorBody, ErrorCode};

use super::{Docker, READ_WITHIN, unavailable};

/// How long one removal request goes on: within the 30 s anyone waits for an answer.
const PRUNE_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

impl Docker {
    /// What would go; or, with `remove`, removes those of them still unused.
    pub async fn prune(&self, req: &DockerPrune) -> Result<Pruned, ErrorBody> {
        let plan = self.unused(req.what).await?;
        let Some(remove) = &req.remove else {
            let bytes = plan.iter().filter_map(|(i, _)| i.bytes).sum();
            return Ok(Pruned { items: plan.into_iter().map(|(i, _)| i).collect(), bytes, kept: Vec::new() });
        };
        if remove.len() > DockerPrune::MAX_REMOVE {
            let msg = format!("at most {} things are removed at once", DockerPrune::MAX_REMOVE);
            return Err(ErrorBody::new(ErrorCode::TooLarge, msg));
        }
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let mut done = Pruned::default();
        // Within the time an answer is waited for; what is left is said, to be asked again.
        let deadline = tokio::time::Instant::now() + PRUNE_WITHIN;
        for asked in remove {
            if tokio::time::Instant::now() > deadline {
                done.kept.push(format!("{asked}: not reached within {} s; ask again", PRUNE_WITHIN.as_secs()));
                continue;
            }
            let Some((item, tags)) = plan.iter().find(|(i, _)| &i.id == asked) else {
                done.kept.push(format!("{asked}: in use now, or gone already"));
                continue;
            };
            let removed = match req.what {
                Unused::DanglingImages | Unused::Images => {
                    // Never forced: an image with several tags goes tag by tag (the last one
                    // removes it); used ones were left out of the plan just now.
                    let names: Vec<&str> =
                        if tags.len() > 1 { tags.iter().map(String::as_str).collect() } else { vec![item.id.as_str()] };
                    let mut removed = Ok(Ok(()));
                    for name in names {
                        let options = RemoveImageOptionsBuilder::new().force(false).build();
                        removed = tokio::time::timeout(READ_WITHIN, client.remove_image(name, Some(options), None))
                            .await
                            .map(|r| r.map(drop));
                        if !matches!(removed, Ok(Ok(()))) {
                            break;
                        }
                    }
                    removed
                }
                Unused::Volumes => {
                    tokio::time::timeout(READ_WITHIN, client.remove_volume(&item.id, None::<RemoveVolumeOptions>)).await
                }
                Unused::Networks => tokio::time::timeout(READ_WITHIN, client.remove_network(&item.id)).await,
            };
            match removed {
                Ok(Ok(())) => {
                    done.bytes += item.bytes.unwrap_or(0);
                    done.items.push(item.clone());
                }
                Ok(Err(e)) => done.kept.push(format!("{}: {}", item.name, self.failed(e, &item.name).message)),
                Err(_) => done.kept.push(format!("{}: the engine did not answer within 10 s", item.name)),
            }
        }
        Ok(done)
    }

    /// Everything of a kind no container uses now (with an image's tags).
    async fn unused(&self, what: Unused) -> Result<Vec<(PruneItem, Vec<String>)>, ErrorBody> {
        Ok(match what {
            Unused::DanglingImages | Unused::Images => {
                let dangling_only = what == Unused::DanglingImages;
                self.images()
                    .await?
                    .images
                    .into_iter()
                    .filter(|i| i.containers.is_empty() && (!dangling_only || i.tags.is_empty()))
                    .map(|i| {
                        let name =
                            if i.tags.is_empty() { format!("<none> {}", short(&i.id)) } else { i.tags.join(", ") };
                        (PruneItem { name, bytes: Some(i.size), id: i.id }, i.tags)
                    })
                    .collect()
            }
            Unused::Volumes => self
                .volumes()
                .await?
                .volumes
                .into_iter()
                .filter(|v| v.containers.is_empty())
                .map(|v| (PruneItem { id: v.name.clone(), name: v.name, bytes: v.size }, Vec::new()))
                .collect(),
            Unused::Networks => self
                .networks()
                .await?
                .networks
                .into_iter()
                .filter(|n| n.containers.is_empty() && !n.builtin)
                .map(|n| (PruneItem { id: n.id, name: n.name, bytes: None }, Vec::new()))
                .collect(),
        })
    }
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
