//! The API seen from the other side: what the CLI's `--server URL` uses
//! instead of opening the store (which the server holds; sled allows one
//! process). Requests and answers are the handlers' own types (`wire`).

use crate::wire::{Accepted, CreateExecution, ExecutionPage, ListQuery, ReRun, ReplayResult};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wasmflow_store::ExecutionRecord;

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
    /// An answer of a shape this client does not know (another version).
    #[error("{url}: the server sent {what} this client cannot read: {message}")]
    Unreadable {
        url: String,
        what: &'static str,
        message: String,
    },
}

impl ClientError {
    /// The caller's to fix (a 4xx, an unreachable server): exit 2; a
    /// server error is exit 1.
    pub fn is_usage(&self) -> bool {
        match self {
            ClientError::Api { status, .. } => *status < 500,
            ClientError::Unreachable { .. } | ClientError::Unreadable { .. } => true,
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

    /// `GET path`, the answer as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        decode(&url, what, self.json(self.http.get(&url), &url).await?)
    }

    /// `POST path` with `body`, the answer as `T`.
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        decode(
            &url,
            what,
            self.json(self.http.post(&url).json(body), &url).await?,
        )
    }

    /// The server's catalog: every action and workflow it runs.
    pub async fn actions(&self) -> Result<Vec<crate::wire::ActionSummary>, ClientError> {
        self.get("/actions", "the actions").await
    }

    /// One action or workflow of the server's catalog, described.
    pub async fn action(&self, name: &str) -> Result<Value, ClientError> {
        self.get(&format!("/actions/{name}"), "an action").await
    }

    /// The server's rules.
    pub async fn rules(&self) -> Result<Value, ClientError> {
        self.get("/rules", "the rules").await
    }

    /// One rule; with `act` (`enable`, `disable`), after doing that.
    pub async fn rule(&self, name: &str, act: Option<&str>) -> Result<Value, ClientError> {
        match act {
            None => self.get(&format!("/rules/{name}"), "a rule").await,
            Some(act) => {
                self.post(&format!("/rules/{name}/{act}"), &Value::Null, "a rule")
                    .await
            }
        }
    }

    /// Emit an event of a pack's trigger type; the trigger instance's id.
    pub async fn emit(&self, kind: &str, payload: &Value) -> Result<String, ClientError> {
        let answer: Value = self
            .post(&format!("/triggers/{kind}"), payload, "a trigger instance")
            .await?;
        Ok(answer["trigger_instance"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Queue an execution.
    pub async fn create(&self, req: &CreateExecution) -> Result<Accepted, ClientError> {
        self.post("/executions", req, "an acceptance").await
    }

    /// One execution's record.
    pub async fn execution(&self, id: &str) -> Result<ExecutionRecord, ClientError> {
        self.get(&format!("/executions/{id}"), "a record").await
    }

    /// One execution with its task executions under it, as `children`.
    pub async fn tree(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/executions/{id}?tree=true"), "a tree")
            .await
    }

    /// A page of executions, newest first, and the `before` of the next.
    pub async fn list(
        &self,
        query: &ListQuery,
    ) -> Result<(Vec<ExecutionRecord>, Option<String>), ClientError> {
        let url = self.url("/executions");
        let page: ExecutionPage = decode(
            &url,
            "a page of executions",
            self.json(self.http.get(&url).query(query), &url).await?,
        )?;
        let records = page
            .executions
            .into_iter()
            .map(|v| decode(&url, "a record", v))
            .collect::<Result<_, _>>()?;
        Ok((records, page.next_before))
    }

    /// Queue a re-run of an execution.
    pub async fn rerun(&self, id: &str, req: &ReRun) -> Result<Accepted, ClientError> {
        self.post(&format!("/executions/{id}/re-run"), req, "an acceptance")
            .await
    }

    /// Replay an execution; the result and the replay's own record.
    pub async fn replay(&self, id: &str) -> Result<(ReplayResult, ExecutionRecord), ClientError> {
        let path = format!("/executions/{id}/replay");
        let result: ReplayResult = self
            .post(&path, &serde_json::json!({}), "a replay result")
            .await?;
        let record = decode(&self.url(&path), "a record", result.record.clone())?;
        Ok((result, record))
    }

    /// Ask for an execution to stop.
    pub async fn cancel(&self, id: &str) -> Result<Accepted, ClientError> {
        self.act(id, "cancel").await
    }

    pub async fn pause(&self, id: &str) -> Result<Accepted, ClientError> {
        self.act(id, "pause").await
    }

    pub async fn resume(&self, id: &str) -> Result<Accepted, ClientError> {
        self.act(id, "resume").await
    }

    /// `POST /executions/{id}/{verb}` with no body: cancel, pause, resume.
    async fn act(&self, id: &str, verb: &str) -> Result<Accepted, ClientError> {
        let path = format!("/executions/{id}/{verb}");
        self.post(&path, &serde_json::json!({}), "an acceptance")
            .await
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

/// `value` as the `T` it should be.
fn decode<T: DeserializeOwned>(
    url: &str,
    what: &'static str,
    value: Value,
) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Unreadable {
        url: url.to_owned(),
        what,
        message: e.to_string(),
    })
}
