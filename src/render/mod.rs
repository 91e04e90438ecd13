//! spec -> Plan: tera templates (embedded, overridable with `--templates DIR`) rendered per
//! component, every object checked against its Kubernetes type, overrides applied, output
//! ordered for apply. Pure and deterministic: no client, same input and secrets -> same bytes.

mod context;
mod dashboards;
mod endpoints;
mod gateway_config;
mod secrets;
mod typed;
mod yaml_safe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use serde::Serialize;
use serde_json::Value;

pub use context::{GRAFANA_DASHBOARD_LABEL, Names, OBJECTS_IMAGE, POD_TARGET_LABELS, short_hash};
pub use endpoints::{ENDPOINTS_ANNOTATION, annotate_store_endpoints};
pub use secrets::{Generated, REDACTED, Redacted, SecretValues};

use crate::api::{
    Backend, CA_BUNDLE_DIR, CA_BUNDLE_KEY, ComponentKind, KafkaClientAuthentication,
    MSK_SCRAM_USERNAME, OPENSEARCH_MASTER_USERNAME, PantheraPlatform,
};

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Folders rendered once per component of their kind, plus `platform/` once per platform.
const COMPONENT_FOLDERS: &[&str] = &[
    "platform", "postgres", "redis", "kafka", "search", "objects", "bucket", "service", "gateway",
];

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read template directory {dir}: {source}")]
    ReadTemplates {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("template {template} does not parse: {message}")]
    ParseTemplate { template: String, message: String },
    #[error("template {template} failed to render for {component}: {message}")]
    RenderTemplate {
        template: String,
        component: String,
        message: String,
    },
    #[error(
        "template {template} produced invalid YAML for {component} (document {document}): {message}"
    )]
    InvalidYaml {
        template: String,
        component: String,
        document: usize,
        message: String,
    },
    #[error("template {template} produced an invalid object {object}: {message}")]
    InvalidObject {
        template: String,
        object: String,
        message: String,
    },
    #[error("spec.overrides[{index}]: {message}")]
    Override { index: usize, message: String },
    #[error("{0}")]
    Spec(String),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// One rendered Kubernetes object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Object {
    /// Template that produced it (`service/deployment.yaml`).
    pub template: String,
    /// The object as it will be applied.
    pub value: Value,
}

impl Object {
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
    /// `Kind/name`, how kubectl names objects.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

/// The objects of one component.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentPlan {
    /// Component name: a service or database name, `gateway`, `redis`, `kafka`, or `platform`.
    pub name: String,
    /// `None` for the platform-wide objects.
    pub kind: Option<ComponentKind>,
    pub backend: Backend,
    pub objects: Vec<Object>,
    /// For AWS-backed data stores: what is provisioned outside the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

/// Everything apply would create, in apply order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub platform: String,
    pub namespace: String,
    pub components: Vec<ComponentPlan>,
}

impl Plan {
    /// All objects in apply order.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.components.iter().flat_map(|c| c.objects.iter())
    }

    /// The object named `Kind/name`.
    pub fn get(&self, id: &str) -> Option<&Object> {
        self.objects().find(|o| o.id() == id)
    }
}

/// Renders platforms with a set of templates.
pub struct Renderer {
    tera: tera::Tera,
    /// Template names per folder, sorted, partials (`_*`) excluded.
    folders: BTreeMap<String, Vec<String>>,
}

impl Renderer {
    /// The templates built into the binary.
    pub fn embedded() -> Result<Self> {
        Self::build(embedded_templates())
    }

    /// The built-in templates, with every file of `dir` (same layout: `service/deployment.yaml`)
    /// replacing or adding to them.
    pub fn with_overrides(dir: &Path) -> Result<Self> {
        let mut templates = embedded_templates();
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        for (name, text) in files {
            templates.insert(name, text);
        }
        Self::build(templates)
    }

