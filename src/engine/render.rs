//! Step 2, render (pure): the whole desired state from the platform and the snapshot. Existing
//! generated Secrets are rendered with the values they hold (passwords are never rotated) and
//! each AWS store AWS has published an endpoint for gets its connection Secret, with the same
//! keys as the cluster backend.

use std::collections::{BTreeMap, BTreeSet};

use super::snapshot::{Live, Snapshot, decode};
use crate::api::PantheraPlatform;
use crate::cloud::aws::{Service, StoreState, model};
use crate::render::{Error, Generated, Names, Plan, REDACTED, Renderer, annotate_store_endpoints};

/// What the platform should look like.
#[derive(Debug)]
pub struct Desired {
    pub plan: Plan,
    /// Objects the plan does not hold now but that prune must keep: the connection Secrets of
    /// AWS stores, written once AWS publishes an endpoint.
    pub keep: BTreeSet<(String, String)>,
    /// What was rendered but left out because the cluster does not serve its API, said once
    /// per API (`plan` prints it).
    pub skipped: Vec<String>,
}

/// Render `platform` against what `snapshot` found.
pub fn desired(
    renderer: &Renderer,
    platform: &PantheraPlatform,
    snapshot: &Snapshot,
) -> Result<Desired, Error> {
    let (name, namespace) = platform.ids();
    let names = Names {
        platform: name.clone(),
        namespace,
    };
    let mut plan = renderer.render(
        platform,
        &Generated::with_known(snapshot.live.generated_secrets(&name)),
    )?;
    let mut endpoints = BTreeMap::new();
    for state in snapshot.aws.iter().map(StoreState::from_observation) {
        let Some(endpoint) = &state.endpoint else {
            continue;
        };
        endpoints.insert(
            (state.store.service.kind(), state.store.name.clone()),
            endpoint.clone(),
        );
        let Some(secret) = secret_name(&names, &state.store) else {
            continue;
        };
        // An adopted ElastiCache group without AUTH takes no password.
        let password = match state.auth {
            false => Some(String::new()),
            true => state
                .password
                .clone()
                .or_else(|| known_password(&snapshot.live, &secret)),
        };
        // A store that takes a password whose password is nowhere yet: its Secret waits for the
        // apply that stores one (rendering now would invent a password that opens nothing).
        if state.store.has_password() && password.is_none() {
            continue;
        }
        let known = password
            .map(|p| BTreeMap::from([((secret.clone(), "password".to_string()), p)]))
            .unwrap_or_default();
        let object = renderer.aws_secret(
            platform,
            &Generated::with_known(known),
            state.store.service.kind(),
            &state.store.name,
            endpoint,
            state.tls,
        )?;
        if let Some(component) = plan
            .components
            .iter_mut()
            .find(|c| c.kind == Some(state.store.service.kind()) && c.name == state.store.name)
        {
            component.objects.push(object);
        }
    }
    annotate_store_endpoints(&mut plan, platform, &endpoints);
    let skipped = skip_unserved(&mut plan, &snapshot.live);
    let keep = model::stores(platform)
        .iter()
        .filter_map(|s| Some(("Secret".to_string(), secret_name(&names, s)?)))
        .collect();
    Ok(Desired {
        plan,
        keep,
        skipped,
    })
}

/// Drops the objects of kinds the cluster does not serve (the Prometheus operator's, where it is
/// not installed): applying them would fail, and the scrape annotations on the pods still let a
/// plain Prometheus find the workloads. Returns one line per API saying what was left out.
fn skip_unserved(plan: &mut Plan, live: &Live) -> Vec<String> {
    let mut skipped: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for component in &mut plan.components {
        component.objects.retain(
            |o| match crate::api::Kind::find(o.api_version(), o.kind()) {
                Some(kind) if kind.optional() && !live.serves(kind.kind) => {
                    skipped.entry(kind.api_version).or_default().push(o.id());
                    false
                }
                _ => true,
            },
        );
    }
    skipped
        .into_iter()
        .map(|(api, ids)| {
            format!(
                "the cluster does not serve {api} (the Prometheus operator's CRDs are not installed): {} skipped; the pods keep their prometheus.io scrape annotations",
                ids.join(", ")
            )
        })
        .collect()
}

/// The password a store's connection Secret already holds.
pub(super) fn known_password(live: &Live, secret: &str) -> Option<String> {
    live.get("Secret", secret)
        .and_then(|s| s.pointer("/data/password"))
        .and_then(serde_json::Value::as_str)
        .and_then(decode)
        .filter(|p| !p.is_empty() && p != REDACTED)
}

