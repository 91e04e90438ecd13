//! Search on Amazon OpenSearch Service against moto: the domain as production needs it (VPC,
//! encryption, HTTPS only, fine-grained access control with its master user in Secrets Manager),
//! the connection Secret with the same keys as in the cluster, a change planned as AWS applies it
//! (in place or blue/green) and made in one call, a foreign domain refused, and destroy by the
//! deletion policy.
//!
//! moto cannot show: a domain creating or in a blue/green deployment (it is Active at once and
//! takes any change at once), a version upgrade (no UpgradeDomain), the deployment type AWS
//! itself predicts (no DryRun), and the checks AWS makes of instance types, volume sizes, the
//! master password and the access policy.

use aws_sdk_opensearch::types::DomainStatus;

use super::*;

impl World {
    fn opensearch(&self) -> aws_sdk_opensearch::Client {
        aws_sdk_opensearch::Client::new(&self.config)
    }

    /// A platform `name` with only a search domain, `search` in YAML flow style.
    fn search_platform(&self, name: &str, search: &str) -> PathBuf {
        self.small_platform(name, &format!("  search: {search}\n"))
    }

    async fn domain(&self, name: &str) -> Option<DomainStatus> {
        let out = self
            .opensearch()
            .describe_domain()
            .domain_name(name)
            .send()
            .await
            .ok()?;
        out.domain_status().cloned()
    }

    async fn domain_tags(&self, arn: &str) -> BTreeMap<String, String> {
        let out = self.opensearch().list_tags().arn(arn).send().await.unwrap();
        out.tag_list()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_domain_is_created_protected_and_a_reapply_writes_nothing() {
    let Some(w) = World::new().await else { return };
    let name = unique("os1");
    let file = w.search_platform(
        &name,
        "{backend: aws, instanceCount: 2, availabilityZones: 2, storage: 20Gi, deletionPolicy: Delete}",
    );
    let first = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&first);
    let (calls, writes) = aws_counts(&first);
    eprintln!("first apply: {calls} AWS calls, {writes} writes");
    // The master user's secret, then the domain.
    assert_eq!(writes, 2, "{}", stdout(&first));

    let id = format!("{name}-search");
    let domain = w.domain(&id).await.expect("the domain exists");
    assert_eq!(domain.engine_version(), Some("OpenSearch_2.19"));
    let cluster = domain.cluster_config().unwrap();
    assert_eq!(
        cluster.instance_type().map(|t| t.as_str()),
        Some("m7g.large.search")
    );
    assert_eq!(cluster.instance_count(), Some(2));
    assert_eq!(cluster.zone_awareness_enabled(), Some(true));
    assert_eq!(
        cluster
            .zone_awareness_config()
            .and_then(|z| z.availability_zone_count()),
        Some(2)
    );
    assert_eq!(cluster.dedicated_master_enabled(), Some(false));
    let ebs = domain.ebs_options().unwrap();
    assert_eq!(ebs.volume_size(), Some(20));
    assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("gp3"));
    // In the VPC, one subnet per zone, behind the platform's security group.
    let (subnets, sg) = network(&w.endpoint);
    let vpc = domain.vpc_options().unwrap();
    assert_eq!(vpc.subnet_ids(), &subnets[..2]);
    assert_eq!(vpc.security_group_ids(), [sg]);
    // Encrypted at rest and between nodes, HTTPS only with TLS 1.2+, fine-grained access.
    assert_eq!(
        domain
            .encryption_at_rest_options()
            .and_then(|e| e.enabled()),
        Some(true)
    );
    assert_eq!(
        domain
            .node_to_node_encryption_options()
            .and_then(|e| e.enabled()),
        Some(true)
    );
    let endpoint = domain.domain_endpoint_options().unwrap();
    assert_eq!(endpoint.enforce_https(), Some(true));
    assert_eq!(
        endpoint.tls_security_policy().map(|p| p.as_str()),
        Some("Policy-Min-TLS-1-2-PFS-2023-10")
    );
    let security = domain.advanced_security_options().unwrap();
    assert_eq!(security.enabled(), Some(true));
    assert_eq!(security.internal_user_database_enabled(), Some(true));
    let policy: serde_json::Value =
        serde_json::from_str(domain.access_policies().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        format!("{}/*", domain.arn())
    );
    let tags = w.domain_tags(domain.arn()).await;
    assert_eq!(tags["panthera.dev/platform"], name);
    assert_eq!(tags["panthera.dev/component"], "search");
    assert_eq!(tags["panthera.dev/deletion-policy"], "Delete");

    // The connection Secret: the same keys as in the cluster, HTTPS, and the master user's
    // login that Secrets Manager keeps.
    let secret = w.secret(&name, &format!("{name}-search")).await.unwrap();
    let host = domain.endpoints().unwrap()["vpc"].clone();
    assert_eq!(secret["endpoint"], format!("https://{host}:443"));
    assert_eq!(secret["username"], "panthera");
    let kept = w
        .secrets()
        .get_secret_value()
        .secret_id(format!("panthera/{name}/{name}/search"))
        .send()
        .await
        .unwrap();
    let kept: serde_json::Value = serde_json::from_str(kept.secret_string().unwrap()).unwrap();
    assert_eq!(kept["username"], "panthera");
    assert_eq!(kept["password"], secret["password"].as_str());
    assert!(secret["password"].len() >= 32);
    assert!(
        !stdout(&first).contains(&secret["password"])
            && !stderr(&first).contains(&secret["password"]),
        "the password is never printed"
    );

