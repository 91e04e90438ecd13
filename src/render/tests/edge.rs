//! The edge renders nothing in the cluster: the plan names it as an AWS component; a service's
//! IAM role reaches its pods through its ServiceAccount.

use serde_json::json;

use super::*;

#[test]
fn the_edge_is_an_aws_component_without_objects() {
    let mut platform = example("aws");
    platform.spec.gateway.as_mut().unwrap().host = Some("shop.example.com".into());
    platform.spec.edge = Some(
        serde_json::from_value(json!({
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"
        }))
        .unwrap(),
    );
    let plan = render(&platform);
    let edge = plan
        .components
        .iter()
        .find(|c| c.kind == Some(ComponentKind::Edge))
        .expect("an edge component");
    assert_eq!(edge.name, "edge");
    assert!(edge.objects.is_empty());
    assert!(edge.external.as_deref().unwrap().contains("CloudFront"));
}

#[test]
fn a_services_role_goes_on_its_service_account_only() {
    let mut platform = example("aws");
    let role = "arn:aws:iam::123456789012:role/shop-catalog";
    for service in &mut platform.spec.services {
        if service.name == "catalog" {
            service.aws_role_arn = Some(role.into());
        }
    }
    let plan = render(&platform);
    let catalog = &plan.get("ServiceAccount/shop-aws-catalog").unwrap().value;
    assert_eq!(
        catalog["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role
    );
    let orders = &plan.get("ServiceAccount/shop-aws-orders").unwrap().value;
    assert!(orders["metadata"]["annotations"].is_null(), "{orders}");
}