/// The connection Secret of a store; the edge has none (no service connects to it).
pub(super) fn secret_name(names: &Names, store: &model::Store) -> Option<String> {
    Some(match store.service {
        Service::Rds => names.database_secret(&store.name),
        Service::ElastiCache => names.redis_secret(),
        Service::Msk => names.kafka_secret(),
        Service::OpenSearch => names.search_secret(),
        Service::S3 => names.bucket_secret(&store.name),
        Service::CloudFront => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::aws::{Observation, Observed};

    fn aws_platform() -> PantheraPlatform {
        crate::load::load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/aws.yaml"
        )))
        .unwrap()
    }

    fn secret<'a>(desired: &'a Desired, name: &str) -> Option<&'a serde_json::Value> {
        desired
            .plan
            .objects()
            .find(|o| o.kind() == "Secret" && o.name() == name)
            .map(|o| &o.value)
    }

    #[test]
    fn a_published_store_gets_its_connection_secret_and_one_without_a_password_waits() {
        let platform = aws_platform();
        let renderer = Renderer::embedded().unwrap();
        let stores = model::stores(&platform);
        assert!(stores.len() >= 2, "the example has several AWS stores");
        let (name, namespace) = platform.ids();
        let names = Names {
            platform: name,
            namespace,
        };
        let observed = Observed {
            status: "available".into(),
            endpoint: Some("db.example.internal:5432".into()),
            auth: true,
            ..Observed::default()
        };
        let snapshot = Snapshot {
            live: Live::default(),
            aws: stores
                .iter()
                .enumerate()
                .map(|(i, store)| Observation {
                    store: store.clone(),
                    observed: Some(observed.clone()),
                    // Only the first store's password is in Secrets Manager.
                    password: (i == 0).then(|| "from-secrets-manager".to_string()),
                })
                .collect(),
        };
        let desired = desired(&renderer, &platform, &snapshot).unwrap();
        let first = secret(&desired, &secret_name(&names, &stores[0]).unwrap())
            .expect("the first store's connection Secret is rendered");
        assert!(
            first.to_string().contains("from-secrets-manager"),
            "the password is the one AWS uses: {first}"
        );
        for store in stores.iter().skip(1) {
            let rendered = secret(&desired, &secret_name(&names, store).unwrap()).is_some();
            assert_eq!(
                rendered,
                !store.has_password(),
                "{}: a store whose password is nowhere yet gets no Secret",
                store.component
            );
            assert!(
                desired
                    .keep
                    .contains(&("Secret".to_string(), secret_name(&names, store).unwrap()))
            );
        }
        // The services of a published store roll when its endpoint moves (a restore).
        let annotation = |desired: &Desired| {
            desired
                .plan
                .objects()
                .find(|o| o.kind() == "Deployment" && o.name().ends_with("-users"))
                .and_then(|o| {
                    o.value
                        .pointer("/spec/template/metadata/annotations")
                        .and_then(|a| a.get(crate::render::ENDPOINTS_ANNOTATION))
                        .cloned()
                })
        };
        let before = annotation(&desired).expect("the users service is annotated");
        let mut moved = Snapshot {
            live: Live::default(),
            aws: snapshot.aws.clone(),
        };
        if let Some(o) = moved.aws[0].observed.as_mut() {
            o.endpoint = Some("restored.example.internal:5432".into());
        }
        let after = annotation(&super::desired(&renderer, &platform, &moved).unwrap());
        assert_ne!(Some(before), after);
        let without_aws = super::desired(&renderer, &platform, &Snapshot::default()).unwrap();
        assert_eq!(annotation(&without_aws), None);
        assert!(secret(&without_aws, &secret_name(&names, &stores[0]).unwrap()).is_none());
    }

    #[test]
    fn monitoring_objects_are_skipped_where_the_cluster_does_not_serve_them() {
        let platform = crate::load::load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/shop.yaml"
        )))
        .unwrap();
        let renderer = Renderer::embedded().unwrap();
        let served = desired(&renderer, &platform, &Snapshot::default()).unwrap();
        let monitors = |d: &Desired| {
            d.plan
                .objects()
                .filter(|o| o.kind() == "ServiceMonitor" || o.kind() == "PrometheusRule")
                .count()
        };
        assert!(monitors(&served) > 0, "the shop enables Prometheus");
        assert!(served.skipped.is_empty());
        let mut live = Live::default();
        live.mark_unserved("ServiceMonitor");
        live.mark_unserved("PrometheusRule");
        let snapshot = Snapshot {
            live,
            aws: Vec::new(),
        };
        let absent = desired(&renderer, &platform, &snapshot).unwrap();
        assert_eq!(monitors(&absent), 0);
        assert_eq!(absent.skipped.len(), 1, "{:?}", absent.skipped);
        assert!(
            absent.skipped[0].contains("monitoring.coreos.com/v1")
                && absent.skipped[0].contains("ServiceMonitor/shop-gateway"),
            "{}",
            absent.skipped[0]
        );
        // The scrape annotations stay for a Prometheus without the operator.
        let gateway = absent.plan.get("Deployment/shop-gateway").unwrap();
        assert_eq!(
            gateway.value["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"],
            "true"
        );
    }
}
