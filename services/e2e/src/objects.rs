//! A client of an S3-compatible server as a browser would use it with what the catalog hands
//! out: the signed upload form (a presigned POST policy) and the download URL. The server may be
//! reached at another address than the host the catalog signs for (a Service's ClusterIP from
//! the node, for `{name}.{namespace}.svc`): the host name is resolved to that address, so the
//! `Host` header stays the signed one.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

pub struct Objects {
    http: reqwest::Client,
}

impl Objects {
    /// Requests to `host` (any port) go to `address`.
    pub fn new(host: &str, address: SocketAddr) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .resolve(host, address)
                .build()
                .unwrap(),
        }
    }

    /// Uploads `file` with the form the catalog answered (`url`, `fields`): its fields first,
    /// the file last (S3 ignores fields after it). The status and the body.
    pub async fn post_form(&self, form: &Value, file: &[u8]) -> (StatusCode, String) {
        let boundary = "panthera-e2e-form-boundary";
        let mut body = Vec::new();
        for (name, value) in form["fields"].as_object().unwrap() {
            let value = value.as_str().unwrap();
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(form["url"].as_str().unwrap())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// A plain GET of a (presigned) URL: the status, the body and its Content-Type.
    pub async fn get(&self, url: &str) -> (StatusCode, Vec<u8>, String) {
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            response.bytes().await.unwrap().to_vec(),
            content_type,
        )
    }
}