    fn build(templates: BTreeMap<String, String>) -> Result<Self> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        tera.register_filter("json_encode", yaml_safe::json_encode);
        let mut folders: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for name in templates.keys() {
            if let Some((folder, file)) = name.split_once('/')
                && !file.starts_with('_')
                && (file.ends_with(".yaml") || file.ends_with(".yml"))
            {
                folders
                    .entry(folder.to_string())
                    .or_default()
                    .push(name.clone());
            }
        }
        tera.add_raw_templates(templates.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .map_err(|e| Error::ParseTemplate {
                template: template_of(&e),
                message: crate::errors::chain(&e),
            })?;
        Ok(Self { tera, folders })
    }

    /// Render `platform`; generated secret values come from `secrets`.
    pub fn render(&self, platform: &PantheraPlatform, secrets: &dyn SecretValues) -> Result<Plan> {
        let names = Names {
            platform: platform.metadata.name.clone().unwrap_or_default(),
            namespace: platform
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        };
        let builder = context::ContextBuilder::new(platform, names.clone(), secrets);
        let platform_values = builder.platform_values();
        let mut components = Vec::new();

        let shared = self.render_folder("platform", "platform", &platform_values, &Value::Null)?;
        components.push(ComponentPlan {
            name: "platform".into(),
            kind: None,
            backend: Backend::Cluster,
            objects: shared,
            external: None,
        });
        for component in builder.components().map_err(Error::Spec)? {
            let (objects, external) = match component.backend {
                Backend::Cluster => (
                    self.render_folder(
                        component.folder(),
                        &component.name,
                        &platform_values,
                        &component.values,
                    )?,
                    None,
                ),
                Backend::Aws => (Vec::new(), Some(aws_note(component.kind))),
            };
            components.push(ComponentPlan {
                name: component.name,
                kind: Some(component.kind),
                backend: component.backend,
                objects,
                external,
            });
        }
        let mut plan = Plan {
            platform: names.platform,
            namespace: names.namespace,
            components,
        };
        apply_overrides(&mut plan, platform)?;
        for component in &mut plan.components {
            component
                .objects
                .sort_by_key(|o| crate::api::Kind::rank(o.kind()));
        }
        Ok(plan)
    }

    /// Render every template of `folder` with `values` as `c`: the operator's own manifests.
    pub fn render_manifests(&self, folder: &str, values: &Value) -> Result<Vec<Object>> {
        self.render_folder(folder, folder, &Value::Null, values)
    }

