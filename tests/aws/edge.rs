//! The edge against moto: CloudFront in front of the gateway's load balancer (learned from its
//! Ingress) and of an assets bucket through Origin Access Control, the WAF web ACL with its IP
//! sets, the Route 53 alias records; the plan of a change to each part; destroy disabling the
//! distribution first, then deleting it and the rest.
//!
//! What moto cannot show is in the README ("What the AWS tests cannot show").

use aws_sdk_cloudfront::types::DistributionConfig;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};

use super::*;

/// The load balancer's host name the tests publish on the gateway's Ingress.
const LB_HOST: &str = "k8s-gateway-0123456789.us-east-1.elb.amazonaws.com";
const CERTIFICATE: &str = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-edge";

impl World {
    fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.config)
    }
    fn waf(&self) -> aws_sdk_wafv2::Client {
        aws_sdk_wafv2::Client::new(&self.config)
    }
    fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.config)
    }

    /// A platform `name`: a gateway on `shop.example.com`, an assets bucket, and an edge with
    /// `edge` (YAML flow-style fields added to the certificate).
    fn edge_platform(&self, name: &str, edge: &str) -> PathBuf {
        self.small_platform(
            name,
            &format!(
                "  gateway: {{host: shop.example.com}}\n  buckets:\n    - {{name: assets, backend: aws, deletionPolicy: Delete}}\n  edge: {{certificateArn: \"{CERTIFICATE}\", staticAssets: {{bucket: assets}}{edge}}}\n"
            ),
        )
    }

    /// What the gateway's Ingress controller does once its load balancer exists.
    async fn publish_load_balancer(&self, name: &str) {
        let api: Api<Ingress> = Api::namespaced(self.sim.client().unwrap(), name);
        let status =
            serde_json::json!({"status": {"loadBalancer": {"ingress": [{"hostname": LB_HOST}]}}});
        api.patch_status(
            &format!("{name}-gateway"),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
    }

    /// The distribution whose comment is `comment`: its id, ARN, domain and configuration.
    async fn distribution(
        &self,
        comment: &str,
    ) -> Option<(String, String, String, DistributionConfig)> {
        let list = self.cloudfront().list_distributions().send().await.unwrap();
        let summary = list
            .distribution_list()?
            .items()
            .iter()
            .find(|d| d.comment() == comment)?
            .clone();
        let config = self
            .cloudfront()
            .get_distribution_config()
            .id(summary.id())
            .send()
            .await
            .unwrap();
        Some((
            summary.id().to_string(),
            summary.arn().to_string(),
            summary.domain_name().to_string(),
            config.distribution_config().unwrap().clone(),
        ))
    }

    async fn web_acl(&self, name: &str) -> Option<aws_sdk_wafv2::types::WebAcl> {
        use aws_sdk_wafv2::types::Scope;
        let list = self
            .waf()
            .list_web_acls()
            .scope(Scope::Cloudfront)
            .send()
            .await
            .unwrap();
        let summary = list
            .web_acls()
            .iter()
            .find(|a| a.name() == Some(name))?
            .clone();
        let acl = self
            .waf()
            .get_web_acl()
            .scope(Scope::Cloudfront)
            .name(name)
            .id(summary.id().unwrap())
            .send()
            .await
            .unwrap();
        acl.web_acl().cloned()
    }

    async fn ip_set(&self, name: &str) -> Option<Vec<String>> {
        use aws_sdk_wafv2::types::Scope;
        let list = self
            .waf()
            .list_ip_sets()
            .scope(Scope::Cloudfront)
            .send()
            .await
            .unwrap();
        let summary = list
            .ip_sets()
            .iter()
            .find(|s| s.name() == Some(name))?
            .clone();
        let set = self
            .waf()
            .get_ip_set()
            .scope(Scope::Cloudfront)
            .name(name)
            .id(summary.id().unwrap())
            .send()
            .await
            .unwrap();
        Some(set.ip_set().unwrap().addresses().to_vec())
    }

    /// A hosted zone for `domain`; its id without the `/hostedzone/` prefix.
    async fn hosted_zone(&self, domain: &str) -> String {
        let out = self
            .route53()
            .create_hosted_zone()
            .name(domain)
            .caller_reference(unique("zone"))
            .send()
            .await
            .unwrap();
        out.hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string()
    }

    /// The alias target of the A record `name` in `zone`.
    async fn alias_of(&self, zone: &str, name: &str) -> Option<String> {
        let out = self
            .route53()
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .send()
            .await
            .unwrap();
        out.resource_record_sets()
            .iter()
            .find(|r| r.name().trim_end_matches('.') == name && r.r#type().as_str() == "A")
            .and_then(|r| r.alias_target())
            .map(|t| t.dns_name().trim_end_matches('.').to_string())
    }

    async fn bucket_policy(&self, bucket: &str) -> serde_json::Value {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.config)
                .force_path_style(true)
                .build(),
        );
        let policy = s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
        serde_json::from_str(policy.policy().unwrap()).unwrap()
    }
}

