//! The shop's bucket in the cluster, used as the catalog uses it: an upload form the real
//! catalog signs (asked through the gateway), the upload straight to the platform's versitygw
//! pod, the image read back through the catalog's download URL, and the server refusing a file
//! over the form's limit.

use std::net::SocketAddr;

use panthera_e2e::objects::Objects;
use panthera_e2e::{Gateway, Method, StatusCode};
use serde_json::json;

use crate::common::node::{IMAGE_MAX_BYTES, RealNode};

/// A 1x1 PNG.
const PNG: [u8; 69] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x08, 0xd7, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

pub async fn a_product_image_goes_through_the_cluster_bucket(
    node: &RealNode,
    namespace: &str,
    gateway: &Gateway,
    admin_token: &str,
    product: &str,
) {
    let (status, form) = gateway
        .send(
            Method::POST,
            &format!("/v1/products/{product}/image-uploads"),
            Some(admin_token),
            Some(json!({"contentType": "image/png"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{form}");
    // The catalog signs for the server's Service, path-style, over HTTP inside the cluster.
    let host = format!("shop-objects.{namespace}.svc");
    let url = form["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("http://{host}:7070/shop-{namespace}-images"),
        "{form}"
    );
    // From the node, that name is the Service's ClusterIP (kube-proxy routes it); a POST policy
    // does not sign the host, a download URL does: both keep the name.
    let address: SocketAddr = node
        .service_url(namespace, "shop-objects")
        .await
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let objects = Objects::new(&host, address);

    // The server holds the upload to the form's limit: one byte over is refused.
    let (status, body) = objects
        .post_form(&form, &vec![0; IMAGE_MAX_BYTES + 1])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("EntityTooLarge"), "{body}");

    let (status, body) = objects.post_form(&form, &PNG).await;
    assert!(status.is_success(), "upload answered {status}: {body}");
    let key = form["key"].as_str().unwrap();
    let (status, product) = gateway
        .send(
            Method::PUT,
            &format!("/v1/products/{product}/image"),
            Some(admin_token),
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    let image_url = product["imageUrl"].as_str().unwrap();
    assert!(image_url.starts_with(url), "{product}");
    assert_eq!(
        objects.get(image_url).await,
        (StatusCode::OK, PNG.to_vec(), "image/png".to_owned())
    );
}
