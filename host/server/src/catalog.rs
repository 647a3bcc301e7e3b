//! The actions and workflows a server runs: what
//! [`wasmflow_workflow::catalog::discover`] finds in the `--actions`
//! directory (components and workflows by file stem, built action
//! directories by name) and the installed packs' items (`pack.item`),
//! loaded and checked once at start.

use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use utoipa::ToSchema;
use wasmflow_runtime::{Action, Runtime};
use wasmflow_workflow::types::InputType;
use wasmflow_workflow::{Components, Definition, Runnable};

/// One action or workflow of the catalog.
#[derive(Clone)]
pub struct Entry {
    pub name: String,
    /// How its records name it: `name`, or a pack's `pack.item@version`.
    pub recorded_as: String,
    pub path: PathBuf,
    pub target: Runnable,
    pub description: ActionDescription,
}

/// What `GET /api/v1/actions/{name}` says of an action or workflow.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActionDescription {
    pub name: String,
    /// `action` or `workflow`.
    pub kind: String,
    /// The doc comment of the action's world, or the workflow's description.
    pub docs: Option<String>,
    /// `run` and the types it uses, in WIT; a workflow's typed input.
    pub signature: String,
    /// JSON Schema of the input object.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON Schema of the result (actions only).
    #[schema(value_type = Object)]
    pub output_schema: Value,
    /// `sha256:…` of the component or the workflow's text.
    pub digest: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CatalogError {
    pub path: PathBuf,
    pub message: String,
}

#[derive(Default)]
pub struct Catalog {
    by_name: BTreeMap<String, Entry>,
    by_digest: BTreeMap<String, String>,
}

impl Catalog {
    /// Load every action and workflow in `dir` and the packs installed in
    /// `packs` (a directory's `vm.clone` hides a pack's, as `run` prefers
    /// a file); a file that does not load or a workflow that does not
    /// validate stops the server from starting, naming the file (a
    /// half-working catalog would fail later, per request).
    pub async fn load(
        dir: Option<&Path>,
        packs: Option<&Path>,
        rt: &Runtime,
        components: &dyn Components,
    ) -> Result<Self, CatalogError> {
        let err = |path: &Path, message: String| CatalogError {
            path: path.to_owned(),
            message,
        };
        let mut found = match dir {
            Some(dir) => wasmflow_workflow::catalog::discover(dir)
                .map_err(|e| err(dir, format!("cannot read the actions directory: {e}")))?,
            None => Vec::new(),
        };
        for item in packs
            .map(wasmflow_workflow::catalog::installed)
            .unwrap_or_default()
        {
            match found.iter().find(|f| f.name == item.name) {
                Some(f) => tracing::warn!(
                    "{} is served from {}; the installed pack's {} is not",
                    item.name,
                    f.path.display(),
                    item.recorded_as
                ),
                None => found.push(item),
            }
        }
        let mut catalog = Catalog::default();
        for wasmflow_workflow::catalog::Found {
            name,
            path,
            workflow,
            recorded_as,
        } in found
        {
            let entry = match workflow {
                false => {
                    let mut action = rt.load(&path).map_err(|e| err(&path, e.to_string()))?;
                    // Records name it as clients do.
                    action.reference = recorded_as.clone();
                    // Kept in the store now, so runs never read the file.
                    rt.keep_component(&action)
                        .map_err(|e| err(&path, e.to_string()))?;
                    let bytes = action.bytes().map_err(|e| err(&path, e.to_string()))?;
                    let description = describe_action(&name, &action, &bytes)
                        .map_err(|e| err(&path, e.to_string()))?;
                    Entry {
                        name: name.clone(),
                        recorded_as,
                        path: path.clone(),
                        target: Runnable::Action(action),
                        description,
                    }
                }
                true => {
                    let path = path.canonicalize().unwrap_or(path);
                    let def = Definition::load(&path).map_err(|p| err(&path, p.to_string()))?;
                    let problems = wasmflow_workflow::check(&def, rt.loader(), components).await;
                    if !problems.is_empty() {
                        return Err(err(
                            &path,
                            wasmflow_workflow::Problems(problems).to_string(),
                        ));
                    }
                    let digest = rt
                        .store()
                        .put_blob(def.source.text.as_bytes())
                        .map_err(|e| err(&path, e.to_string()))?;
                    let description = describe_workflow(&name, &def, digest.to_string());
                    Entry {
                        name: name.clone(),
                        recorded_as,
                        path,
                        target: Runnable::Workflow(Arc::new(def)),
                        description,
                    }
                }
            };
            if catalog.by_name.contains_key(&name) {
                return Err(err(
                    &entry.path,
                    format!("a second action or workflow named `{name}`"),
                ));
            }
            catalog
                .by_digest
                .insert(entry.description.digest.clone(), name.clone());
            catalog.by_name.insert(name, entry);
        }
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_name.values()
    }

