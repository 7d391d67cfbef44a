//! Process-wide libgit2 settings, applied once before this crate's first git operation.

use std::sync::Once;
use std::time::Duration;

/// libgit2 waits forever on a server that accepts a connection and then stays silent; the
/// async timeout gives up on such a call, but the blocking thread (and the mirror lock it may
/// hold) would stay stuck. This bounds every connect and every read or write on a socket
/// (git://, http(s) and ssh alike) so such threads end.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(60);

static APPLY: Once = Once::new();

pub(crate) fn apply() {
    APPLY.call_once(|| {
        let millis = i32::try_from(STALL_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: these setters write plain int globals of libgit2 without synchronization;
        // `Once` makes this the only write, and it happens before this crate's first libgit2
        // call (RepoCache::new calls it), which is the only libgit2 user of the process.
        #[allow(unsafe_code)]
        let results = unsafe {
            [
                git2::opts::set_server_connect_timeout_in_milliseconds(millis),
                git2::opts::set_server_timeout_in_milliseconds(millis),
            ]
        };
        crate::http_transport::register();
        for result in results {
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not set libgit2 socket timeouts");
            }
        }
    });
}
