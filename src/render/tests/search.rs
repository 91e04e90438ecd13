//! The search engine in the cluster: OpenSearch's StatefulSet, its connection Secret and the
//! network path from the services that search, and only from them.

use serde_json::json;

use super::*;

#[test]
fn opensearch_runs_restricted_with_half_its_memory_as_heap() {
    let plan = render(&shop_with_search());
    let set = plan.get("StatefulSet/shop-search").unwrap();
    let pod = &set.value["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        "docker.io/opensearchproject/opensearch:2.19.1"
    );
    assert_eq!(pod["securityContext"]["runAsUser"], 1000);
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // No vm.max_map_count to raise (that would take a privileged init container).
    assert!(args.contains(&"-Enode.store.allow_mmap=false"), "{args:?}");
    assert!(args.contains(&"-Ediscovery.type=single-node"), "{args:?}");
    assert!(
        pod.get("initContainers").is_none(),
        "no init container may raise kernel settings"
    );
    // The default limit is 2Gi: a 1 GiB heap.
    assert_eq!(
        container_env(&plan, "StatefulSet/shop-search", "OPENSEARCH_JAVA_OPTS").unwrap()["value"],
        "-Xms1024m -Xmx1024m"
    );
    assert_eq!(
        set.value["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Retain"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        "/_cluster/health?local=true&wait_for_status=yellow&timeout=1s"
    );
}

#[test]
fn the_heap_follows_the_memory_limit() {
    let mut platform = shop_with_search();
    platform.spec.search.as_mut().unwrap().resources =
        serde_json::from_value(json!({"limits": {"cpu": "1", "memory": "3Gi"}})).unwrap();
    let plan = render(&platform);
    assert_eq!(
        container_env(&plan, "StatefulSet/shop-search", "OPENSEARCH_JAVA_OPTS").unwrap()["value"],
        "-Xms1536m -Xmx1536m"
    );
}

#[test]
fn only_the_services_that_search_reach_it_and_they_get_its_connection_by_reference() {
    let plan = render(&shop_with_search());
    let secret = plan.get("Secret/shop-search").unwrap();
    assert_eq!(
        secret.value["stringData"]["endpoint"],
        "http://shop-search.shop.svc:9200"
    );
    for key in ["endpoint", "username", "password"] {
        assert!(secret.value["stringData"].get(key).is_some(), "{key}");
    }
    let endpoint = container_env(&plan, "Deployment/shop-catalog", "SEARCH_ENDPOINT").unwrap();
    assert_eq!(
        endpoint["valueFrom"]["secretKeyRef"],
        json!({"name": "shop-search", "key": "endpoint"})
    );
    assert!(container_env(&plan, "Deployment/shop-orders", "SEARCH_ENDPOINT").is_none());

    let policy = plan.get("NetworkPolicy/shop-search").unwrap();
    let from = &policy.value["spec"]["ingress"][0]["from"];
    assert_eq!(from.as_array().unwrap().len(), 1, "{from}");
    assert_eq!(
        from[0]["podSelector"]["matchLabels"][LABEL_PLATFORM_COMPONENT],
        "catalog"
    );
    assert_eq!(policy.value["spec"]["ingress"][0]["ports"][0]["port"], 9200);

    let egress = &plan.get("NetworkPolicy/shop-catalog").unwrap().value["spec"]["egress"];
    assert!(
        egress.as_array().unwrap().iter().any(|rule| {
            rule["ports"][0]["port"] == 9200
                && rule["to"][0]["podSelector"]["matchLabels"][LABEL_COMPONENT] == "search"
        }),
        "{egress}"
    );
}

#[test]
fn a_service_rolls_when_the_search_endpoint_moves() {
    let platform = shop_with_search();
    let annotation = |endpoint: &str| {
        let mut plan = render(&platform);
        let endpoints = BTreeMap::from([(
            (ComponentKind::Search, "search".to_string()),
            endpoint.to_string(),
        )]);
        annotate_store_endpoints(&mut plan, &platform, &endpoints);
        plan.get("Deployment/shop-catalog").unwrap().value["spec"]["template"]["metadata"]
            ["annotations"][ENDPOINTS_ANNOTATION]
            .clone()
    };
    let before = annotation("http://a:9200");
    assert!(before.is_string(), "{before}");
    assert_ne!(before, annotation("http://b:9200"));
}

#[test]
fn on_aws_nothing_runs_in_the_cluster_and_the_services_reach_the_domain_over_https() {
    let mut platform = example("aws");
    platform.spec.search = Some(serde_json::from_value(json!({"backend": "aws"})).unwrap());
    for service in &mut platform.spec.services {
        service.search = service.name == "catalog";
    }
    let plan = render(&platform);
    assert!(plan.get("StatefulSet/shop-aws-search").is_none());
    assert!(plan.get("NetworkPolicy/shop-aws-search").is_none());
    let egress = &plan.get("NetworkPolicy/shop-aws-catalog").unwrap().value["spec"]["egress"];
    assert!(
        egress.as_array().unwrap().iter().any(|rule| {
            rule["ports"][0]["port"] == 443 && rule["to"][0]["ipBlock"].is_object()
        }),
        "{egress}"
    );
    // The connection Secret of the domain: the same keys, HTTPS, the master user's login.
    let secrets = Generated::with_known(BTreeMap::from([(
        ("shop-aws-search".to_string(), "password".to_string()),
        "master-pw".to_string(),
    )]));
    let secret = Renderer::embedded()
        .unwrap()
        .aws_secret(
            &platform,
            &secrets,
            ComponentKind::Search,
            "search",
            "vpc-shop-aws-search.eu-west-1.es.amazonaws.com:443",
            true,
        )
        .unwrap();
    assert_eq!(secret.name(), "shop-aws-search");
    assert_eq!(
        secret.value["stringData"],
        json!({
            "endpoint": "https://vpc-shop-aws-search.eu-west-1.es.amazonaws.com:443",
            "username": "panthera",
            "password": "master-pw",
        })
    );
}
