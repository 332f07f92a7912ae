//! Jobs the engine takes a while over (pulling an image): started by one request, followed by
//! others ([`DockerJobRead`]) that wait for the next change, so a person sees each layer come
//! down without the answer to the first request waiting minutes. An ended job is kept a while
//! for a reader who comes late, then forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use porta_shared::docker::{DockerJob, DockerJobRead, JobProgress, JobStep};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::sync::watch;

/// Jobs running at once on a bridge.
const MAX_RUNNING: usize = 8;
/// Ended jobs kept for late readers, at most.
const MAX_ENDED: usize = 64;

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Kept>>,
}

struct Kept {
    progress: watch::Sender<JobProgress>,
    ended_at: Option<Instant>,
}

/// What a job's task reports through.
pub(crate) struct Reporter {
    job: String,
    progress: watch::Sender<JobProgress>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new job, or why not now; forgets jobs that ended long enough ago.
    pub(crate) fn start(&self) -> Result<(DockerJob, Reporter), ErrorBody> {
        let mut jobs = self.lock();
        let keep = Duration::from_secs(DockerJobRead::KEPT_S);
        for kept in jobs.values_mut() {
            if kept.ended_at.is_none() && kept.progress.borrow().ended {
                kept.ended_at = Some(Instant::now());
            }
        }
        jobs.retain(|_, k| k.ended_at.is_none_or(|at| at.elapsed() < keep));
        // Jobs that end fast (a name no registry has) are kept for a while, not without bound.
        let mut ended: Vec<(Instant, String)> =
            jobs.iter().filter_map(|(id, k)| k.ended_at.map(|at| (at, id.clone()))).collect();
        if ended.len() > MAX_ENDED {
            ended.sort();
            for (_, id) in &ended[..ended.len() - MAX_ENDED] {
                jobs.remove(id);
            }
        }
        if jobs.values().filter(|k| k.ended_at.is_none()).count() >= MAX_RUNNING {
            let msg = format!("{MAX_RUNNING} container engine jobs are under way on this server: wait for one to end");
            return Err(ErrorBody::new(ErrorCode::RateLimited, msg));
        }
        let job = format!("{:032x}", rand::random::<u128>());
        let (progress, _) = watch::channel(JobProgress::default());
        jobs.insert(job.clone(), Kept { progress: progress.clone(), ended_at: None });
        Ok((DockerJob { job: job.clone() }, Reporter { job, progress }))
    }

    /// The job's progress once it changed after `req.after`, or as it is after `req.wait_ms`.
    pub async fn read(&self, req: &DockerJobRead) -> Result<JobProgress, ErrorBody> {
        let mut seen = {
            let jobs = self.lock();
            let kept = jobs.get(&req.job).ok_or_else(|| {
                ErrorBody::new(ErrorCode::NotFound, format!("no job {} on this server (or it ended long ago)", req.job))
            })?;
            kept.progress.subscribe()
        };
        let wait = Duration::from_millis(u64::from(req.wait_ms.min(DockerJobRead::MAX_WAIT_MS)));
        let after = req.after;
        // A job whose task is gone (the sender dropped) has said all it will.
        let _ = tokio::time::timeout(wait, seen.wait_for(|p| p.version > after || p.ended)).await;
        let now = seen.borrow().clone();
        Ok(now)
    }
}

impl Reporter {
    pub(crate) fn job(&self) -> &str {
        &self.job
    }

    /// Changes the progress; readers waiting see it.
    pub(crate) fn update(&self, f: impl FnOnce(&mut JobProgress)) {
        self.progress.send_modify(|p| {
            f(p);
            p.version += 1;
            if p.steps.len() > JobProgress::MAX_STEPS {
                let over = p.steps.len() - JobProgress::MAX_STEPS;
                p.steps.drain(..over);
            }
            if p.said.len() > JobProgress::MAX_SAID {
                let over = p.said.len() - JobProgress::MAX_SAID;
                p.said.drain(..over);
            }
        });
    }

    /// What a step (a layer) is doing now.
    pub(crate) fn step(&self, id: &str, status: &str, current: Option<u64>, total: Option<u64>) {
        self.update(|p| match p.steps.iter_mut().find(|s| s.id == id) {
            Some(s) => {
                s.status = status.to_owned();
                s.current = current;
                s.total = total;
            }
            None => p.steps.push(JobStep { id: id.to_owned(), status: status.to_owned(), current, total }),
        });
    }

    pub(crate) fn say(&self, line: String) {
        self.update(|p| p.said.push(line));
    }

    /// The job ended, well or with `error`.
    pub(crate) fn end(self, error: Option<String>) {
        self.update(|p| {
            p.ended = true;
            p.error = error;
        });
    }
}

impl Drop for Reporter {
    /// A task that ends without saying so (it panicked) still ends its job for readers.
    fn drop(&mut self) {
        if !self.progress.borrow().ended {
            self.progress.send_modify(|p| {
                p.ended = true;
                p.version += 1;
                p.error.get_or_insert_with(|| "the job stopped unexpectedly".into());
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_waits_for_the_next_change_and_sees_the_end() {
        let jobs = Jobs::default();
        let (job, reporter) = jobs.start().unwrap();
        let read = |after| DockerJobRead { job: job.job.clone(), after, wait_ms: 5_000 };
        let first = jobs.read(&DockerJobRead { wait_ms: 0, ..read(0) }).await.unwrap();
        assert_eq!((first.version, first.ended), (0, false));
        let r = read(0);
        let later = async { jobs.read(&r).await.unwrap() };
        let (seen, ()) = tokio::join!(later, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reporter.step("abc", "Downloading", Some(5), Some(10));
        });
        assert_eq!(
            seen.steps,
            vec![JobStep { id: "abc".into(), status: "Downloading".into(), current: Some(5), total: Some(10) }]
        );
        reporter.step("abc", "Pull complete", None, None);
        reporter.end(Some("boom".into()));
        let done = jobs.read(&read(seen.version)).await.unwrap();
        assert!(done.ended);
        assert_eq!(done.error.as_deref(), Some("boom"));
        assert_eq!(done.steps.len(), 1);
        let unknown = DockerJobRead { job: "nope".into(), after: 0, wait_ms: 0 };
        assert_eq!(jobs.read(&unknown).await.map_err(|e| e.code), Err(ErrorCode::NotFound));
    }

    #[tokio::test]
    async fn a_task_that_vanishes_ends_its_job_and_running_jobs_are_bounded() {
        let jobs = Jobs::default();
        let (job, reporter) = jobs.start().unwrap();
        drop(reporter);
        let read = DockerJobRead { job: job.job, after: 0, wait_ms: 5_000 };
        let seen = jobs.read(&read).await.unwrap();
        assert!(seen.ended && seen.error.is_some());
        let running: Vec<_> = (0..MAX_RUNNING).map(|_| jobs.start().unwrap()).collect();
        assert_eq!(jobs.start().map(|_| ()).map_err(|e| e.code), Err(ErrorCode::RateLimited));
        drop(running);
        assert!(jobs.start().is_ok(), "ended jobs do not count");
    }
}
