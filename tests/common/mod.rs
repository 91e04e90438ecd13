//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod node;
pub mod operator;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_panthera"))
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.yaml"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("panthera runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tool a test needs: from `var`, else `fallback` when it exists. Missing in CI is a failure;
/// elsewhere the test is skipped with a notice.
pub fn tool(var: &str, fallback: &Path) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| fallback.exists().then(|| fallback.to_path_buf()));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{var} is not set and {} does not exist: run scripts/install-test-deps.sh",
            fallback.display()
        );
        eprintln!("skipping: {var} not set (run scripts/install-test-deps.sh)");
    }
    found
}

/// The address of a test service (`scripts/test-services.sh` writes it to env.sh). Missing in
/// CI is a failure; elsewhere the test is skipped with a notice.
pub fn service(var: &str) -> Option<String> {
    let found = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{var} is not set but CI is: start the test services (scripts/test-services.sh start)"
        );
        eprintln!("skipping: {var} not set (run scripts/test-services.sh start)");
    }
    found
}

/// Run the Argo CD health check `gitops/argocd/health.lua` on `object` with a Lua 5.4
/// interpreter, as Argo CD does: `obj` is the resource, the script returns `hs`.
/// Returns (status, message); None where Lua is missing outside CI.
pub fn argocd_health(object: &serde_json::Value) -> Option<(String, String)> {
    let lua = tool("PANTHERA_LUA", Path::new("/usr/bin/lua5.4"))?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("gitops/argocd/health.lua");
    let program = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua_literal(object),
        lua_literal(&serde_json::Value::String(script.display().to_string()))
    );
    let output = Command::new(lua)
        .arg("-e")
        .arg(&program)
        .output()
        .expect("lua runs");
    assert!(
        output.status.success(),
        "lua failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    Some((status.to_string(), message.to_string()))
}

/// JSON as a Lua table constructor (null fields vanish, as in Argo CD's conversion).
fn lua_literal(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                if c.is_ascii_alphanumeric() || c == ' ' {
                    out.push(c);
                } else {
                    out.push_str(&format!("\\u{{{:x}}}", c as u32));
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "[{}] = {}",
                    lua_literal(&Value::String(k.clone())),
                    lua_literal(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What a user does before `apply`, as the README's quick start says: the platform's namespace
/// and every Secret it reads but never writes (HS256 key, TLS certificate, first administrator),
/// with placeholder values. The list comes from the engine's own pre-flight check. Returns
/// whether anything was created (what exists already is left alone).
pub async fn provide_secrets(
    client: &kube::Client,
    platform: &panthera::api::PantheraPlatform,
) -> bool {
    let mut created = false;
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, PostParams};

    let namespace = platform.metadata.namespace.as_deref().unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(namespace).await.unwrap().is_none() {
        created = true;
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}}))
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for required in panthera::engine::preflight::required(platform) {
        if secrets.get_opt(&required.name).await.unwrap().is_some() {
            continue;
        }
        created = true;
        let data: serde_json::Map<String, serde_json::Value> = required
            .keys
            .iter()
            .map(|key| (key.clone(), serde_json::json!(format!("placeholder-{key}"))))
            .collect();
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({
                    "metadata": {"name": required.name},
                    "stringData": data,
                }))
                .unwrap(),
            )
            .await
            .unwrap();
    }
    created
}
