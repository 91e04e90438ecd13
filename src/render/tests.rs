use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::api::{
    LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, LABEL_PLATFORM,
    LABEL_PLATFORM_COMPONENT,
};
use crate::load::load_str;

fn example(name: &str) -> PantheraPlatform {
    let text = std::fs::read_to_string(format!(
        "{}/examples/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    load_str(name, &text).unwrap()
}

mod buckets;
mod edge;
mod search;

/// The shop with a search engine, and the catalog searching through it.
fn shop_with_search() -> PantheraPlatform {
    let mut shop = example("shop");
    shop.spec.search = Some(serde_json::from_value(serde_json::json!({})).unwrap());
    for service in &mut shop.spec.services {
        service.search = service.name == "catalog";
    }
    shop
}

fn render(platform: &PantheraPlatform) -> Plan {
    Renderer::embedded()
        .unwrap()
        .render(platform, &Redacted)
        .unwrap()
}

fn to_yaml(plan: &Plan) -> String {
    plan.objects()
        .map(|o| serde_yaml::to_string(&o.value).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

fn pod_specs(plan: &Plan) -> Vec<(String, &Value)> {
    plan.objects()
        .filter_map(|o| o.value.pointer("/spec/template/spec").map(|p| (o.id(), p)))
        .collect()
}

#[test]
fn output_is_deterministic() {
    let shop = example("shop");
    assert_eq!(to_yaml(&render(&shop)), to_yaml(&render(&shop)));
}

#[test]
fn generated_secrets_are_redacted_by_default() {
    let plan = render(&example("shop"));
    let secret = plan.get("Secret/shop-db-users").unwrap();
    assert_eq!(secret.value["stringData"]["password"], REDACTED);
    assert!(
        secret.value["stringData"]["url"]
            .as_str()
            .unwrap()
            .contains(":REDACTED@")
    );
}

#[test]
fn known_secret_values_are_reused_and_new_ones_are_random() {
    let shop = example("shop");
    let mut known = BTreeMap::new();
    known.insert(
        ("shop-db-users".to_string(), "password".to_string()),
        "keep-me".to_string(),
    );
    let secrets = Generated::with_known(known);
    let plan = Renderer::embedded()
        .unwrap()
        .render(&shop, &secrets)
        .unwrap();
    let get = |id: &str| plan.get(id).unwrap().value["stringData"].clone();
    assert_eq!(get("Secret/shop-db-users")["password"], "keep-me");
    assert_eq!(
        get("Secret/shop-db-users")["url"],
        "postgres://users:keep-me@shop-db-users.shop.svc:5432/users"
    );
    let orders = get("Secret/shop-db-orders");
    let password = orders["password"].as_str().unwrap();
    assert_eq!(password.len(), 32);
    assert_ne!(password, REDACTED);
    assert!(
        orders["url"].as_str().unwrap().contains(password),
        "url and password agree"
    );
}

#[test]
fn every_pod_is_restricted_pod_security_compliant() {
    let platforms = ["minimal", "shop", "aws"].map(example);
    for platform in platforms.iter().chain([&shop_with_search()]) {
        let plan = render(platform);
        let pods = pod_specs(&plan);
        assert!(!pods.is_empty());
        for (id, pod) in pods {
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{id}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{id}"
            );
            assert_eq!(pod["automountServiceAccountToken"], false, "{id}");
            for key in ["hostNetwork", "hostPID", "hostIPC"] {
                assert!(pod.get(key).is_none_or(|v| v == false), "{id}: {key}");
            }
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                assert!(volume.get("hostPath").is_none(), "{id}: hostPath volume");
            }
            for c in pod["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{id}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{id}"
                );
                assert!(sc.get("privileged").is_none_or(|v| v == false), "{id}");
                for k in ["requests", "limits"] {
                    assert!(
                        c["resources"][k]["cpu"].is_string()
                            && c["resources"][k]["memory"].is_string(),
                        "{id}: {k}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_child_carries_the_platform_labels() {
    let plan = render(&example("shop"));
    for o in plan.objects() {
        let labels = &o.value["metadata"]["labels"];
        for key in [LABEL_PART_OF, LABEL_MANAGED_BY, LABEL_PLATFORM] {
            assert!(labels[key].is_string(), "{} misses {key}", o.id());
        }
        if o.kind() != "NetworkPolicy" || o.name() != "shop-default-deny" {
            for key in [
                LABEL_NAME,
                LABEL_INSTANCE,
                LABEL_COMPONENT,
                LABEL_PLATFORM_COMPONENT,
            ] {
                assert!(labels[key].is_string(), "{} misses {key}", o.id());
            }
        }
        assert_eq!(o.namespace(), Some("shop"), "{}", o.id());
    }
}

#[test]
fn apply_order_is_data_stores_then_services_then_gateway() {
    let plan = render(&example("shop"));
    let order: Vec<String> = plan.components.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        order,
        [
            "platform", "users", "orders", "redis", "kafka", "objects", "images", "users",
            "catalog", "orders", "gateway"
        ]
    );
    let kinds: Vec<Option<ComponentKind>> = plan.components.iter().map(|c| c.kind).collect();
    assert_eq!(kinds[1], Some(ComponentKind::Postgres));
    // The object server before its buckets, whose setup Jobs talk to it.
    assert_eq!(kinds[5], Some(ComponentKind::Objects));
    assert_eq!(kinds[6], Some(ComponentKind::Bucket));
    assert_eq!(kinds[7], Some(ComponentKind::Service));
    let db: Vec<&str> = plan.components[1]
        .objects
        .iter()
        .map(Object::kind)
        .collect();
    assert_eq!(
        db,
        [
            "Secret",
            "NetworkPolicy",
            "Service",
            "Service",
            "StatefulSet"
        ]
    );
}

#[test]
fn aws_data_stores_render_no_workloads() {
    let plan = render(&example("aws"));
    for c in &plan.components {
        if c.backend == Backend::Aws {
            assert!(c.objects.is_empty(), "{}", c.name);
            assert!(
                c.external.as_deref().is_some_and(|e| e.contains("AWS")),
                "{}",
                c.name
            );
        }
    }
    assert!(!plan.objects().any(|o| o.kind() == "StatefulSet"));
    // Services reach AWS endpoints through an egress rule on the store's port.
    let users = plan.get("NetworkPolicy/shop-aws-users").unwrap();
    assert!(
        users.value["spec"]["egress"]
            .to_string()
            .contains("0.0.0.0/0")
    );
}

#[test]
fn autoscaled_workloads_leave_replicas_to_the_hpa() {
    let plan = render(&example("shop"));
    let catalog = plan.get("Deployment/shop-catalog").unwrap();
    assert!(catalog.value["spec"].get("replicas").is_none());
    assert!(
        plan.objects()
            .any(|o| o.id() == "HorizontalPodAutoscaler/shop-catalog")
    );
    let users = plan.get("Deployment/shop-users").unwrap();
    assert_eq!(users.value["spec"]["replicas"], 2);
    assert!(
        !plan
            .objects()
            .any(|o| o.id() == "HorizontalPodAutoscaler/shop-users")
    );
}

#[test]
fn services_get_connection_secrets_by_reference_only() {
    let plan = render(&example("shop"));
    let orders = plan.get("Deployment/shop-orders").unwrap();
    let env = &orders.value["spec"]["template"]["spec"]["containers"][0]["env"];
    let by_name = |n: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
    };
    assert_eq!(
        by_name("DATABASE_URL").unwrap()["valueFrom"]["secretKeyRef"]["name"],
        "shop-db-orders"
    );
    assert_eq!(
        by_name("KAFKA_BROKERS").unwrap()["valueFrom"]["secretKeyRef"]["key"],
        "bootstrapServers"
    );
    assert_eq!(
        by_name("CATALOG_URL").unwrap()["value"],
        "http://shop-catalog:8080"
    );
    assert_eq!(
        by_name("RUST_LOG").unwrap()["value"],
        "info,panthera_orders=debug"
    );
    // Only the users service (the token issuer) gets the HS256 key.
    let has_key = |id: &str| {
        let d = plan.get(id).unwrap();
        d.value.to_string().contains("JWT_HS256_SECRET")
    };
    assert!(has_key("Deployment/shop-users"));
    assert!(!has_key("Deployment/shop-orders"));
}

#[test]
fn gateway_config_routes_to_services_and_names_env_not_secrets() {
    let plan = render(&example("shop"));
    let cm = plan.get("ConfigMap/shop-gateway").unwrap();
    let config: serde_yaml::Value =
        serde_yaml::from_str(cm.value["data"]["gateway.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config["routes"][1]["upstream"], "http://shop-users:8080");
    assert_eq!(config["routes"][0]["public"], true);
    assert_eq!(config["auth"]["jwt"]["hs256SecretEnv"], "JWT_HS256_SECRET");
    assert_eq!(config["rateLimit"]["redisUrlEnv"], "REDIS_URL");
    assert_eq!(config["rateLimit"]["burst"], 200);
}

#[test]
fn network_policies_follow_the_switch() {
    let mut shop = example("shop");
    assert!(render(&shop).objects().any(|o| o.kind() == "NetworkPolicy"));
    shop.spec.network_policy.enabled = false;
    assert!(!render(&shop).objects().any(|o| o.kind() == "NetworkPolicy"));
}

/// The shop example rendered with one `spec.overrides` entry.
fn render_overridden(kind: &str, name: &str, patch: &str) -> Result<Plan, String> {
    let mut shop = example("shop");
    shop.spec.overrides.push(crate::api::OverrideSpec {
        kind: kind.into(),
        name: name.into(),
        patch: serde_json::from_str(patch).unwrap(),
    });
    Renderer::embedded()
        .unwrap()
        .render(&shop, &Redacted)
        .map_err(|e| e.to_string())
}

#[test]
fn overrides_patch_the_named_object() {
    let plan = render_overridden(
        "Deployment",
        "shop-users",
        r#"{"spec": {"template": {"spec": {"priorityClassName": "critical"}}}}"#,
    )
    .unwrap();
    let users = plan.get("Deployment/shop-users").unwrap();
    assert_eq!(
        users.value["spec"]["template"]["spec"]["priorityClassName"],
        "critical"
    );
}

#[test]
fn an_override_of_a_missing_object_is_an_error() {
    let err = render_overridden("Deployment", "shop-ghost", "{}").unwrap_err();
    assert!(
        err.starts_with("spec.overrides[0]: no rendered Deployment named \"shop-ghost\""),
        "{err}"
    );
    assert!(err.contains("shop-users"), "lists the candidates: {err}");
}

#[test]
fn an_override_adding_an_unknown_field_is_an_error() {
    let err = render_overridden(
        "Service",
        "shop-users",
        r#"{"spec": {"tyype": "NodePort"}}"#,
    )
    .unwrap_err();
    assert!(
        err.contains("spec.overrides[0]") && err.contains("spec.tyype"),
        "{err}"
    );
}

#[test]
fn a_template_override_with_a_typo_names_template_object_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("service")).unwrap();
    let text = include_str!("../../templates/service/service.yaml")
        .replace("type: ClusterIP", "typ: ClusterIP");
    std::fs::write(dir.path().join("service/service.yaml"), text).unwrap();
    let renderer = Renderer::with_overrides(dir.path()).unwrap();
    let err = renderer
        .render(&example("minimal"), &Redacted)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "template service/service.yaml produced an invalid object Service/demo-users: unknown field(s) for v1 Service: spec.typ (the typed Kubernetes API would drop them)"
    );
}

#[test]
fn a_template_override_with_bad_yaml_or_syntax_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("service")).unwrap();
    std::fs::write(dir.path().join("service/extra.yaml"), "a: [\n").unwrap();
    let err = Renderer::with_overrides(dir.path())
        .unwrap()
        .render(&example("minimal"), &Redacted)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("template service/extra.yaml produced invalid YAML for users"),
        "{err}"
    );
    std::fs::write(dir.path().join("service/extra.yaml"), "{{ c.name ").unwrap();
    assert!(matches!(
        Renderer::with_overrides(dir.path()),
        Err(Error::ParseTemplate { .. })
    ));
}

