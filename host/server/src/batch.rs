//! Group commit for the server's store writes: whoever asks while a batch
//! is being written joins the next one, so a burst of accepts or of ended
//! executions costs one flush (one fsync, or one round trip to a shared
//! store) instead of one each. Owns only the grouping; what a batch
//! writes is its caller's.

use tokio::sync::{mpsc, oneshot};

type Asked<T, R> = (T, oneshot::Sender<Result<R, String>>);

/// Items handed to one blocking write at a time.
pub(crate) struct Batcher<T, R> {
    tx: mpsc::UnboundedSender<Asked<T, R>>,
}

impl<T: Send + 'static, R: Clone + Send + 'static> Batcher<T, R> {
    /// Start the writer (inside a tokio runtime). `write` gets every item
    /// asked since the last batch began, at most `max`, and answers each
    /// in order; an error answers them all.
    pub(crate) fn start(
        max: usize,
        write: impl Fn(Vec<T>) -> Result<Vec<R>, String> + Send + Sync + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Asked<T, R>>();
        let write = std::sync::Arc::new(write);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut asked = vec![first];
                while asked.len() < max {
                    match rx.try_recv() {
                        Ok(more) => asked.push(more),
                        Err(_) => break,
                    }
                }
                let (items, answers): (Vec<T>, Vec<_>) = asked.into_iter().unzip();
                let write = write.clone();
                let written = tokio::task::spawn_blocking(move || write(items))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                match written {
                    Ok(results) => {
                        for (answer, result) in answers.into_iter().zip(results) {
                            let _ = answer.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        for answer in answers {
                            let _ = answer.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Add `item` to the next batch and wait until it is written.
    pub(crate) async fn ask(&self, item: T) -> Result<R, String> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send((item, tx)).is_err() {
            return Err("the store's writer stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the store's writer stopped".into()))
    }
}
