//! Product images end to end: the real catalog binary signs upload forms for a real S3 server
//! (versitygw), which holds uploads to them; the upload goes straight from the client to the
//! bucket, and the catalog attaches the object and answers URLs that download it, from
//! PostgreSQL and from the search index alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Catalog, PNG, TestBucket, post_form};
use panthera_catalog::search::document::{REFRESH_INTERVAL, index_body};
use reqwest::Method;
use serde_json::{Value, json};

/// Small, so the oversize upload is small too.
const MAX_BYTES: usize = 1024;

/// The bucket and a catalog wired to it (with `extra` environment), or `None` (skip) when a
/// test service is missing outside CI. `prepare` runs before the catalog starts.
async fn start(
    prefix: &str,
    extra: &[(&str, &str)],
    prepare: impl AsyncFnOnce(&Catalog),
) -> Option<(Catalog, TestBucket)> {
    let bucket = TestBucket::create().await?;
    let Some(mut catalog) = Catalog::prepare(prefix).await else {
        bucket.finish().await;
        return None;
    };
    prepare(&catalog).await;
    let max = MAX_BYTES.to_string();
    let env = bucket.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    all.push(("IMAGE_MAX_BYTES", &max));
    all.extend_from_slice(extra);
    catalog.start_now(&all).await;
    // The index the catalog builds at start, before any test step (and before `finish`, which
    // would otherwise race its creation and leave it behind).
    catalog.wait_for_alias().await;
    Some((catalog, bucket))
}

