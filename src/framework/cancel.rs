//! Cancellation for in-flight work: StopProvider fires it, API calls race against it.

use std::future::Future;

use tokio::sync::watch;

/// The sending side, held by the server.
#[derive(Debug)]
pub struct CancelSource(watch::Sender<bool>);

/// A cheap, cloneable receiver.
#[derive(Debug, Clone)]
pub struct Cancel(watch::Receiver<bool>);

impl CancelSource {
    /// A new, not yet fired source.
    pub fn new() -> CancelSource {
        CancelSource(watch::channel(false).0)
    }
    /// A receiver.
    pub fn token(&self) -> Cancel {
        Cancel(self.0.subscribe())
    }
    /// Fires: every current and future `cancelled()` completes.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

impl Default for CancelSource {
    fn default() -> Self {
        CancelSource::new()
    }
}

/// Returned when work was stopped by StopProvider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl Cancel {
    /// True once fired.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }
    /// Completes when fired.
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            // The source is gone without firing: nothing can cancel any more.
            std::future::pending::<()>().await;
        }
    }
    /// Runs `fut` unless cancelled first.
    pub async fn run<F: Future>(&self, fut: F) -> Result<F::Output, Cancelled> {
        tokio::select! {
            biased;
            _ = self.cancelled() => Err(Cancelled),
            out = fut => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_interrupts_pending_work() {
        let src = CancelSource::new();
        let tok = src.token();
        let work = tokio::spawn(async move {
            tok.run(tokio::time::sleep(std::time::Duration::from_secs(60)))
                .await
        });
        src.cancel();
        assert_eq!(work.await.ok(), Some(Err(Cancelled)));
        assert!(src.token().is_cancelled());
    }
}