#[test]
fn names_that_look_like_yaml_scalars_stay_strings() {
    let text = include_str!("../../examples/minimal.yaml")
        .replace("namespace: demo", "namespace: \"false\"")
        .replace(
            "- name: users\n      kind: users",
            "- name: \"true\"\n      kind: users",
        )
        .replace("database: users", "database: \"null\"")
        .replace(
            "- name: users\n      storage",
            "- name: \"null\"\n      storage",
        );
    let platform = load_str("scalars", &text).unwrap();
    let plan = render(&platform);
    assert!(plan.objects().all(|o| o.namespace() == Some("false")));
    let deployment = plan.get("Deployment/demo-true").unwrap();
    assert_eq!(
        deployment.value["spec"]["template"]["spec"]["containers"][0]["name"],
        "true"
    );
}

#[test]
fn control_characters_in_user_strings_render_and_survive_unchanged() {
    // JSON passes DEL and C1 controls through raw; YAML rejects them (a fuzzed shop with a JWT
    // issuer of "\x7f" once failed to render).
    let mut shop = example("shop");
    let gateway = shop.spec.gateway.as_mut().unwrap();
    let jwt = &mut gateway.auth.as_mut().unwrap().jwt;
    jwt.issuer = "iss\u{7f}\u{85}".to_string();
    shop.spec.services[2].env[0].value = "info\u{9f}".to_string();
    let plan = render(&shop);
    // The first container of `id` has `name` set to `value`.
    let assert_env = |id: &str, name: &str, value: &str| {
        let env = &plan.get(id).unwrap().value["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == name && e["value"] == value),
            "{id}: {name} is not {value:?} in {env}"
        );
    };
    assert_env("Deployment/shop-users", "JWT_ISSUER", "iss\u{7f}\u{85}");
    assert_env("Deployment/shop-orders", "RUST_LOG", "info\u{9f}");
}