    /// The catalog name of whatever has this digest, if it is in the catalog.
    pub fn name_of_digest(&self, digest: &str) -> Option<&str> {
        self.by_digest.get(digest).map(String::as_str)
    }

    /// The loaded action with this digest, if it is in the catalog.
    pub fn action_by_digest(&self, digest: &str) -> Option<&Action> {
        match &self.get(self.name_of_digest(digest)?)?.target {
            Runnable::Action(a) => Some(a),
            Runnable::Workflow(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

fn describe_action(
    name: &str,
    action: &Action,
    bytes: &[u8],
) -> Result<ActionDescription, wasmflow_runtime::inspect::InspectError> {
    let i = wasmflow_runtime::inspect::inspect(bytes)?;
    Ok(ActionDescription {
        name: name.to_owned(),
        kind: "action".into(),
        docs: i.docs,
        signature: i.wit,
        input_schema: i.input_schema,
        output_schema: i.output_schema,
        digest: action.digest.to_string(),
    })
}

fn describe_workflow(name: &str, def: &Definition, digest: String) -> ActionDescription {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut signature = format!("workflow {name}(");
    for (i, spec) in def.workflow.input.iter().enumerate() {
        let ty = spec
            .ty
            .as_deref()
            .map(InputType::parse)
            .and_then(Result::ok)
            .unwrap_or(InputType::Any);
        let mut schema = input_type_schema(&ty);
        if let (Value::Object(m), Some(d)) = (&mut schema, &spec.description) {
            m.insert("description".into(), Value::String(d.clone()));
        }
        if let (Value::Object(m), Some(d)) = (&mut schema, &spec.default) {
            m.insert("default".into(), d.clone());
        }
        let optional = spec.required == Some(false)
            || spec.default.is_some()
            || matches!(ty, InputType::Option(_));
        if !optional {
            required.push(Value::String(spec.name.clone()));
        }
        if i > 0 {
            signature.push_str(", ");
        }
        signature.push_str(&format!("{}: {}", spec.name, ty.name()));
        properties.insert(spec.name.clone(), schema);
    }
    signature.push(')');
    ActionDescription {
        name: name.to_owned(),
        kind: "workflow".into(),
        docs: def.workflow.description.clone(),
        signature,
        input_schema: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }),
        output_schema: json!({}),
        digest,
    }
}

fn input_type_schema(ty: &InputType) -> Value {
    match ty {
        InputType::Any => json!({}),
        InputType::String => json!({"type": "string"}),
        InputType::Bool => json!({"type": "boolean"}),
        InputType::Int { min, max, .. } => {
            let mut m = Map::new();
            m.insert("type".into(), json!("integer"));
            // Bounds beyond what JSON numbers carry exactly are left out.
            if let Ok(min) = i64::try_from(*min) {
                m.insert("minimum".into(), json!(min));
            }
            if let Ok(max) = i64::try_from(*max) {
                m.insert("maximum".into(), json!(max));
            }
            Value::Object(m)
        }
        InputType::Number => json!({"type": "number"}),
        InputType::List(inner) => json!({"type": "array", "items": input_type_schema(inner)}),
        InputType::Option(inner) => json!({"anyOf": [input_type_schema(inner), {"type": "null"}]}),
        InputType::Object => json!({"type": "object"}),
    }
}
