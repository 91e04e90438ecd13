//! The AWS backend as the other faces of Panthera use it: the engine as a library (apply,
//! observe, destroy), the operator provisioning stores and waiting for their deletion, a replace
//! carried through one wait, and how throttling and terminal errors from AWS are handled (against
//! a fake RDS that answers what moto will not: throttling on demand).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_applies_observes_and_destroys_aws_stores_as_a_library() {
    use panthera::cloud::aws::Aws;
    use panthera::engine::{ApplyOptions, Engine, Error};
    let Some(w) = World::new().await else { return };
    let name = unique("a7");
    let file = w.platform(&name, "p.yaml", |t| t);
    let platform = panthera::load::load_file(&file).unwrap();
    let renderer = || panthera::render::Renderer::embedded().unwrap();
    common::provide_secrets(&w.sim.client().unwrap(), &platform).await;

    let bare = Engine::new(w.sim.client().unwrap(), renderer());
    let err = bare
        .apply(&platform, &ApplyOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Aws { terminal: true, component, .. } if component == "postgres/users"),
        "{err}"
    );
    assert!(
        err.to_string().contains("no AWS client is configured"),
        "{err}"
    );

    let engine = Engine::new(w.sim.client().unwrap(), renderer())
        .with_aws(Aws::from_config(w.config.clone()));
    let report = engine
        .apply(&platform, &ApplyOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(report.aws.len(), 4);
    assert!(
        report
            .aws
            .iter()
            .all(|p| p.action == panthera::cloud::aws::Action::Create)
    );
    let mut log = engine.aws().unwrap().write_log();
    log.sort();
    let ns = &name;
    assert_eq!(
        log,
        vec![
            format!("CreateCacheSubnetGroup {name}-redis"),
            format!("CreateCluster {name}-kafka"),
            format!("CreateDBInstance {name}-orders"),
            format!("CreateDBInstance {name}-users"),
            format!("CreateDBSubnetGroup {name}-orders"),
            format!("CreateDBSubnetGroup {name}-users"),
            format!("CreateReplicationGroup {name}-redis"),
            // MSK's SCRAM login, in the secret MSK requires.
            format!("CreateSecret AmazonMSK_panthera_{ns}_{name}"),
            format!("CreateSecret panthera/{ns}/{name}/postgres-orders"),
            format!("CreateSecret panthera/{ns}/{name}/postgres-users"),
            format!("CreateSecret panthera/{ns}/{name}/redis"),
        ],
        "exactly the expected resources"
    );
    assert_eq!(report.aws_writes, 11);
    let kafka = report
        .components
        .iter()
        .find(|c| c.kind == panthera::api::ComponentKind::Kafka)
        .unwrap();
    assert!(
        !kafka.ready && kafka.message.contains("creating"),
        "{kafka:?}"
    );

    let calls = engine.aws().unwrap().calls();
    let writes = engine.aws().unwrap().writes();
    let states = engine.observe(&platform).await.unwrap();
    assert_eq!(
        engine.aws().unwrap().writes(),
        writes,
        "observe never writes"
    );
    assert!(engine.aws().unwrap().calls() > calls);
    let users = states
        .iter()
        .find(|c| c.kind == panthera::api::ComponentKind::Postgres && c.name == "users")
        .unwrap();
    assert_eq!(users.backend, panthera::api::Backend::Aws);
    assert!(
        users.ready && users.message.starts_with("available"),
        "{users:?}"
    );
    assert!(users.endpoint.as_deref().unwrap().ends_with(":5432"));

    let again = engine
        .apply(&platform, &ApplyOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        again.aws_writes,
        0,
        "{:?}",
        engine.aws().unwrap().write_log()
    );

    let report = engine
        .destroy_platform(&platform, false, &|_| {})
        .await
        .unwrap();
    assert!(
        report.deleted.iter().any(|d| d.starts_with(&format!(
            "postgres/users: RDS instance {name}-users deleted (final snapshot {name}-users-final-"
        ))),
        "{report:?}"
    );
    assert!(
        report.waiting.iter().any(|w| w.starts_with(&format!(
            "redis: ElastiCache replication group {name}-redis deleting"
        ))),
        "the operator keeps its finalizer: {report:?}"
    );
    assert!(report.deleted.iter().any(|d| d.starts_with("Deployment/")));
}

