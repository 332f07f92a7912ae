//! What no container uses, shown before anything goes; then exactly what was shown goes, each
//! thing checked again as it is removed (a container made meanwhile keeps what it uses). The
//! engine's own prune would remove whatever is unused at that moment, seen or not.

use bollard::query_parameters::{RemoveImageOptionsBuilder, RemoveVolumeOptions};
use porta_shared::docker::{DockerPrune, PruneItem, Pruned, Unused};
use porta_shared::{ErrorBody, ErrorCode};

use super::{Docker, READ_WITHIN, unavailable};

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
        for asked in remove {
            let Some((item, tags)) = plan.iter().find(|(i, _)| &i.id == asked) else {
                done.kept.push(format!("{asked}: in use now, or gone already"));
                continue;
            };
            let removed = match req.what {
                Unused::DanglingImages | Unused::Images => {
                    // An unused image with several tags goes only when forced; used ones were
                    // left out of the plan just now.
                    let force = *tags > 1;
                    let options = RemoveImageOptionsBuilder::new().force(force).build();
                    tokio::time::timeout(READ_WITHIN, client.remove_image(&item.id, Some(options), None))
                        .await
                        .map(|r| r.map(|_| ()))
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

    /// Everything of a kind no container uses now (with an image's count of tags).
    async fn unused(&self, what: Unused) -> Result<Vec<(PruneItem, usize)>, ErrorBody> {
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
                        (PruneItem { name, bytes: Some(i.size), id: i.id }, i.tags.len())
                    })
                    .collect()
            }
            Unused::Volumes => self
                .volumes()
                .await?
                .volumes
                .into_iter()
                .filter(|v| v.containers.is_empty())
                .map(|v| (PruneItem { id: v.name.clone(), name: v.name, bytes: v.size }, 0))
                .collect(),
            Unused::Networks => self
                .networks()
                .await?
                .networks
                .into_iter()
                .filter(|n| n.containers.is_empty() && !n.builtin)
                .map(|n| (PruneItem { id: n.id, name: n.name, bytes: None }, 0))
                .collect(),
        })
    }
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