#[test]
fn services_of_aws_stores_verify_rds_and_log_in_to_msk() {
    let plan = Renderer::embedded()
        .unwrap()
        .render(&example("aws"), &Redacted)
        .unwrap();
    let users = plan
        .objects()
        .find(|o| o.kind() == "Deployment" && o.name() == "shop-aws-users")
        .unwrap();
    let pod = &users.value["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][1],
        serde_json::json!({"name": "ca-bundle", "configMap": {"name": "shop-aws-ca-bundle"}})
    );
    assert_eq!(
        pod["containers"][0]["volumeMounts"][1]["mountPath"],
        "/etc/panthera/ca"
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    for (var, key) in [
        ("KAFKA_SECURITY_PROTOCOL", "securityProtocol"),
        ("KAFKA_SASL_PASSWORD", "password"),
    ] {
        assert!(
            env.iter().any(|e| e["name"] == var
                && e["valueFrom"]["secretKeyRef"]["key"] == key
                && e["valueFrom"]["secretKeyRef"]["name"] == "shop-aws-kafka"),
            "{var}: {env:?}"
        );
    }
    // The cluster backend's services mount nothing and get no login.
    let shop = Renderer::embedded()
        .unwrap()
        .render(&example("shop"), &Redacted)
        .unwrap();
    for o in shop.objects().filter(|o| o.kind() == "Deployment") {
        let text = o.value.to_string();
        assert!(
            !text.contains("ca-bundle") && !text.contains("KAFKA_SASL"),
            "{text}"
        );
    }
}

#[test]
fn aws_connection_secrets_have_the_cluster_keys_pointing_at_aws() {
    let platform = example("aws");
    let renderer = Renderer::embedded().unwrap();
    let secrets = Generated::with_known(BTreeMap::from([
        (
            ("shop-aws-db-users".to_string(), "password".to_string()),
            "pw".to_string(),
        ),
        (
            ("shop-aws-redis".to_string(), "password".to_string()),
            "tok".to_string(),
        ),
        (
            ("shop-aws-kafka".to_string(), "password".to_string()),
            "scram-pw".to_string(),
        ),
    ]));
    let data = |kind, name, endpoint, tls| {
        let o = renderer
            .aws_secret(&platform, &secrets, kind, name, endpoint, tls)
            .unwrap();
        assert_eq!(o.kind(), "Secret");
        assert_eq!(
            o.value["metadata"]["annotations"]["panthera.dev/deletion-policy"],
            "Snapshot"
        );
        assert_eq!(o.value["metadata"]["labels"][LABEL_PLATFORM], "shop-aws");
        (o.name().to_string(), o.value["stringData"].clone())
    };
    let (name, pg) = data(ComponentKind::Postgres, "users", "db.example:5432", true);
    assert_eq!(name, "shop-aws-db-users");
    assert_eq!(
        pg,
        serde_json::json!({
            "host": "db.example", "port": "5432", "username": "users", "password": "pw",
            "database": "users",
            "url": "postgres://users:pw@db.example:5432/users?sslmode=verify-full&sslrootcert=/etc/panthera/ca/ca-bundle.pem",
        })
    );
    let (_, redis) = data(ComponentKind::Redis, "redis", "cache.example:6379", true);
    assert_eq!(redis["url"], "rediss://:tok@cache.example:6379/0");
    assert_eq!(redis["host"], "cache.example");
    // A cluster created before TLS only (plaintext listener): no login.
    let (name, kafka) = data(ComponentKind::Kafka, "kafka", "b-1:9092,b-2:9092", false);
    assert_eq!(name, "shop-aws-kafka");
    assert_eq!(kafka["bootstrapServers"], "b-1:9092,b-2:9092");
    assert_eq!(kafka["url"], "b-1:9092,b-2:9092");
    assert_eq!(kafka["securityProtocol"], "PLAINTEXT");
    assert_eq!(kafka["password"], "");
    // The example asks for SCRAM: MSK's SASL_SSL listener and the login the services use.
    let (_, kafka) = data(ComponentKind::Kafka, "kafka", "b-1:9096,b-2:9096", true);
    assert_eq!(
        kafka,
        serde_json::json!({
            "bootstrapServers": "b-1:9096,b-2:9096", "url": "b-1:9096,b-2:9096",
            "securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512",
            "username": "panthera", "password": "scram-pw",
        })
    );
    assert!(
        renderer
            .aws_secret(
                &platform,
                &secrets,
                ComponentKind::Postgres,
                "nope",
                "h:1",
                true
            )
            .is_err()
    );
}

/// The probes tell the truth: every probe has a timeout longer than the check it wraps, stores
/// have startup probes (liveness never kills a slow first start), and a store is ready only when a
/// client with the platform's credentials can use it.
#[test]
fn probes_wait_for_their_checks_and_stores_are_ready_only_when_usable() {
    let plan = render(&example("shop"));
    let container =
        |id: &str| plan.get(id).unwrap().value["spec"]["template"]["spec"]["containers"][0].clone();
    let command = |c: &Value, probe: &str| {
        c[probe]["exec"]["command"][2]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for (id, _) in pod_specs(&plan) {
        let c = &plan.get(&id).unwrap().value["spec"]["template"]["spec"]["containers"][0];
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            if c[probe].is_object() {
                assert!(
                    c[probe]["timeoutSeconds"].as_i64().is_some(),
                    "{id} {probe} has the kubelet's 1 s timeout"
                );
            }
        }
        if id.starts_with("StatefulSet/") {
            assert!(c["startupProbe"].is_object(), "{id}: no startup probe");
        }
    }
    // A service's /readyz takes up to 2 s per dependency.
    let users = container("Deployment/shop-users");
    assert!(users["readinessProbe"]["timeoutSeconds"].as_i64().unwrap() > 2);

    let postgres = container("StatefulSet/shop-db-users");
    let ready = command(&postgres, "readinessProbe");
    assert!(
        ready.contains("PGPASSWORD=\"$POSTGRES_PASSWORD\"")
            && ready.contains("-d \"$POSTGRES_DB\"")
            && ready.contains("SELECT 1"),
        "{ready}"
    );
    assert!(
        !ready.contains("pg_isready"),
        "pg_isready neither logs in nor needs the database: {ready}"
    );

    let redis = container("StatefulSet/shop-redis");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let check = command(&redis, probe);
        assert!(
            check.contains("grep -qx PONG"),
            "redis-cli exits 0 on NOAUTH: {check}"
        );
    }
}