    /// The connection Secret of a data store with `backend: aws`, once AWS has published its
    /// endpoint: the same template, name and keys as the cluster backend, with `host`, `port` and
    /// `url` (or `bootstrapServers`) pointing at the managed service. `endpoint` is `host:port`
    /// (RDS, ElastiCache) or the broker list (MSK); `tls` makes a Redis URL `rediss://`.
    pub fn aws_secret(
        &self,
        platform: &PantheraPlatform,
        secrets: &dyn SecretValues,
        kind: ComponentKind,
        name: &str,
        endpoint: &str,
        tls: bool,
    ) -> Result<Object> {
        let (name_, namespace) = platform.ids();
        let names = Names {
            platform: name_,
            namespace,
        };
        let builder = context::ContextBuilder::new(platform, names, secrets);
        let platform_values = builder.platform_values();
        let component = builder
            .components()
            .map_err(Error::Spec)?
            .into_iter()
            .find(|c| c.kind == kind && c.name == name)
            .ok_or_else(|| Error::Spec(format!("no {} component {name}", kind.as_str())))?;
        let folder = component.folder();
        let mut values = component.values;
        let secret_name = values["secret"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let data = &mut values["secret"]["data"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, ""));
        match kind {
            ComponentKind::Postgres => {
                let (user, password, database) = (
                    text(&data["username"]),
                    text(&data["password"]),
                    text(&data["database"]),
                );
                data["host"] = Value::from(host);
                data["port"] = Value::from(port);
                // RDS for PostgreSQL 15+ refuses connections without TLS (rds.force_ssl), and
                // only a verified certificate (chained to the RDS bundle the platform mounts,
                // naming this host) keeps a man in the middle out.
                data["url"] = Value::from(format!(
                    "postgres://{user}:{password}@{host}:{port}/{database}?sslmode=verify-full&sslrootcert={CA_BUNDLE_DIR}/{CA_BUNDLE_KEY}"
                ));
            }
            ComponentKind::Redis => {
                let password = text(&data["password"]);
                let scheme = if tls { "rediss" } else { "redis" };
                let auth = if password.is_empty() {
                    String::new()
                } else {
                    format!(":{password}@")
                };
                data["host"] = Value::from(host);
                data["port"] = Value::from(port);
                data["url"] = Value::from(format!("{scheme}://{auth}{host}:{port}/0"));
            }
            ComponentKind::Kafka => {
                data["bootstrapServers"] = Value::from(endpoint);
                data["url"] = Value::from(endpoint);
                // Every key is written (empty when it does not apply) so the services' env
                // references always resolve; the services treat an empty value as unset.
                let scram = tls
                    && platform.spec.kafka.as_ref().is_some_and(|k| {
                        k.client_authentication() == KafkaClientAuthentication::Scram
                    });
                let (protocol, mechanism, user, password) = match (tls, scram) {
                    (true, true) => (
                        "SASL_SSL",
                        "SCRAM-SHA-512",
                        MSK_SCRAM_USERNAME.to_string(),
                        secrets.value(&secret_name, "password"),
                    ),
                    (true, false) => ("SSL", "", String::new(), String::new()),
                    (false, _) => ("PLAINTEXT", "", String::new(), String::new()),
                };
                data["securityProtocol"] = Value::from(protocol);
                data["saslMechanism"] = Value::from(mechanism);
                data["username"] = Value::from(user);
                data["password"] = Value::from(password);
            }
            ComponentKind::Search => {
                // HTTPS only (the domain enforces it), with the master user's login.
                data["endpoint"] = Value::from(format!("https://{endpoint}"));
                data["username"] = Value::from(OPENSEARCH_MASTER_USERNAME);
                data["password"] = Value::from(secrets.value(&secret_name, "password"));
            }
            ComponentKind::Bucket => {
                // `s3.{region}.amazonaws.com:443`: the regional endpoint and its region.
                let region = host
                    .strip_prefix("s3.")
                    .and_then(|h| h.strip_suffix(".amazonaws.com"))
                    .unwrap_or_default();
                data["endpoint"] = Value::from(format!("https://{host}"));
                data["region"] = Value::from(region);
            }
            ComponentKind::Gateway
            | ComponentKind::Service
            | ComponentKind::Edge
            | ComponentKind::Objects => {
                return Err(Error::Spec(format!(
                    "{} is not a data store on AWS",
                    kind.as_str()
                )));
            }
        }
        let template = format!("{folder}/secret.yaml");
        let objects = self.render_template(&template, name, &platform_values, &values)?;
        objects
            .into_iter()
            .find(|o| o.kind() == "Secret")
            .ok_or_else(|| Error::Spec(format!("template {template} rendered no Secret")))
    }