    let again = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&again);
    let (calls, writes) = aws_counts(&again);
    eprintln!("re-apply: {calls} AWS calls, {writes} writes");
    assert_eq!(writes, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_change_is_planned_as_aws_applies_it_and_made_in_one_call() {
    let Some(w) = World::new().await else { return };
    let name = unique("os2");
    let search = "{backend: aws, instanceCount: 2, storage: 20Gi, deletionPolicy: Delete, dedicatedMasters: {instanceType: m7g.medium.search}}";
    let file = w.search_platform(&name, search);
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);

    // With dedicated masters, more data nodes and a larger volume are online changes.
    let grown = w.search_platform(
        &name,
        &search.replace(
            "instanceCount: 2, storage: 20Gi",
            "instanceCount: 4, storage: 40Gi",
        ),
    );
    let plan = w.panthera(&["plan", "-f", path(&grown)]).await;
    ok(&plan);
    let id = format!("{name}-search");
    assert!(
        stdout(&plan).contains(&format!(
            "~ search: modify in place OpenSearch Service domain {id}: instanceCount 2 -> 4; storage 20 -> 40"
        )),
        "{}",
        stdout(&plan)
    );
    // Another instance type is a blue/green deployment.
    let retyped = w.search_platform(
        &name,
        &search.replace(
            "instanceCount: 2,",
            "instanceCount: 4, instanceType: r7g.large.search,",
        ),
    );
    let plan = w.panthera(&["plan", "-f", path(&retyped)]).await;
    ok(&plan);
    assert!(
        stdout(&plan).contains(&format!(
            "~ search: modify by a blue/green deployment OpenSearch Service domain {id}: instanceType m7g.large.search -> r7g.large.search (blue/green); instanceCount 2 -> 4"
        )),
        "{}",
        stdout(&plan)
    );
    assert_eq!(
        w.domain(&id)
            .await
            .unwrap()
            .cluster_config()
            .unwrap()
            .instance_count(),
        Some(2),
        "plan writes nothing"
    );

    let applied = w.panthera(&["apply", "-f", path(&retyped)]).await;
    ok(&applied);
    assert_eq!(
        aws_counts(&applied).1,
        1,
        "one UpdateDomainConfig: {}",
        stdout(&applied)
    );
    let domain = w.domain(&id).await.unwrap();
    let cluster = domain.cluster_config().unwrap();
    assert_eq!(
        cluster.instance_type().map(|t| t.as_str()),
        Some("r7g.large.search")
    );
    assert_eq!(cluster.instance_count(), Some(4));
    assert_eq!(cluster.dedicated_master_count(), Some(3));
    let again = w.panthera(&["apply", "-f", path(&retyped)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_domain_is_refused_and_destroy_goes_by_the_deletion_policy() {
    let Some(w) = World::new().await else { return };
    let name = unique("os3");
    let id = format!("{name}-search");
    // A domain of the same name that Panthera did not create.
    w.opensearch()
        .create_domain()
        .domain_name(&id)
        .engine_version("OpenSearch_2.19")
        .send()
        .await
        .unwrap();
    let file = w.search_platform(&name, "{backend: aws, deletionPolicy: Delete}");
    let refused = w.panthera(&["apply", "-f", path(&file)]).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&format!(
            "OpenSearch Service domain {id} already exists and was not created by Panthera"
        )),
        "{}",
        stderr(&refused)
    );
    let foreign = w.domain(&id).await.unwrap();
    assert!(
        w.domain_tags(foreign.arn()).await.is_empty(),
        "the foreign domain is left as it was"
    );
    w.opensearch()
        .delete_domain()
        .domain_name(&id)
        .send()
        .await
        .unwrap();

    // Delete: the domain goes.
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    assert!(w.domain(&id).await.is_some());
    let destroy = w.destroy(&file).await;
    ok(&destroy);
    assert!(w.domain(&id).await.is_none(), "{}", stdout(&destroy));

    // Snapshot (the default): OpenSearch Service keeps no final snapshot, so the domain is kept,
    // handed back without Panthera's tags.
    let kept = unique("os4");
    let file = w.search_platform(&kept, "{backend: aws}");
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let destroy = w.destroy(&file).await;
    ok(&destroy);
    let domain = w
        .domain(&format!("{kept}-search"))
        .await
        .unwrap_or_else(|| panic!("kept: {}", stdout(&destroy)));
    let tags = w.domain_tags(domain.arn()).await;
    assert!(
        !tags.keys().any(|k| k.starts_with("panthera.dev/")),
        "{tags:?}"
    );
    let said = format!("{}{}", stdout(&destroy), stderr(&destroy));
    assert!(
        said.contains(&format!("OpenSearch Service domain {kept}-search retained")),
        "{said}"
    );
}