/// SIGTERM: the services wait 5 s unready, then give 20 s to in-flight requests; the kubelet
/// must not kill them before.
#[test]
fn services_get_the_time_their_drain_takes() {
    let plan = render(&example("shop"));
    for service in ["users", "catalog", "orders"] {
        let spec = &plan
            .get(&format!("Deployment/shop-{service}"))
            .unwrap()
            .value["spec"]["template"]["spec"];
        assert!(
            spec["terminationGracePeriodSeconds"].as_i64().unwrap() > 5 + 20,
            "{service}"
        );
    }
}

/// The env var `name` of the first container of `id`.
fn container_env(plan: &Plan, id: &str, name: &str) -> Option<Value> {
    plan.get(id).unwrap().value["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

/// One Secret holds the identity keys; the gateway signs with them and every service verifies
/// with them, by reference; the Secret comes with the platform-wide objects, before the
/// services that read it.
#[test]
fn the_gateway_and_every_service_share_the_identity_keys_by_reference() {
    let plan = render(&example("shop"));
    let secret = plan.get("Secret/shop-identity").unwrap();
    assert_eq!(secret.value["stringData"]["keys"], REDACTED);
    assert_eq!(
        secret.value["metadata"]["labels"][LABEL_COMPONENT],
        "platform"
    );
    assert!(
        plan.components[0]
            .objects
            .iter()
            .any(|o| o.id() == "Secret/shop-identity"),
        "the identity Secret is platform-wide"
    );
    for id in [
        "Deployment/shop-gateway",
        "Deployment/shop-users",
        "Deployment/shop-catalog",
        "Deployment/shop-orders",
    ] {
        let env = container_env(&plan, id, "IDENTITY_KEYS").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(
            env["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "shop-identity", "key": "keys"}),
            "{id}"
        );
    }
    let cm = plan.get("ConfigMap/shop-gateway").unwrap();
    let config: serde_yaml::Value =
        serde_yaml::from_str(cm.value["data"]["gateway.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(config["identity"]["signingKeysEnv"], "IDENTITY_KEYS");

    // Generated once: a re-apply renders the keys the cluster holds (rotated by hand or not).
    let known = BTreeMap::from([(
        ("shop-identity".to_string(), "keys".to_string()),
        "new-key-0123456789abcdefghijklmnop,old-key-0123456789abcdefghijklmnop".to_string(),
    )]);
    let plan = Renderer::embedded()
        .unwrap()
        .render(&example("shop"), &Generated::with_known(known))
        .unwrap();
    assert_eq!(
        plan.get("Secret/shop-identity").unwrap().value["stringData"]["keys"],
        "new-key-0123456789abcdefghijklmnop,old-key-0123456789abcdefghijklmnop"
    );
    let fresh = Renderer::embedded()
        .unwrap()
        .render(&example("shop"), &Generated::new())
        .unwrap();
    let keys = fresh.get("Secret/shop-identity").unwrap().value["stringData"]["keys"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(keys.len() >= 32 && !keys.contains(','), "one generated key");

    // Without a gateway nothing signs: no Secret, and the services get no keys.
    let minimal = render(&example("minimal"));
    assert!(minimal.get("Secret/demo-identity").is_none());
    assert!(container_env(&minimal, "Deployment/demo-users", "IDENTITY_KEYS").is_none());
}

/// The gateway's admin port (metrics) is admitted only from where monitoring runs; the proxy
/// port stays open to the ingress controller wherever it runs.
#[test]
fn the_admin_port_is_reachable_only_from_monitoring() {
    let ingress_of = |plan: &Plan| {
        plan.get("NetworkPolicy/shop-gateway").unwrap().value["spec"]["ingress"].clone()
    };
    let mut shop = example("shop");
    let expected = serde_json::json!([
        {"ports": [{"protocol": "TCP", "port": 8080}]},
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": 9090}],
        },
    ]);
    assert_eq!(ingress_of(&render(&shop)), expected);

    let gateway = shop.spec.gateway.as_mut().unwrap();
    gateway.monitoring = Some(crate::api::MonitoringSpec {
        namespace_selector: None,
        pod_selector: Some(crate::api::LabelSelectorSpec {
            match_labels: BTreeMap::from([("app".to_string(), "prometheus".to_string())]),
        }),
    });
    assert_eq!(
        ingress_of(&render(&shop))[1]["from"],
        serde_json::json!([{"podSelector": {"matchLabels": {"app": "prometheus"}}}])
    );

    shop.spec.gateway.as_mut().unwrap().monitoring = None;
    assert_eq!(
        ingress_of(&render(&shop)),
        serde_json::json!([{"ports": [{"protocol": "TCP", "port": 8080}]}])
    );
}

#[test]
fn trusted_proxies_go_to_the_gateway_config() {
    let mut shop = example("shop");
    let config = |plan: &Plan| -> serde_yaml::Value {
        let cm = plan.get("ConfigMap/shop-gateway").unwrap();
        serde_yaml::from_str(cm.value["data"]["gateway.yaml"].as_str().unwrap()).unwrap()
    };
    let rendered = config(&render(&shop));
    assert_eq!(rendered["trustedProxies"][0], "10.244.0.0/16");
    assert_eq!(rendered["clientAddressHeader"], "x-forwarded-for");
    let gateway = shop.spec.gateway.as_mut().unwrap();
    gateway.trusted_proxies = vec!["fd00::/8".into()];
    gateway.client_address_header = crate::api::ClientAddressHeader::Forwarded;
    let rendered = config(&render(&shop));
    assert_eq!(rendered["trustedProxies"][0], "fd00::/8");
    assert_eq!(rendered["clientAddressHeader"], "forwarded");
}
