//! Webhooks: `POST /api/v1/webhooks/{name}` starts an action or workflow
//! with an input made from the request body.
//!
//! Configured in a YAML file (`serve --webhooks FILE`):
//!
//! ```yaml
//! deploy:
//!   action: vm-provision            # a name from the actions directory
//!   input:                          # Jinja over `body` (the JSON request)
//!     name: "{{ body.repository.name }}"
//!     disks: "{{ body.disks | length }}"
//!   secret_env: DEPLOY_HOOK_SECRET  # where the shared secret is
//!   grants: { read: [/srv/images] } # within what the server allows
//! ```
//!
//! A webhook has its own secret, not an API token: the caller signs the
//! body with HMAC-SHA256 and sends `X-Hub-Signature-256: sha256=HEX` (the
//! header GitHub, Gitea and others send), or sends the secret itself in
//! `X-Wasmflow-Webhook-Secret` for callers that cannot sign.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;
use wasmflow_workflow::expr::Expressions;
use wasmflow_workflow::model::GrantSpec;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSpec {
    /// Without one, a call only emits the `wasmflow.webhook` trigger for
    /// the rules.
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    grants: Option<GrantSpec>,
}

pub struct Webhook {
    pub action: Option<String>,
    input: Value,
    secret: Vec<u8>,
    /// The environment variable the secret was read from.
    pub secret_env: String,
    pub grants: Option<GrantSpec>,
}

#[derive(Default)]
pub struct Webhooks {
    /// The file they came from (for messages).
    path: String,
    hooks: BTreeMap<String, Webhook>,
    exprs: Expressions,
}

/// Names only: never the secrets.
impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("path", &self.path)
            .field("hooks", &self.hooks.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WebhookConfigError {
    pub path: String,
    pub message: String,
}

/// Why a webhook call was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook is named `{0}`")]
    Unknown(String),
    #[error("missing or wrong webhook signature (X-Hub-Signature-256) or secret")]
    Unauthorized,
    #[error("the request body is not JSON: {0}")]
    Body(String),
    #[error("mapping the body to the input: {0}")]
    Mapping(String),
}

impl Webhooks {
    /// Read and check the webhook file: every target must be in the
    /// catalog (`known`), every template must parse, every secret be set.
    pub fn load(path: &Path, known: &dyn Fn(&str) -> bool) -> Result<Self, WebhookConfigError> {
        let hooks = Self::read(path)?;
        hooks.check_targets(known)?;
        Ok(hooks)
    }

