//! Buckets: on AWS nothing runs in the cluster; the services that name a bucket get its
//! connection by reference and a network path to S3.

use serde_json::json;

use super::*;
use crate::api::DELETION_POLICY;

fn aws_with_bucket() -> PantheraPlatform {
    let mut platform = example("aws");
    platform.spec.buckets =
        vec![serde_json::from_value(json!({"name": "images", "backend": "aws"})).unwrap()];
    for service in &mut platform.spec.services {
        if service.name == "catalog" {
            service.buckets = vec!["images".to_string()];
        }
    }
    platform
}

#[test]
fn a_service_gets_its_buckets_connection_by_reference_and_a_path_to_s3() {
    let platform = aws_with_bucket();
    let plan = render(&platform);
    for (var, key) in [
        ("S3_BUCKET", "bucket"),
        ("S3_REGION", "region"),
        ("S3_ENDPOINT", "endpoint"),
        ("S3_FORCE_PATH_STYLE", "forcePathStyle"),
        ("S3_ACCESS_KEY_ID", "accessKeyId"),
        ("S3_SECRET_ACCESS_KEY", "secretAccessKey"),
    ] {
        let env = container_env(&plan, "Deployment/shop-aws-catalog", var).unwrap();
        assert_eq!(
            env["valueFrom"]["secretKeyRef"],
            json!({"name": "shop-aws-bucket-images", "key": key}),
            "{var}"
        );
    }
    assert!(container_env(&plan, "Deployment/shop-aws-orders", "S3_BUCKET").is_none());
    let egress = &plan.get("NetworkPolicy/shop-aws-catalog").unwrap().value["spec"]["egress"];
    assert!(
        egress
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["ports"][0]["port"] == 443),
        "{egress}"
    );
}

#[test]
fn the_buckets_secret_names_the_bucket_its_region_and_no_keys() {
    let platform = aws_with_bucket();
    let secret = Renderer::embedded()
        .unwrap()
        .aws_secret(
            &platform,
            &Generated::new(),
            ComponentKind::Bucket,
            "images",
            "s3.eu-west-1.amazonaws.com:443",
            true,
        )
        .unwrap();
    assert_eq!(secret.name(), "shop-aws-bucket-images");
    assert_eq!(
        secret.value["stringData"],
        json!({
            "bucket": "shop-aws-shop-aws-images",
            "region": "eu-west-1",
            "endpoint": "https://s3.eu-west-1.amazonaws.com",
            "forcePathStyle": "false",
            "accessKeyId": "",
            "secretAccessKey": "",
        })
    );
}

/// The shop (a cluster bucket `images` for the catalog) with `extra` buckets beside it.
fn shop_with_buckets(extra: serde_json::Value) -> PantheraPlatform {
    let mut shop = example("shop");
    let extra: Vec<crate::api::BucketSpec> = serde_json::from_value(extra).unwrap();
    shop.spec.buckets.extend(extra);
    shop
}

fn string_data(plan: &Plan, id: &str) -> serde_json::Value {
    plan.get(id)
        .unwrap_or_else(|| panic!("{id} is not rendered"))
        .value["stringData"]
        .clone()
}

