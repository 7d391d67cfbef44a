//! Reusable threads for work that must not hold the caller past a deadline (jq expressions
//! come from users and may not terminate).

use std::sync::{Mutex, mpsc};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Idle workers, each waiting for its next job.
static IDLE: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

#[derive(Debug, PartialEq)]
pub enum Failure {
    /// The work did not finish in time.
    Timeout,
    /// No thread could be started, or the work panicked.
    Lost,
}

/// Runs `work` on a worker thread and waits for it up to `timeout`. A worker whose job
/// overruns is abandoned rather than reused: it exits once the job ends, if ever.
pub(crate) fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    timeout: Duration,
) -> Result<T, Failure> {
    let (done, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    let idle = IDLE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let worker = match idle {
        Some(worker) => worker,
        None => spawn()?,
    };
    worker.send(job).map_err(|_| Failure::Lost)?;
    match result.recv_timeout(timeout) {
        Ok(value) => {
            IDLE.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
            Ok(value)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Failure::Timeout),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Failure::Lost),
    }
}

fn spawn() -> Result<mpsc::Sender<Job>, Failure> {
    let (sender, jobs) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("ferry-jq-worker".into())
        .spawn(move || jobs.into_iter().for_each(|job| job()))
        .map_err(|_| Failure::Lost)?;
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_timeouts_and_panics() {
        assert_eq!(run(|| 6 * 7, Duration::from_secs(5)), Ok(42));
        let slow = run(
            || std::thread::sleep(Duration::from_millis(500)),
            Duration::from_millis(50),
        );
        assert_eq!(slow, Err(Failure::Timeout));
        let panicked: Result<(), _> = run(|| panic!("boom"), Duration::from_secs(5));
        assert_eq!(panicked, Err(Failure::Lost));
        assert_eq!(
            run(|| "still works", Duration::from_secs(5)),
            Ok("still works")
        );
    }
}