    fn render_folder(
        &self,
        folder: &str,
        component: &str,
        platform: &Value,
        values: &Value,
    ) -> Result<Vec<Object>> {
        debug_assert!(COMPONENT_FOLDERS.contains(&folder) || folder == "operator");
        let mut objects = Vec::new();
        for template in self
            .folders
            .get(folder)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            objects.extend(self.render_template(template, component, platform, values)?);
        }
        Ok(objects)
    }

    fn render_template(
        &self,
        template: &str,
        component: &str,
        platform: &Value,
        values: &Value,
    ) -> Result<Vec<Object>> {
        let mut context = tera::Context::new();
        context.insert("platform", platform);
        context.insert("c", values);
        let mut objects = Vec::new();
        let text = self
            .tera
            .render(template, &context)
            .map_err(|e| Error::RenderTemplate {
                template: template.to_string(),
                component: component.to_string(),
                message: crate::errors::chain(&e),
            })?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value: Value =
                serde::Deserialize::deserialize(document).map_err(|e| Error::InvalidYaml {
                    template: template.to_string(),
                    component: component.to_string(),
                    document: index + 1,
                    message: e.to_string(),
                })?;
            if value.is_null() {
                continue;
            }
            let mut object = Object {
                template: template.to_string(),
                value,
            };
            typed::check(&object.value).map_err(|message| Error::InvalidObject {
                template: template.to_string(),
                object: object.id(),
                message,
            })?;
            panthera_quantity::canonicalize_object(&mut object.value);
            objects.push(object);
        }
        Ok(objects)
    }
}

fn aws_note(kind: ComponentKind) -> String {
    match kind {
        ComponentKind::Postgres => {
            "Amazon RDS for PostgreSQL instance, provisioned by the AWS reconciler".into()
        }
        ComponentKind::Redis => {
            "Amazon ElastiCache replication group, provisioned by the AWS reconciler".into()
        }
        ComponentKind::Kafka => "Amazon MSK cluster, provisioned by the AWS reconciler".into(),
        ComponentKind::Search => {
            "Amazon OpenSearch Service domain, provisioned by the AWS reconciler".into()
        }
        ComponentKind::Bucket => "Amazon S3 bucket, provisioned by the AWS reconciler".into(),
        ComponentKind::Edge => {
            "Amazon CloudFront distribution with an AWS WAF web ACL, provisioned by the AWS reconciler"
                .into()
        }
        ComponentKind::Objects | ComponentKind::Gateway | ComponentKind::Service => String::new(),
    }
}

fn apply_overrides(plan: &mut Plan, platform: &PantheraPlatform) -> Result<()> {
    for (index, o) in platform.spec.overrides.iter().enumerate() {
        let target = plan
            .components
            .iter_mut()
            .flat_map(|c| c.objects.iter_mut())
            .find(|obj| obj.kind() == o.kind && obj.name() == o.name);
        let Some(object) = target else {
            let candidates: Vec<String> = plan
                .objects()
                .filter(|obj| obj.kind() == o.kind)
                .map(|obj| obj.name().to_string())
                .collect();
            return Err(Error::Override {
                index,
                message: format!(
                    "no rendered {} named {:?}; rendered {} objects: {}",
                    o.kind,
                    o.name,
                    o.kind,
                    if candidates.is_empty() {
                        "none".to_string()
                    } else {
                        candidates.join(", ")
                    }
                ),
            });
        };
        let patch = Value::Object(o.patch.clone());
        json_patch::merge(&mut object.value, &patch);
        if object.kind() != o.kind || object.name() != o.name {
            return Err(Error::Override {
                index,
                message: "a patch may not change kind or metadata.name".into(),
            });
        }
        typed::check(&object.value).map_err(|message| Error::Override {
            index,
            message: format!("the patched {} is invalid: {message}", object.id()),
        })?;
        panthera_quantity::canonicalize_object(&mut object.value);
    }
    Ok(())
}

fn embedded_templates() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for folder in EMBEDDED.dirs() {
        for file in folder.files() {
            if let (Some(name), Some(text)) = (file.path().to_str(), file.contents_utf8()) {
                out.insert(name.replace('\\', "/"), text.to_string());
            }
        }
    }
    out
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let read_err = |source| Error::ReadTemplates {
        dir: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<std::io::Result<_>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let name = rel.to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadTemplates {
                dir: path.clone(),
                source,
            })?;
            out.push((name, text));
        }
    }
    Ok(())
}

fn template_of(e: &tera::Error) -> String {
    match &e.kind {
        tera::ErrorKind::Msg(m) => m.split('\'').nth(1).unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