#[test]
fn a_cluster_bucket_has_its_own_key_on_the_platforms_object_server() {
    let plan = Renderer::embedded()
        .unwrap()
        .render(&example("shop"), &Generated::new())
        .unwrap();
    let bucket = string_data(&plan, "Secret/shop-bucket-images");
    let secret = bucket["secretAccessKey"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(
        bucket,
        json!({
            "bucket": "shop-shop-images",
            "region": "us-east-1",
            "endpoint": "http://shop-objects.shop.svc:7070",
            "forcePathStyle": "true",
            "accessKeyId": "shop-shop-images",
            "secretAccessKey": secret,
        })
    );
    // The server knows that key as a plain user's (no admin, no bucket creation of its own).
    let server = string_data(&plan, "Secret/shop-objects");
    let users: serde_json::Value =
        serde_json::from_str(server["users.json"].as_str().unwrap()).unwrap();
    let account = &users["accessAccounts"]["shop-shop-images"];
    assert_eq!(
        (&account["secret"], &account["role"]),
        (&json!(secret), &json!("user"))
    );
    assert_eq!(users["accessAccounts"].as_object().unwrap().len(), 1);
    // The root key is the server's and the setup Job's only: no service sees it.
    let root = server["rootSecretAccessKey"].as_str().unwrap();
    assert_eq!(root.len(), 32);
    assert_ne!(root, secret);
    for o in plan.objects() {
        let text = o.value.to_string();
        let reads_root = text.contains("\"key\":\"rootSecretAccessKey\"");
        assert_eq!(
            reads_root,
            o.kind() == "StatefulSet" && o.name() == "shop-objects"
                || o.kind() == "Job" && o.value["metadata"]["labels"][LABEL_COMPONENT] == "bucket",
            "{} and the root key",
            o.id()
        );
    }
    // The catalog reads its bucket's Secret, the same keys as on AWS.
    let endpoint = container_env(&plan, "Deployment/shop-catalog", "S3_ENDPOINT").unwrap();
    assert_eq!(
        endpoint["valueFrom"]["secretKeyRef"],
        json!({"name": "shop-bucket-images", "key": "endpoint"})
    );
}

#[test]
fn only_the_buckets_services_and_setup_jobs_reach_the_object_server() {
    let plan = render(&example("shop"));
    let policy = &plan.get("NetworkPolicy/shop-objects").unwrap().value["spec"];
    let peers: Vec<&serde_json::Value> = policy["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|rule| assert_eq!(rule["ports"], json!([{"protocol": "TCP", "port": 7070}])))
        .flat_map(|rule| rule["from"].as_array().unwrap())
        .map(|peer| &peer["podSelector"]["matchLabels"])
        .collect();
    assert_eq!(
        peers,
        [
            &json!({LABEL_COMPONENT: "service", LABEL_PLATFORM_COMPONENT: "catalog", LABEL_PLATFORM: "shop"}),
            &json!({LABEL_COMPONENT: "bucket", LABEL_PLATFORM: "shop"}),
        ]
    );
    // The setup Jobs may reach the server and nothing else (beyond DNS).
    let setup = &plan.get("NetworkPolicy/shop-objects-setup").unwrap().value["spec"];
    assert_eq!(
        setup["podSelector"]["matchLabels"],
        json!({LABEL_COMPONENT: "bucket", LABEL_PLATFORM: "shop"})
    );
    assert_eq!(
        setup["egress"][0]["ports"],
        json!([{"protocol": "TCP", "port": 7070}])
    );
    assert_eq!(
        setup["egress"][0]["to"][0]["podSelector"]["matchLabels"][LABEL_COMPONENT],
        "objects"
    );
    // The Job's pods carry what that rule selects.
    let job = plan
        .objects()
        .find(|o| o.kind() == "Job" && o.name().starts_with("shop-bucket-"))
        .unwrap();
    let labels = &job.value["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        (&labels[LABEL_COMPONENT], &labels[LABEL_PLATFORM]),
        (&json!("bucket"), &json!("shop"))
    );
    // The catalog may go there, the orders service (no bucket) may not.
    let egress_to_objects = |service: &str| {
        plan.get(&format!("NetworkPolicy/shop-{service}"))
            .unwrap()
            .value["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["ports"][0]["port"] == 7070)
    };
    assert!(egress_to_objects("catalog"));
    assert!(!egress_to_objects("orders"));
}

#[test]
fn the_object_servers_volume_goes_only_when_every_cluster_bucket_says_delete() {
    let retention = |platform: &PantheraPlatform| {
        let plan = render(platform);
        let set = &plan.get("StatefulSet/shop-objects").unwrap().value;
        (
            set["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"].clone(),
            plan.get("Secret/shop-objects").unwrap().value["metadata"]["annotations"]
                [DELETION_POLICY]
                .clone(),
        )
    };
    assert_eq!(
        retention(&example("shop")),
        (json!("Retain"), json!("Retain"))
    );
    let mut all_delete = example("shop");
    all_delete.spec.buckets[0].deletion_policy = crate::api::DeletionPolicy::Delete;
    assert_eq!(retention(&all_delete), (json!("Delete"), json!("Delete")));
    let mut mixed_delete = shop_with_buckets(json!([{"name": "docs"}]));
    mixed_delete.spec.buckets[0].deletion_policy = crate::api::DeletionPolicy::Delete;
    assert_eq!(retention(&mixed_delete), (json!("Retain"), json!("Retain")));
    // An AWS bucket is not on the server: it has no say.
    let mut with_aws = shop_with_buckets(json!([{"name": "logs", "backend": "aws"}]));
    with_aws.spec.buckets[0].deletion_policy = crate::api::DeletionPolicy::Delete;
    assert_eq!(retention(&with_aws), (json!("Delete"), json!("Delete")));
}

#[test]
fn a_new_bucket_adds_an_account_and_a_job_and_keeps_the_others() {
    let jobs = |plan: &Plan| -> Vec<String> {
        plan.objects()
            .filter(|o| o.kind() == "Job" && o.name().starts_with("shop-bucket-"))
            .map(|o| o.name().to_string())
            .collect()
    };
    let accounts = |plan: &Plan| {
        plan.get("StatefulSet/shop-objects").unwrap().value["spec"]["template"]["metadata"]
            ["annotations"]["panthera.dev/accounts"]
            .clone()
    };
    let one = render(&example("shop"));
    let two = render(&shop_with_buckets(json!([{"name": "docs"}])));
    assert_eq!(jobs(&one).len(), 1);
    assert_eq!(jobs(&two).len(), 2);
    assert!(jobs(&two).contains(&jobs(&one)[0]), "the images Job stays");
    // The server rolls to read the new account.
    assert_ne!(accounts(&one), accounts(&two));
    // No server without a cluster bucket.
    let mut on_aws = aws_with_bucket();
    on_aws.spec.buckets[0].backend = Backend::Aws;
    let plan = render(&on_aws);
    assert!(plan.objects().all(|o| !o.name().ends_with("-objects")));
    assert!(
        plan.objects()
            .all(|o| o.kind() != "Job" || !o.name().contains("-bucket-"))
    );
}

#[test]
fn cluster_bucket_keys_stay_on_re_apply() {
    let shop = example("shop");
    let mut known = BTreeMap::new();
    for (secret, key, value) in [
        ("shop-bucket-images", "secretAccessKey", "kept-bucket-key"),
        ("shop-objects", "rootAccessKeyId", "kept-root-id"),
        ("shop-objects", "rootSecretAccessKey", "kept-root-key"),
    ] {
        known.insert((secret.to_string(), key.to_string()), value.to_string());
    }
    let plan = Renderer::embedded()
        .unwrap()
        .render(&shop, &Generated::with_known(known))
        .unwrap();
    assert_eq!(
        string_data(&plan, "Secret/shop-bucket-images")["secretAccessKey"],
        "kept-bucket-key"
    );
    let server = string_data(&plan, "Secret/shop-objects");
    assert_eq!(server["rootAccessKeyId"], "kept-root-id");
    assert_eq!(server["rootSecretAccessKey"], "kept-root-key");
    assert!(
        server["users.json"]
            .as_str()
            .unwrap()
            .contains("\"secret\":\"kept-bucket-key\"")
    );
}
