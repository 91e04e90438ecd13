//! Jaeger's query API (`/api/traces`), read by the tests that follow one request's trace (the
//! shop's order here, the operator's reconcile in the root crate).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// Jaeger's query API (`/api/traces`).
pub struct Jaeger {
    base: String,
    http: reqwest::Client,
}

impl Jaeger {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        if response.status() == StatusCode::NOT_FOUND {
            return json!({"data": []});
        }
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        response.json().await.unwrap()
    }

    /// The first trace, among the last hour's of `service` rooted at an `operation` span,
    /// that `complete` accepts; polled for a minute, since spans reach Jaeger as each process
    /// exports them.
    pub async fn find_trace(
        &self,
        service: &str,
        operation: &str,
        complete: impl Fn(&Trace) -> bool,
    ) -> Trace {
        let started = Instant::now();
        let operation_query = operation.replace(' ', "%20");
        let mut last = Value::Null;
        while started.elapsed() < Duration::from_secs(60) {
            let found = self
                .get(&format!(
                    "/api/traces?service={service}&operation={operation_query}&limit=20&lookback=1h"
                ))
                .await;
            for data in found["data"].as_array().into_iter().flatten() {
                let id = data["traceID"].as_str().unwrap_or_default();
                let full = self.get(&format!("/api/traces/{id}")).await;
                let Some(trace) = full["data"].get(0) else {
                    continue;
                };
                let trace = Trace::new(trace.clone());
                if complete(&trace) {
                    return trace;
                }
                last = trace.data;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("no complete trace of {service} `{operation}` within 60 s; last seen: {last}");
    }
}

/// One trace as Jaeger's JSON gives it.
pub struct Trace {
    pub id: String,
    pub data: Value,
    pub spans: Vec<Value>,
    services: BTreeMap<String, String>,
}

impl Trace {
    pub fn new(data: Value) -> Self {
        let spans = data["spans"].as_array().cloned().unwrap_or_default();
        let services = data["processes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, process)| {
                (
                    id.clone(),
                    process["serviceName"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect();
        Self {
            id: data["traceID"].as_str().unwrap_or_default().to_owned(),
            data,
            spans,
            services,
        }
    }

    pub fn service(&self, span: &Value) -> &str {
        span["processID"]
            .as_str()
            .and_then(|id| self.services.get(id))
            .map_or("?", String::as_str)
    }

    /// The span's parent in this trace (a CHILD_OF reference to a span of it).
    pub fn parent_id(span: &Value) -> Option<&str> {
        span["references"]
            .as_array()?
            .iter()
            .find(|r| r["refType"] == "CHILD_OF")
            .and_then(|r| r["spanID"].as_str())
    }

    /// Spans whose parent is not in the trace.
    fn roots(&self) -> Vec<&Value> {
        self.spans
            .iter()
            .filter(|span| {
                Self::parent_id(span)
                    .is_none_or(|parent| !self.spans.iter().any(|other| other["spanID"] == parent))
            })
            .collect()
    }

    pub fn root(&self) -> &Value {
        let roots = self.roots();
        assert_eq!(roots.len(), 1, "one root span expected:\n{}", self.tree());
        roots[0]
    }

    pub fn children<'a>(&'a self, parent: &Value) -> impl Iterator<Item = &'a Value> + 'a {
        let parent = parent["spanID"].as_str().map(str::to_owned);
        self.spans
            .iter()
            .filter(move |span| Self::parent_id(span) == parent.as_deref())
    }

    /// The child of `parent` made by `service` and named `operation`.
    pub fn child(&self, parent: &Value, service: &str, operation: &str) -> &Value {
        self.children(parent)
            .find(|span| self.service(span) == service && span["operationName"] == operation)
            .unwrap_or_else(|| {
                panic!(
                    "no span `{service}: {operation}` under `{}: {}`:\n{}",
                    self.service(parent),
                    parent["operationName"],
                    self.tree()
                )
            })
    }

    pub fn tag<'a>(&self, span: &'a Value, key: &str) -> Option<&'a Value> {
        span["tags"]
            .as_array()?
            .iter()
            .find(|tag| tag["key"] == key)
            .map(|tag| &tag["value"])
    }

    /// `service: operation (duration)`, indented under its parent, children by start time.
    pub fn tree(&self) -> String {
        fn walk(trace: &Trace, span: &Value, depth: usize, out: &mut String) {
            out.push_str(&format!(
                "{}{}: {} ({} µs)\n",
                "  ".repeat(depth),
                trace.service(span),
                span["operationName"].as_str().unwrap_or("?"),
                span["duration"]
            ));
            let mut children: Vec<&Value> = trace.children(span).collect();
            children.sort_by_key(|child| child["startTime"].as_i64().unwrap_or(0));
            for child in children {
                walk(trace, child, depth + 1, out);
            }
        }
        let mut out = String::new();
        let mut roots = self.roots();
        roots.sort_by_key(|root| root["startTime"].as_i64().unwrap_or(0));
        for root in roots {
            walk(self, root, 0, &mut out);
        }
        out
    }
}