fn statement<'a>(policy: &'a serde_json::Value, sid: &str) -> Option<&'a serde_json::Value> {
    policy["Statement"]
        .as_array()?
        .iter()
        .find(|s| s["Sid"] == sid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_waits_for_the_gateway_then_is_created_locked_down_and_a_reapply_writes_nothing() {
    let Some(w) = World::new().await else { return };
    let name = unique("e1");
    let zone = w.hosted_zone("example.com").await;
    let file = w.edge_platform(
        &name,
        &format!(", waf: {{rateLimit: 1000, allowCidrs: [198.51.100.0/24], denyCidrs: [203.0.113.7/32]}}, hostedZoneId: {zone}"),
    );
    let identifier = format!("{name}-{name}-edge");

    // No load balancer yet: the bucket is made, the edge waits and says why.
    let first = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&first);
    assert!(
        stdout(&first).contains(&format!("aws edge: create CloudFront distribution {identifier} once the gateway's Ingress publishes its load balancer's host name")),
        "{}",
        stdout(&first)
    );
    assert!(w.distribution(&identifier).await.is_none());
    let status = w.panthera(&["status", "-f", path(&file)]).await;
    assert!(
        stdout(&status)
            .contains("waiting for the gateway's Ingress to publish its load balancer's host name"),
        "{}",
        stdout(&status)
    );

    w.publish_load_balancer(&name).await;
    let plan = w.panthera(&["plan", "-f", path(&file)]).await;
    ok(&plan);
    assert!(
        stdout(&plan).contains(&format!(
            "+ edge: create CloudFront distribution {identifier} (shop.example.com -> {LB_HOST}"
        )),
        "{}",
        stdout(&plan)
    );
    let created = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&created);
    let (calls, writes) = aws_counts(&created);
    eprintln!("apply with the load balancer: {calls} AWS calls, {writes} writes");
    // Two IP sets, the web ACL, the origin access control, the distribution, the bucket's
    // grant, the records.
    assert_eq!(writes, 7, "{}", stdout(&created));

    let (_, arn, domain, config) = w.distribution(&identifier).await.expect("the distribution");
    assert!(config.enabled());
    assert_eq!(config.aliases().unwrap().items(), ["shop.example.com"]);
    let viewer = config.viewer_certificate().unwrap();
    assert_eq!(viewer.acm_certificate_arn(), Some(CERTIFICATE));
    assert_eq!(
        viewer.minimum_protocol_version().map(|v| v.as_str()),
        Some("TLSv1.2_2021")
    );
    let gateway = config
        .origins()
        .unwrap()
        .items()
        .iter()
        .find(|o| o.id() == "gateway")
        .unwrap();
    assert_eq!(gateway.domain_name(), LB_HOST);
    assert_eq!(
        gateway
            .custom_origin_config()
            .unwrap()
            .origin_protocol_policy()
            .as_str(),
        "https-only"
    );
    let behaviour = config.default_cache_behavior().unwrap();
    assert_eq!(behaviour.viewer_protocol_policy().as_str(), "https-only");
    assert_eq!(behaviour.compress(), Some(true));
    #[allow(deprecated)] // the legacy cache settings Panthera writes (see distribution.rs)
    {
        let headers = behaviour
            .forwarded_values()
            .unwrap()
            .headers()
            .unwrap()
            .items();
        assert!(
            headers.contains(&"Authorization".to_string()),
            "{headers:?}"
        );
        assert_eq!(
            (behaviour.min_ttl(), behaviour.default_ttl()),
            (Some(0), Some(0))
        );
    }
    let assets = config
        .origins()
        .unwrap()
        .items()
        .iter()
        .find(|o| o.id() == "assets")
        .unwrap();
    assert!(
        !assets
            .origin_access_control_id()
            .unwrap_or_default()
            .is_empty()
    );
    let acl = w.web_acl(&identifier).await.expect("the web ACL");
    assert_eq!(config.web_acl_id(), Some(acl.arn()));
    let rules: Vec<&str> = acl.rules().iter().map(|r| r.name()).collect();
    assert_eq!(
        rules,
        [
            "deny-list",
            "allow-list",
            "rate-limit",
            "AWSManagedRulesAmazonIpReputationList",
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet"
        ]
    );
    let rate = acl.rules()[2]
        .statement()
        .unwrap()
        .rate_based_statement()
        .unwrap();
    assert_eq!(rate.limit(), 1000);
    assert_eq!(
        w.ip_set(&format!("{identifier}-deny")).await.unwrap(),
        ["203.0.113.7/32"]
    );
    assert_eq!(
        w.ip_set(&format!("{identifier}-allow")).await.unwrap(),
        ["198.51.100.0/24"]
    );
    assert_eq!(
        w.alias_of(&zone, "shop.example.com").await.as_deref(),
        Some(domain.as_str())
    );
    // The bucket stays TLS-only and lets this distribution, and only it, read.
    let policy = w.bucket_policy(&format!("{name}-{name}-assets")).await;
    let grant = statement(&policy, "PantheraCloudFrontRead").expect("the read grant");
    assert_eq!(grant["Condition"]["StringEquals"]["AWS:SourceArn"], arn);
    assert_eq!(grant["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert!(
        statement(&policy, "PantheraDenyInsecureTransport").is_some(),
        "{policy}"
    );

    let status = w.panthera(&["status", "-f", path(&file)]).await;
    let said = stdout(&status);
    assert!(said.contains(&domain), "the distribution's domain: {said}");
    assert!(
        said.contains("deployed") || said.contains("in progress"),
        "{said}"
    );

    let again = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&again);
    let (calls, writes) = aws_counts(&again);
    eprintln!("re-apply: {calls} AWS calls, {writes} writes");
    assert_eq!(writes, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_each_part_of_the_edge_is_planned_and_made_where_it_belongs() {
    let Some(w) = World::new().await else { return };
    let name = unique("e2");
    let file = w.edge_platform(&name, "");
    let identifier = format!("{name}-{name}-edge");
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    w.publish_load_balancer(&name).await;
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);

    // The WAF's rate limit and deny list, the distribution's price class, and the bucket's
    // versioning: one plan line each for the edge and the bucket.
    let changed = w.small_platform(
        &name,
        &format!(
            "  gateway: {{host: shop.example.com}}\n  buckets:\n    - {{name: assets, backend: aws, deletionPolicy: Delete, versioning: false}}\n  edge: {{certificateArn: \"{CERTIFICATE}\", staticAssets: {{bucket: assets}}, priceClass: PriceClass_All, waf: {{rateLimit: 500, denyCidrs: [203.0.113.0/24]}}}}\n"
        ),
    );
    let plan = w.panthera(&["plan", "-f", path(&changed)]).await;
    ok(&plan);
    let said = stdout(&plan);
    eprintln!("plan of one change to each:\n{said}");
    assert!(
        said.contains(&format!(
            "~ edge: modify in place CloudFront distribution {identifier}: priceClass PriceClass_100 -> PriceClass_All; rateLimit 2000 -> 500; denyCidrs [] -> [203.0.113.0/24]"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "~ bucket/assets: modify in place S3 bucket {name}-{name}-assets: versioning on -> off"
        )),
        "{said}"
    );
    let applied = w.panthera(&["apply", "-f", path(&changed)]).await;
    ok(&applied);
    let (calls, writes) = aws_counts(&applied);
    eprintln!("one change to each: {calls} AWS calls, {writes} writes");
    // UpdateIPSet, UpdateWebACL, UpdateDistribution; PutBucketVersioning.
    assert_eq!(writes, 4, "{}", stdout(&applied));
    let acl = w.web_acl(&identifier).await.unwrap();
    let rate = acl
        .rules()
        .iter()
        .find(|r| r.name() == "rate-limit")
        .unwrap();
    assert_eq!(
        rate.statement()
            .unwrap()
            .rate_based_statement()
            .unwrap()
            .limit(),
        500
    );
    assert_eq!(
        w.ip_set(&format!("{identifier}-deny")).await.unwrap(),
        ["203.0.113.0/24"]
    );
    let (_, _, _, config) = w.distribution(&identifier).await.unwrap();
    assert_eq!(
        config.price_class().map(|p| p.as_str()),
        Some("PriceClass_All")
    );
    let again = w.panthera(&["apply", "-f", path(&changed)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_disables_the_distribution_first_then_deletes_it_and_what_it_used() {
    let Some(w) = World::new().await else { return };
    let name = unique("e3");
    let zone = w.hosted_zone("example.org").await;
    let file = w.small_platform(
        &name,
        &format!(
            "  gateway: {{host: www.example.org}}\n  edge: {{certificateArn: \"{CERTIFICATE}\", originDomainName: lb.example.org, hostedZoneId: {zone}}}\n"
        ),
    );
    let identifier = format!("{name}-{name}-edge");
    // With the origin in the spec, the first apply creates the edge.
    let first = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&first);
    let (_, _, domain, config) = w.distribution(&identifier).await.expect("created at once");
    assert_eq!(
        config.origins().unwrap().items()[0].domain_name(),
        "lb.example.org"
    );
    assert_eq!(
        w.alias_of(&zone, "www.example.org").await.as_deref(),
        Some(domain.as_str())
    );

    // CloudFront deletes only a disabled distribution: the first destroy disables it.
    let first = w.destroy(&file).await;
    ok(&first);
    let said = format!("{}{}", stdout(&first), stderr(&first));
    assert!(
        said.contains(&format!(
            "edge: CloudFront distribution {identifier} disabled"
        )),
        "{said}"
    );
    let (_, _, _, config) = w
        .distribution(&identifier)
        .await
        .expect("still there, disabled");
    assert!(!config.enabled());
    assert!(
        w.web_acl(&identifier).await.is_some(),
        "kept while the distribution is"
    );

    // The next one deletes it, then its records, web ACL, IP sets.
    let second = w.destroy(&file).await;
    ok(&second);
    let said = format!("{}{}", stdout(&second), stderr(&second));
    assert!(
        said.contains(&format!(
            "edge: CloudFront distribution {identifier} deleted"
        )),
        "{said}"
    );
    assert!(w.distribution(&identifier).await.is_none());
    assert!(w.web_acl(&identifier).await.is_none());
    assert!(w.ip_set(&format!("{identifier}-deny")).await.is_none());
    assert!(w.alias_of(&zone, "www.example.org").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_creates_the_edge_in_the_same_apply_once_the_load_balancer_appears() {
    let Some(w) = World::new().await else { return };
    let name = unique("e4");
    let file = w.small_platform(
        &name,
        &format!(
            "  gateway: {{host: api.example.net}}\n  edge: {{certificateArn: \"{CERTIFICATE}\"}}\n"
        ),
    );
    let identifier = format!("{name}-{name}-edge");
    let args = ["apply", "-f", path(&file), "--wait", "--timeout", "120s"];
    let apply = w.panthera(&args);
    // The load balancer controller answers while apply waits for it.
    let publish = async {
        let ingresses: Api<Ingress> = Api::namespaced(w.sim.client().unwrap(), &name);
        for _ in 0..300 {
            if ingresses
                .get_opt(&format!("{name}-gateway"))
                .await
                .unwrap()
                .is_some()
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
                w.publish_load_balancer(&name).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway's Ingress was never created");
    };
    let (applied, ()) = tokio::join!(apply, publish);
    ok(&applied);
    let said = format!("{}{}", stdout(&applied), stderr(&applied));
    assert!(
        said.contains("publishes no load balancer host name yet"),
        "it waited: {said}"
    );
    let (_, _, domain, config) = w
        .distribution(&identifier)
        .await
        .expect("created by the same apply");
    assert_eq!(config.origins().unwrap().items()[0].domain_name(), LB_HOST);
    assert!(
        said.contains(&domain),
        "the status names the distribution: {said}"
    );
}

/// The operator: the edge waits for the gateway's load balancer, is created once the Ingress
/// publishes it (a status change of a child wakes the operator), is reported with its domain,
/// and goes with the platform (disabled, then deleted) before the finalizer lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_creates_the_edge_once_the_gateway_has_a_load_balancer_and_deletes_it_with_the_platform()
 {
    use kube::api::{DeleteParams, PostParams};
    use panthera::api::PantheraPlatform;

    let Some(w) = World::new().await else { return };
    let name = unique("eo");
    let file = w.small_platform(
        &name,
        &format!(
            "  gateway: {{host: op.example.net}}\n  edge: {{certificateArn: \"{CERTIFICATE}\"}}\n"
        ),
    );
    let identifier = format!("{name}-{name}-edge");
    let platform = panthera::load::load_file(&file).unwrap();
    let client = w.sim.client().unwrap();
    common::operator::install_crd(&client, &common::operator::crd()).await;
    common::operator::namespace(&client, &name).await;
    let operator = common::operator::Operator::start_with_env(
        &w.sim,
        &["--no-leader-elect"],
        &[
            ("AWS_ENDPOINT_URL", w.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let platforms: Api<PantheraPlatform> = Api::namespaced(client.clone(), &name);
    platforms
        .create(&PostParams::default(), &platform)
        .await
        .unwrap();
    let edge_state = || async {
        let p = platforms.get(&name).await.unwrap();
        p.status
            .and_then(|s| s.components.into_iter().find(|c| c.name == "edge"))
    };
    let operator = &operator;
    let until = |what: &'static str| {
        let started = std::time::Instant::now();
        move |done: bool| {
            assert!(
                done || started.elapsed() < Duration::from_secs(90),
                "{what}:\n{}",
                operator.logs()
            );
            done
        }
    };
    let waiting = until("the edge never reported waiting for the load balancer");
    loop {
        let edge = edge_state().await;
        if waiting(
            edge.as_ref()
                .is_some_and(|e| e.message.contains("load balancer")),
        ) {
            assert!(!edge.unwrap().ready);
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(w.distribution(&identifier).await.is_none());

    w.publish_load_balancer(&name).await;
    let created = until("the operator did not create the edge");
    let edge = loop {
        let edge = edge_state().await;
        if created(edge.as_ref().is_some_and(|e| e.endpoint.is_some())) {
            break edge.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (_, _, domain, _) = w
        .distribution(&identifier)
        .await
        .expect("created by the operator");
    assert_eq!(edge.endpoint.as_deref(), Some(domain.as_str()));
    assert!(
        edge.message.contains("deployed") || edge.message.contains("in progress"),
        "{}",
        edge.message
    );

    platforms
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let gone = until("the platform's edge was not deleted with it");
    loop {
        let left = platforms.get_opt(&name).await.unwrap().is_some()
            || w.distribution(&identifier).await.is_some();
        if gone(!left) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(w.web_acl(&identifier).await.is_none());
}
