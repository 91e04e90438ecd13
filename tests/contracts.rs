//! The renderer writes files that other binaries of this workspace read (docs/contracts.md).
//! Both sides are checked here, so the format cannot drift on one side only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use panthera::render::{Redacted, Renderer};
use panthera_gateway::GatewayConfig;

fn gateway_config(example_text: &str) -> (String, usize) {
    let platform = panthera::load::load_str("contract", example_text).unwrap();
    let routes = platform.spec.gateway.as_ref().map_or(0, |g| g.routes.len());
    let plan = Renderer::embedded()
        .unwrap()
        .render(&platform, &Redacted)
        .unwrap();
    let name = format!("ConfigMap/{}-gateway", platform.metadata.name.unwrap());
    let cm = plan.get(&name).unwrap();
    (
        cm.value["data"]["gateway.yaml"]
            .as_str()
            .unwrap()
            .to_string(),
        routes,
    )
}

#[test]
fn the_gateway_accepts_the_rendered_configuration() {
    for example in [
        include_str!("../examples/shop.yaml"),
        include_str!("../examples/aws.yaml"),
    ] {
        let (text, routes) = gateway_config(example);
        let config = GatewayConfig::from_yaml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.routes.len(), routes);
    }
}

#[test]
fn the_gateway_accepts_a_rendered_jwks_configuration() {
    let shop = include_str!("../examples/shop.yaml").replace(
        "        hs256SecretRef:\n          name: shop-jwt\n          key: secret\n",
        "        jwksUrl: https://auth.shop.example.com/.well-known/jwks.json\n",
    );
    let (text, _) = gateway_config(&shop);
    assert!(text.contains("jwksUrl"), "{text}");
    GatewayConfig::from_yaml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}
