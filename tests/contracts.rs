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

/// What the CRD's pattern accepts in `gateway.trustedProxies` the gateway reads as a network,
/// and what the gateway would refuse the CRD refuses first (with the field's path).
#[test]
fn trusted_proxies_the_crd_accepts_are_networks_the_gateway_reads() {
    use panthera_gateway::client_addr::Cidr;
    let shop = include_str!("../examples/shop.yaml");
    let cases = [
        ("10.244.0.0/16", true),
        ("0.0.0.0/0", true),
        ("203.0.113.7/32", true),
        ("10.1.2.3/8", true),
        ("::/0", true),
        ("::1/128", true),
        ("fd00::/8", true),
        ("2001:db8::1:0:0:1/64", true),
        ("1:2:3:4:5:6:7::/112", true),
        ("1:2:3:4:5:6:7:8/128", true),
        ("FE80::/10", true),
        ("10.0.0.0", false),
        ("10.0.0.0/33", false),
        ("010.0.0.0/8", false),
        ("10.0.0.256/8", false),
        ("fd00::/129", false),
        ("fd00:::/8", false),
        ("::ffff:10.0.0.1/128", false),
        ("fe80::1%eth0/64", false),
        ("1:2:3:4:5:6:7:8:9/64", false),
    ];
    for (cidr, valid) in cases {
        let text = shop.replace("[\"10.244.0.0/16\"]", &format!("[\"{cidr}\"]"));
        let validated = panthera::load::load_str("contract", &text);
        assert_eq!(validated.is_ok(), valid, "{cidr}: {:?}", validated.err());
        if valid {
            assert!(Cidr::parse(cidr).is_ok(), "the gateway refuses {cidr}");
        }
    }
}

/// A freshly generated identity Secret holds keys the gateway and the services accept.
#[test]
fn generated_identity_keys_are_accepted_by_the_gateway_and_the_services() {
    let platform =
        panthera::load::load_str("contract", include_str!("../examples/shop.yaml")).unwrap();
    let plan = Renderer::embedded()
        .unwrap()
        .render(&platform, &panthera::render::Generated::new())
        .unwrap();
    let secret = plan.get("Secret/shop-identity").unwrap();
    let keys = secret.value["stringData"]["keys"].as_str().unwrap();
    panthera_identity::KeyRing::parse(keys).unwrap_or_else(|e| panic!("{e}"));
}