/// `POST /v1/products/{id}/image-uploads` as an administrator; the form, after checking it.
async fn upload_form(catalog: &Catalog, product: &str, content_type: &str) -> Value {
    let (status, _, form) = catalog
        .call(
            Method::POST,
            &format!("/v1/products/{product}/image-uploads"),
            Some(json!({"contentType": content_type})),
        )
        .await;
    assert_eq!(status, 201, "{form}");
    let key = form["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("products/{product}/")), "{form}");
    assert_eq!(form["fields"]["key"], key, "{form}");
    // Compared without case; the form carries the type as signed, in lower case.
    assert_eq!(
        form["fields"]["Content-Type"],
        content_type.to_ascii_lowercase(),
        "{form}"
    );
    assert_eq!(form["maxBytes"], MAX_BYTES, "{form}");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(form["expiresAt"].clone()).unwrap();
    let left = expires - chrono::Utc::now();
    assert!(
        (9..=10).contains(&left.num_minutes()),
        "expires in {left}: {form}"
    );
    form
}

/// Uploads `file` with `form` and checks that the storage took it.
async fn upload(catalog: &Catalog, form: &Value, file: &[u8]) {
    let (status, body) = post_form(&catalog.http, form, None, file).await;
    assert!(
        (200..300).contains(&status),
        "upload answered {status}: {body}"
    );
}

async fn attach(catalog: &Catalog, product: &str, key: &str) -> (u16, Value) {
    let (status, _, body) = catalog
        .call(
            Method::PUT,
            &format!("/v1/products/{product}/image"),
            Some(json!({"key": key})),
        )
        .await;
    (status, body)
}

async fn get_product(catalog: &Catalog, product: &str) -> Value {
    let (status, _, body) = catalog
        .call(Method::GET, &format!("/v1/products/{product}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The body and Content-Type a plain GET of `url` gets, as a browser's `<img>` would.
async fn download(catalog: &Catalog, url: &Value) -> (Vec<u8>, String) {
    let url = url
        .as_str()
        .unwrap_or_else(|| panic!("no image URL: {url}"));
    let response = catalog.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (response.bytes().await.unwrap().to_vec(), content_type)
}

fn field_errors(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_uploaded_image_is_attached_and_every_read_gives_a_url_that_downloads_it() {
    // A search index made before products had images: the catalog adds the field at start, or
    // the indexer could write no product with an image.
    let made_before_images = async |catalog: &Catalog| {
        let mut old = index_body(REFRESH_INTERVAL);
        old["mappings"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("image_key")
            .unwrap();
        old["aliases"] = json!({ catalog.alias.as_str(): {} });
        let index = format!("{}-v1-1", catalog.alias);
        let (status, body) = catalog
            .opensearch_with(Method::PUT, &index, Some(&old))
            .await;
        assert_eq!(status, 200, "{body}");
    };
    let Some((catalog, bucket)) = start("catalog_images", &[], made_before_images).await else {
        return;
    };
    let product = catalog
        .product(json!({"sku": "IMG-1", "name": "Framed Print", "priceCents": 1500}))
        .await;
    let before = get_product(&catalog, &product).await;
    assert_eq!(before["imageKey"], Value::Null, "{before}");
    assert_eq!(before["imageUrl"], Value::Null, "{before}");

    let form = upload_form(&catalog, &product, "image/png").await;
    let key = form["key"].as_str().unwrap();
    // Nothing uploaded yet: nothing to attach.
    let (status, body) = attach(&catalog, &product, key).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field_errors(&body), ["key"], "{body}");

    // The storage holds the upload to the form: not one byte more, no other type.
    let (status, body) = post_form(&catalog.http, &form, None, &[0; MAX_BYTES + 1]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("EntityTooLarge"), "{body}");
    let (status, body) = post_form(&catalog.http, &form, Some("image/jpeg"), &PNG).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        bucket.keys().await.is_empty(),
        "a refused upload was stored"
    );

    upload(&catalog, &form, &PNG).await;
    assert_eq!(bucket.keys().await, [key]);
    let (status, attached) = attach(&catalog, &product, key).await;
    assert_eq!(status, 200, "{attached}");
    assert_eq!(attached["imageKey"], key, "{attached}");
    assert_ne!(attached["updatedAt"], before["updatedAt"], "{attached}");
    let image = (PNG.to_vec(), "image/png".to_owned());
    assert_eq!(download(&catalog, &attached["imageUrl"]).await, image);

    let read = get_product(&catalog, &product).await;
    assert_eq!(read["imageKey"], key, "{read}");
    assert_eq!(download(&catalog, &read["imageUrl"]).await, image);
    // Search follows through the product.changed event (the write bumped the version, or the
    // index would have kept the older document).
    let hits = catalog
        .eventually("q=framed", |body| body["data"][0]["imageKey"] == key)
        .await;
    assert_eq!(
        download(&catalog, &hits["data"][0]["imageUrl"]).await,
        image
    );

    // Removing the image drops the reference at once, everywhere; the object stays.
    let (status, _, removed) = catalog
        .call(
            Method::DELETE,
            &format!("/v1/products/{product}/image"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["imageKey"], Value::Null, "{removed}");
    assert_eq!(removed["imageUrl"], Value::Null, "{removed}");
    assert_eq!(
        get_product(&catalog, &product).await["imageUrl"],
        Value::Null
    );
    let hits = catalog
        .eventually("q=framed", |body| {
            body["data"][0]["id"] == product.as_str() && body["data"][0]["imageKey"].is_null()
        })
        .await;
    assert_eq!(hits["data"][0]["imageUrl"], Value::Null, "{hits}");
    assert_eq!(bucket.keys().await, [key]);

    catalog.finish().await;
    bucket.finish().await;
}

#[tokio::test]
async fn only_writers_get_upload_forms_and_an_image_serves_only_the_product_it_was_issued_for() {
    let cdn = [("IMAGE_CDN_URL", "https://cdn.example.test/shop/")];
    let Some((catalog, bucket)) = start("catalog_image_rules", &cdn, async |_| {}).await else {
        return;
    };
    let poster = catalog
        .product(json!({"sku": "IMG-A", "name": "Poster", "priceCents": 900}))
        .await;
    let mug = catalog
        .product(json!({"sku": "IMG-B", "name": "Mug", "priceCents": 700}))
        .await;
    let uploads = format!("/v1/products/{poster}/image-uploads");
    let png = Some(json!({"contentType": "image/png"}));

    let customer = [("x-panthera-subject", "user-1")];
    let (status, _, body) = catalog
        .call_as(&customer, Method::POST, &uploads, png.clone())
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = catalog
        .call_as(&[], Method::POST, &uploads, png.clone())
        .await;
    assert_eq!(status, 401, "{body}");
    let writer = [
        ("x-panthera-subject", "svc-1"),
        ("x-panthera-scopes", "catalog:write"),
    ];
    let (status, _, body) = catalog
        .call_as(&writer, Method::POST, &uploads, png.clone())
        .await;
    assert_eq!(status, 201, "{body}");

    for bad in ["image/gif", "text/html", ""] {
        let (status, _, body) = catalog
            .call(Method::POST, &uploads, Some(json!({"contentType": bad})))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(field_errors(&body), ["contentType"], "{body}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (status, _, body) = catalog
        .call(
            Method::POST,
            &format!("/v1/products/{unknown}/image-uploads"),
            png.clone(),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let form = upload_form(&catalog, &poster, "Image/WebP").await;
    let key = form["key"].as_str().unwrap();
    let (status, body) = post_form(&catalog.http, &form, None, &PNG[..16]).await;
    assert!(
        (200..300).contains(&status),
        "upload answered {status}: {body}"
    );

    // The poster's image cannot become the mug's: not by its key, and a key made up for the mug
    // names an object nobody uploaded.
    let (status, body) = attach(&catalog, &mug, key).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field_errors(&body), ["key"], "{body}");
    let made_up = key.replace(&poster, &mug);
    let (status, body) = attach(&catalog, &mug, &made_up).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(field_errors(&body), ["key"], "{body}");
    assert_eq!(get_product(&catalog, &mug).await["imageKey"], Value::Null);
    let (status, _, body) = catalog
        .call_as(
            &customer,
            Method::PUT,
            &format!("/v1/products/{poster}/image"),
            Some(json!({"key": key})),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    let (status, attached) = attach(&catalog, &poster, key).await;
    assert_eq!(status, 200, "{attached}");
    // With a CDN in front of the bucket, the URL is the CDN's.
    assert_eq!(
        attached["imageUrl"],
        format!("https://cdn.example.test/shop/{key}")
    );
    let (status, _, body) = catalog
        .call_as(
            &customer,
            Method::DELETE,
            &format!("/v1/products/{poster}/image"),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(get_product(&catalog, &poster).await["imageKey"], key);

    catalog.finish().await;
    bucket.finish().await;
}

#[tokio::test]
async fn without_a_bucket_products_have_no_images_and_uploads_are_unavailable() {
    let Some(catalog) = Catalog::start("catalog_no_images").await else {
        return;
    };
    catalog.wait_for_alias().await;
    let product = catalog
        .product(json!({"sku": "IMG-0", "name": "Plain", "priceCents": 100}))
        .await;
    let (status, _, body) = catalog
        .call(
            Method::POST,
            &format!("/v1/products/{product}/image-uploads"),
            Some(json!({"contentType": "image/png"})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], 503, "{body}");
    let key = format!("products/{product}/{}", uuid::Uuid::new_v4());
    let (status, body) = attach(&catalog, &product, &key).await;
    assert_eq!(status, 503, "{body}");
    // Removing a reference needs no bucket.
    let (status, _, body) = catalog
        .call(
            Method::DELETE,
            &format!("/v1/products/{product}/image"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imageUrl"], Value::Null, "{body}");
    catalog.finish().await;
}
