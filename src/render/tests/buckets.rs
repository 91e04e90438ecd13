//! Buckets: on AWS nothing runs in the cluster; the services that name a bucket get its
//! connection by reference and a network path to S3.

use serde_json::json;

use super::*;

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