/// A fake RDS endpoint: answers each request with the next (status, body), then the last forever.
async fn fake_rds(
    answers: Vec<(u16, &'static str)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let (status, body) = answers[n.min(answers.len() - 1)];
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the form body (the SDK sends Content-Length).
            loop {
                let read = socket.read(&mut buf).await.unwrap_or(0);
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + length {
                        break;
                    }
                }
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, count)
}

const THROTTLED: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>";
const NO_INSTANCE: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>DBInstance x not found.</Message></Error><RequestId>2</RequestId></ErrorResponse>";
const INVALID: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>Invalid DB instance class: db.t4g.huge</Message></Error><RequestId>3</RequestId></ErrorResponse>";

async fn fake_aws(url: &str) -> panthera::cloud::aws::Aws {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(panthera::cloud::aws::http_client())
        .endpoint_url(url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(
            panthera::cloud::aws::retry_config().with_initial_backoff(Duration::from_millis(20)),
        )
        .load()
        .await;
    panthera::cloud::aws::Aws::from_config(config)
}

fn one_database() -> panthera::api::PantheraPlatform {
    serde_yaml::from_str(
        "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata: {name: p, namespace: n}\nspec:\n  aws: {subnetIds: [subnet-00000001, subnet-00000002]}\n  databases: [{name: d, backend: aws}]\n",
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_with_backoff_and_terminal_errors_keep_awss_message() {
    // Throttled twice, then an answer: the plan goes through.
    let (url, count) = fake_rds(vec![(400, THROTTLED), (400, THROTTLED), (404, NO_INSTANCE)]).await;
    let aws = fake_aws(&url).await;
    let planned = aws.plan(&one_database()).await.unwrap();
    assert_eq!(planned[0].action, panthera::cloud::aws::Action::Create);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);

    // Throttled for good: reported as transient (retry later), after 8 attempts.
    let (url, count) = fake_rds(vec![(400, THROTTLED)]).await;
    let err = fake_aws(&url)
        .await
        .plan(&one_database())
        .await
        .unwrap_err();
    assert!(!err.terminal, "{err}");
    assert!(err.message.contains("Throttling: Rate exceeded"), "{err}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 8);

    // An invalid parameter: terminal at once, with AWS's own message and the failed action.
    let (url, count) = fake_rds(vec![(400, INVALID)]).await;
    let err = fake_aws(&url)
        .await
        .plan(&one_database())
        .await
        .unwrap_err();
    assert!(err.terminal, "{err}");
    assert_eq!(err.component, "postgres/d");
    assert_eq!(
        err.message,
        "cannot describe RDS instance p-d: InvalidParameterValue: Invalid DB instance class: db.t4g.huge"
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_provisions_aws_stores_reports_endpoints_and_waits_for_their_deletion() {
    use kube::api::{DeleteParams, PostParams};
    use panthera::api::{ConditionStatus, PantheraPlatform};

    let Some(world) = World::new().await else {
        return;
    };
    let name = unique("op");
    let platform = panthera::load::load_file(&world.platform(&name, "op.yaml", |t| t)).unwrap();
    let client = world.sim.client().unwrap();
    common::operator::install_crd(&client, &common::operator::crd()).await;
    common::operator::namespace(&client, &name).await;
    common::provide_secrets(&client, &platform).await;
    let operator = common::operator::Operator::start_with_env(
        &world.sim,
        &["--no-leader-elect"],
        &[
            ("AWS_ENDPOINT_URL", world.endpoint.as_str()),
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

    // RDS and ElastiCache are available at once on moto; MSK stays CREATING: the platform is
    // not Ready, says it waits for kafka, and shows each store's endpoint.
    let started = std::time::Instant::now();
    let status = loop {
        let p = platforms.get(&name).await.unwrap();
        if let Some(s) = p.status.filter(|s| {
            s.components
                .iter()
                .filter(|c| c.backend == panthera::api::Backend::Aws)
                .filter(|c| c.ready)
                .count()
                == 3
        }) {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "aws stores not reported ready:\n{}",
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let component = |kind: &str, n: &str| {
        status
            .components
            .iter()
            .find(|c| serde_json::to_value(c.kind).unwrap() == kind && c.name == n)
            .unwrap_or_else(|| panic!("{kind}/{n} missing: {:#?}", status.components))
            .clone()
    };
    let users = component("postgres", "users");
    let db = world.rds_instance(&format!("{name}-users")).await.unwrap();
    let address = db.endpoint().unwrap().address().unwrap().to_string();
    assert_eq!(
        users.endpoint.as_deref(),
        Some(format!("{address}:{}", db.endpoint().unwrap().port().unwrap()).as_str())
    );
    assert!(component("redis", "redis").ready);
    let kafka = component("kafka", "kafka");
    assert!(!kafka.ready);
    assert!(kafka.message.contains("creating"), "{}", kafka.message);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(ready.message.contains("kafka"), "{}", ready.message);
    assert!(!serde_json::to_string(&status).unwrap().contains("password"));

    // The connection Secrets carry the endpoints, with the same keys as the cluster backend.
    let secret = world
        .secret(&name, &format!("{name}-db-users"))
        .await
        .expect("connection Secret of postgres/users");
    assert_eq!(secret["host"], address);
    assert!(secret["url"].contains(&address), "{}", secret["url"]);
    let redis = world
        .secret(&name, &format!("{name}-redis"))
        .await
        .expect("connection Secret of redis");
    assert!(redis["url"].starts_with("rediss://"), "{}", redis["url"]);

    // Delete: the finalizer holds the platform while AWS deletes (moto's ElastiCache group
    // stays `deleting` forever) and the status says what it waits on.
    platforms
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let p = platforms.get(&name).await.unwrap();
        let message = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Reconciling"))
            .map(|c| c.message.clone())
            .unwrap_or_default();
        if message.contains("waiting for AWS to delete") {
            assert!(message.contains("redis"), "{message}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no waiting message ({message}):\n{}",
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // deletionPolicy Snapshot (examples/aws.yaml): a final snapshot, then the instance goes.
    let snapshots: Vec<String> = world
        .rds()
        .describe_db_snapshots()
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    assert!(
        snapshots
            .iter()
            .any(|s| s.starts_with(&format!("{name}-users-final-"))),
        "{snapshots:?}"
    );
    assert!(world.rds_instance(&format!("{name}-users")).await.is_none());
}

/// During `apply --wait`, a replaced store whose delete AWS has finished is created again by the
/// wait itself, with the platform's ownership tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_whose_delete_finishes_during_the_wait_is_created_again() {
    use panthera::cloud::aws::{Action, Aws, ReconcileOptions};
    let Some(w) = World::new().await else { return };
    let name = unique("a9");
    let file = w.platform(&name, "p.yaml", |t| t);
    let platform = panthera::load::load_file(&file).unwrap();
    let aws = Aws::from_config(w.config.clone());
    let observations = aws.observe_stores(&platform).await.unwrap();
    let states = aws
        .reconcile(&platform, &observations, &ReconcileOptions::default())
        .await
        .unwrap();
    let mut orders = states
        .into_iter()
        .find(|s| s.store.component == "postgres/orders")
        .unwrap();
    // Where a replace leaves the wait: planned as one, and the delete done by AWS.
    orders.planned.as_mut().unwrap().action = Action::Replace;
    let identifier = format!("{name}-orders");
    // Deleted behind Panthera's back: its protection first (as the replace would lift it).
    w.rds()
        .modify_db_instance()
        .db_instance_identifier(&identifier)
        .deletion_protection(false)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    w.rds()
        .delete_db_instance()
        .db_instance_identifier(&identifier)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    assert!(w.rds_instance(&identifier).await.is_none());

    let writes = aws.writes();
    aws.refresh(&platform, &mut orders).await.unwrap();
    assert_eq!(
        aws.write_log()[writes..],
        [
            format!("CreateDBSubnetGroup {identifier}"),
            format!("CreateDBInstance {identifier}")
        ],
        "created again (its subnet group ensured), nothing else written"
    );
    let instance = w.rds_instance(&identifier).await.unwrap();
    assert_eq!(orders.arn.as_deref(), instance.db_instance_arn());
    let tags = w
        .rds()
        .list_tags_for_resource()
        .resource_name(instance.db_instance_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_list()
            .iter()
            .any(|t| t.key() == Some("panthera.dev/platform") && t.value() == Some(&name)),
        "{tags:?}"
    );
    // A store that is simply missing (not being replaced) is left to the next reconcile.
    orders.planned.as_mut().unwrap().action = Action::Create;
    w.rds()
        .modify_db_instance()
        .db_instance_identifier(&identifier)
        .deletion_protection(false)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    w.rds()
        .delete_db_instance()
        .db_instance_identifier(&identifier)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    aws.refresh(&platform, &mut orders).await.unwrap();
    assert!(w.rds_instance(&identifier).await.is_none());
    assert!(!orders.ready);
}
