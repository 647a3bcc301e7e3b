//! The API seen from the other side: what the CLI's `--server URL` uses
//! instead of opening the store (which the server holds; sled allows one
//! process).

use futures_util::StreamExt;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {status} {message}")]
    Api {
        url: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach the wasmflow server at {url}: {message}")]
    Unreachable { url: String, message: String },
}

impl ClientError {
    /// The caller's to fix (a 4xx, an unreachable server): exit 2; a
    /// server error is exit 1.
    pub fn is_usage(&self) -> bool {
        match self {
            ClientError::Api { status, .. } => *status < 500,
            ClientError::Unreachable { .. } => true,
        }
    }
}

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Self {
        // reqwest is built without a crypto provider of its own (see the
        // workspace Cargo.toml); a second install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or(text);
        Err(ClientError::Api {
            url: url.to_owned(),
            status,
            message,
        })
    }

    async fn json(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Value, ClientError> {
        let resp = self.send(req, url).await?;
        resp.json().await.map_err(|e| ClientError::Unreachable {
            url: url.to_owned(),
            message: format!("unreadable answer: {e}"),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = self.url(path);
        self.json(self.http.get(&url), &url).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = self.url(path);
        self.json(self.http.post(&url).json(body), &url).await
    }

    /// Queue an execution; its id.
    pub async fn create(
        &self,
        action: &str,
        input: &Value,
        params: &[String],
        grants: &Value,
    ) -> Result<String, ClientError> {
        let v = self
            .post(
                "/executions",
                &json!({"action": action, "input": input, "params": params, "grants": grants}),
            )
            .await?;
        Ok(v["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Follow an execution's events (`log`, `task`, `end`) until it ends;
    /// `on_event` gets each event's name and JSON data.
    pub async fn follow(
        &self,
        id: &str,
        mut on_event: impl FnMut(&str, &Value),
    ) -> Result<(), ClientError> {
        let url = self.url(&format!("/executions/{id}/logs"));
        let resp = self.send(self.http.get(&url), &url).await?;
        let mut stream = resp.bytes_stream();
        // Bytes, not text, until an event is whole: a chunk may end inside
        // a multi-byte character.
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buf.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let (mut event, mut data) = ("message".to_owned(), String::new());
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                on_event(&event, &value);
                if event == "end" {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
