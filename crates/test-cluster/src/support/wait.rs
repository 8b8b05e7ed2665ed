//! Polling with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`wait_for`] polls.
const POLL: Duration = Duration::from_millis(200);

/// Polls `check` every 200 ms until it returns `Some`, and returns that value.
///
/// Panics after `timeout` with a message naming `what` was awaited, so a failing test says which
/// condition never held rather than only that it timed out.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_some() {
        let mut n = 0;
        let got = wait_for("n reaches 3", Duration::from_secs(5), || {
            n += 1;
            let v = n;
            async move { (v >= 3).then_some(v) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for: the impossible")]
    async fn names_what_it_waited_for() {
        wait_for("the impossible", Duration::from_millis(300), || async {
            None::<()>
        })
        .await;
    }
}