    /// Read the webhook file and the secrets it names from the
    /// environment; templates are checked, targets are not yet (see
    /// [`Webhooks::check_targets`]). `serve` reads it first, before
    /// anything else, so that it can then remove the secrets from its
    /// environment.
    pub fn read(path: &Path) -> Result<Self, WebhookConfigError> {
        let err = |message: String| WebhookConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let specs: BTreeMap<String, WebhookSpec> = serde_yaml::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{}:{}: ", l.line(), l.column()))
                .unwrap_or_default();
            err(format!("{at}{e}"))
        })?;
        let exprs = Expressions::new();
        let mut hooks = BTreeMap::new();
        for (name, spec) in specs {
            exprs
                .check(&spec.input)
                .map_err(|(at, e)| err(format!("webhook `{name}`: input{at}: {e}")))?;
            let Some(var) = spec.secret_env else {
                return Err(err(format!(
                    "webhook `{name}` has no secret_env; every webhook needs a secret"
                )));
            };
            let secret = std::env::var(&var).map_err(|_| {
                err(format!(
                    "webhook `{name}`: its secret variable {var} is not set"
                ))
            })?;
            if secret.len() < 16 {
                return Err(err(format!(
                    "webhook `{name}`: its secret is shorter than 16 bytes"
                )));
            }
            hooks.insert(
                name,
                Webhook {
                    action: spec.action,
                    input: spec.input,
                    secret: secret.into_bytes(),
                    secret_env: var,
                    grants: spec.grants,
                },
            );
        }
        Ok(Self {
            path: path.display().to_string(),
            hooks,
            exprs,
        })
    }

    /// Every target must be in the catalog (`known`).
    pub fn check_targets(&self, known: &dyn Fn(&str) -> bool) -> Result<(), WebhookConfigError> {
        for (name, hook) in &self.hooks {
            let Some(action) = &hook.action else { continue };
            if !known(action) {
                return Err(WebhookConfigError {
                    path: self.path.clone(),
                    message: format!(
                        "webhook `{name}`: no action or workflow `{action}` in the actions directory"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The environment variables the secrets came from.
    pub fn secret_vars(&self) -> impl Iterator<Item = &str> {
        self.hooks.values().map(|h| h.secret_env.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.hooks.keys().map(String::as_str)
    }

    /// Check the caller's signature; the webhook and the body (JSON).
    pub fn call(
        &self,
        name: &str,
        body: &[u8],
        signature: Option<&str>,
        plain_secret: Option<&str>,
    ) -> Result<(&Webhook, Value), WebhookError> {
        let hook = self
            .hooks
            .get(name)
            .ok_or_else(|| WebhookError::Unknown(name.to_owned()))?;
        if !hook.authentic(body, signature, plain_secret) {
            return Err(WebhookError::Unauthorized);
        }
        let body: Value = if body.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(body).map_err(|e| WebhookError::Body(e.to_string()))?
        };
        Ok((hook, body))
    }

    /// The input a webhook's action gets from a call's `body`.
    pub fn input(&self, hook: &Webhook, body: &Value) -> Result<Value, WebhookError> {
        let mut names = Map::new();
        names.insert("body".into(), body.clone());
        self.exprs
            .render_names(&hook.input, &names)
            .map_err(WebhookError::Mapping)
    }
}

impl Webhook {
    fn authentic(&self, body: &[u8], signature: Option<&str>, plain: Option<&str>) -> bool {
        if let Some(sig) = signature {
            let Some(hex_sig) = sig.trim().strip_prefix("sha256=") else {
                return false;
            };
            let Ok(expected) = hex::decode(hex_sig) else {
                return false;
            };
            let mut mac =
                Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
            mac.update(body);
            // Constant-time comparison.
            return mac.verify_slice(&expected).is_ok();
        }
        if let Some(p) = plain {
            let mut a = Hmac::<Sha256>::new_from_slice(b"compare").expect("any key");
            a.update(p.as_bytes());
            let mut b = Hmac::<Sha256>::new_from_slice(b"compare").expect("any key");
            b.update(&self.secret);
            // Compared as MACs of both, so the time taken says nothing.
            return a.verify_slice(&b.finalize().into_bytes()).is_ok();
        }
        false
    }
}

/// `sha256=HEX` of `body` under `secret`: what a caller sends.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(secret_var: &str) -> Webhooks {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hooks.yaml");
        std::fs::write(
            &path,
            format!(
                "deploy:\n  action: add\n  input:\n    a: \"{{{{ body.n }}}}\"\n    b: 1\n  secret_env: {secret_var}\n"
            ),
        )
        .unwrap();
        Webhooks::load(&path, &|a| a == "add").unwrap()
    }

    #[test]
    fn signed_bodies_map_to_typed_input_and_forged_ones_are_refused() {
        // SAFETY: the only test that sets this variable.
        unsafe { std::env::set_var("WF_TEST_HOOK_SECRET", "0123456789abcdef0123") };
        let h = hooks("WF_TEST_HOOK_SECRET");
        let body = br#"{"n": 41}"#;
        let sig = sign(b"0123456789abcdef0123", body);
        let (hook, body_json) = h.call("deploy", body, Some(&sig), None).unwrap();
        assert_eq!(hook.action.as_deref(), Some("add"));
        let input = h.input(hook, &body_json).unwrap();
        assert_eq!(input, serde_json::json!({"a": 41, "b": 1}));
        let forged = sign(b"another secret of 20b", body);
        assert!(matches!(
            h.call("deploy", body, Some(&forged), None),
            Err(WebhookError::Unauthorized)
        ));
        assert!(matches!(
            h.call("deploy", body, None, None),
            Err(WebhookError::Unauthorized)
        ));
        assert!(h
            .call("deploy", body, None, Some("0123456789abcdef0123"))
            .is_ok());
        assert!(matches!(
            h.call("nope", body, Some(&sig), None),
            Err(WebhookError::Unknown(_))
        ));
    }
}
