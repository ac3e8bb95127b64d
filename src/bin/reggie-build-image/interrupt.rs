//! Ctrl-C during a build: the work's future is dropped, so the daemon
//! sees the build (or push) request's connection close, cancels the
//! build, and kills and removes the container of the running step.
//! Nothing else is removed.

use std::future::Future;

/// The exit code after SIGINT, as shells report it.
pub const EXIT_CODE: i32 = 130;

/// Runs `work` to its end, or until SIGINT (`None`, `work` dropped).
pub async fn or_interrupt<T>(work: impl Future<Output = T>) -> Option<T> {
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => Some(r),
        _ = interrupt => None,
    }
}
