//! Product images in S3-compatible object storage, when `S3_BUCKET` is set.
//!
//! The catalog never carries the bytes. An administrator's client asks for an upload form (a
//! presigned POST, [`post_policy`]) whose policy pins the key, chosen here as
//! `products/{id}/{uuid}`, the Content-Type and the size, and posts the file straight to the
//! bucket. Attaching the key to the product checks the object with a HEAD (there, an allowed
//! type, not too big) and stores the key; product reads turn it into a URL, the CDN's
//! (`IMAGE_CDN_URL`) or a presigned GET.
//!
//! The bucket's policy or the credentials' IAM role must allow `s3:PutObject` (the uploads are
//! signed with these credentials), `s3:GetObject` (HEAD and downloads) and `s3:ListBucket` (without
//! it S3 answers a missing object with 403 rather than 404, and attaching a key that was never
//! uploaded fails as an internal error instead of a 422).

pub mod post_policy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, ProvideCredentials, Region, ResponseChecksumValidation, SharedCredentialsProvider,
    SharedHttpClient,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use chrono::Utc;
use reqwest::Url;
use uuid::Uuid;

use crate::config::ImageConfig;
use crate::model::{ImageUpload, Product};

/// The image types accepted: what every browser displays.
pub const CONTENT_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];
/// How long an upload form is good for: enough to pick a file and send it.
pub const UPLOAD_WINDOW: Duration = Duration::from_secs(10 * 60);
/// The largest object a single POST may create (S3's limit).
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Presigned download URLs are signed at the start of the current step and valid for
/// [`DOWNLOAD_VALIDITY`] from there, so at least 60 minutes after any read. Signing at a step's
/// start, not at the read, gives every read within the step the same URL, which browsers and
/// proxies can then cache.
pub const DOWNLOAD_STEP: Duration = Duration::from_secs(10 * 60);
pub const DOWNLOAD_VALIDITY: Duration = Duration::from_secs(70 * 60);
/// Presigned URLs kept for the current step: beyond this many images read within one step, the
/// others are signed at each read.
const MAX_KEPT_URLS: usize = 10_000;
/// Temporary credentials are renewed when they expire within this: they must outlive the
/// upload forms signed with them.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(15 * 60);
/// Connecting to the storage must be quick; a HEAD is small.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Why images could not be set up (the catalog does not start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("S3_ENDPOINT is not an http(s) URL without credentials, path or query")]
    Endpoint,
    #[error("IMAGE_CDN_URL is not an http(s) URL")]
    CdnUrl,
    #[error("S3_BUCKET {0:?} is not a bucket name (3 to 63 lower-case letters, digits, '.', '-')")]
    Bucket(String),
    #[error("IMAGE_MAX_BYTES must be between 1 and {MAX_UPLOAD_BYTES} (5 GiB, S3's POST limit)")]
    MaxBytes,
    #[error("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both, or neither")]
    PartialKey,
    #[error("S3_BUCKET is set but no region is: set S3_REGION (or AWS_REGION)")]
    Region,
    #[error("no AWS credentials provider could be set up")]
    Credentials,
}

/// A failed storage call or signature; `Display` names the action and the cause.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("loading the AWS credentials that sign image uploads: {0}")]
    Credentials(String),
    #[error("signing an image upload form")]
    Signing(#[from] post_policy::KeyError),
    #[error("reading the object {key} of the image bucket: {detail}")]
    Head { key: String, detail: String },
    #[error("presigning the download of {key}: {detail}")]
    Presign { key: String, detail: String },
}

/// HTTPS client of the SDK: rustls with ring, like every other client of the workspace (see the
/// workspace's Cargo.toml); plain HTTP works too, for a local S3-compatible server.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// An object in the bucket, as a HEAD describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub content_type: Option<String>,
}

#[derive(Clone)]
pub struct Images {
    inner: Arc<Inner>,
}

struct Inner {
    client: aws_sdk_s3::Client,
    credentials: SharedCredentialsProvider,
    /// The credentials upload forms are signed with, while they last: the SDK caches its own for
    /// its calls, but the chain behind `credentials` would fetch anew (from STS with IRSA) on
    /// every form.
    signing: tokio::sync::Mutex<Option<Credentials>>,
    /// A key's URL is the same for the whole step, so it is presigned once per step, not at
    /// every read: the SDK's presigning costs more than the rest of a product read (measured
    /// about 0.8 ms a URL in a debug build, a page of 100 products 20 ms without images and
    /// 100 ms with).
    urls: std::sync::Mutex<KeptUrls>,
    bucket: String,
    region: String,
    upload_url: String,
    cdn: Option<String>,
    max_bytes: u64,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Images")
            .field("bucket", &inner.bucket)
            .field("region", &inner.region)
            .field("upload_url", &inner.upload_url)
            .field("cdn", &inner.cdn)
            .field("max_bytes", &inner.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Images {
    /// `None` when `S3_BUCKET` is unset. Makes no network call: credentials and the bucket are
    /// first used by the first upload or read.
    pub async fn from_config(config: &ImageConfig) -> Result<Option<Self>, SetupError> {
        let Some(bucket) = config.bucket() else {
            return Ok(None);
        };
        if !valid_bucket(bucket) {
            return Err(SetupError::Bucket(bucket.to_owned()));
        }
        let endpoint = config.endpoint().map(parse_endpoint).transpose()?;
        let cdn = config
            .cdn_url()
            .map(|url| match Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                    Ok(url.trim_end_matches('/').to_owned())
                }
                _ => Err(SetupError::CdnUrl),
            })
            .transpose()?;
        let max_bytes = config.image_max_bytes;
        if max_bytes == 0 || max_bytes > MAX_UPLOAD_BYTES {
            return Err(SetupError::MaxBytes);
        }

        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        // Never the instance metadata service: outside EC2 every start would wait for it to time
        // out, and a pod's node may be in another region than the bucket.
        loader = match config.region() {
            Some(region) => loader.region(Region::new(region.to_owned())),
            None => loader.region(
                RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                    .or_else(ProfileFileRegionProvider::new()),
            ),
        };
        loader = match (config.access_key_id(), config.secret_access_key()) {
            (Some(id), Some(secret)) => loader.credentials_provider(Credentials::new(
                id,
                secret.expose(),
                None,
                None,
                "S3_ACCESS_KEY_ID",
            )),
            (None, None) => loader,
            _ => return Err(SetupError::PartialKey),
        };
        let sdk = loader.load().await;
        let region = sdk.region().ok_or(SetupError::Region)?.to_string();
        let credentials = sdk.credentials_provider().ok_or(SetupError::Credentials)?;
        let path_style = config.s3_force_path_style;
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            // No checksum header in presigned GETs: a browser's plain GET would not send it.
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &endpoint {
            s3 = s3.endpoint_url(endpoint.as_str().trim_end_matches('/'));
        }
        let upload_url = upload_url(endpoint.as_ref(), bucket, &region, path_style);
        Ok(Some(Self {
            inner: Arc::new(Inner {
                client: aws_sdk_s3::Client::from_conf(s3.build()),
                credentials,
                signing: tokio::sync::Mutex::new(None),
                urls: std::sync::Mutex::new(KeptUrls::default()),
                bucket: bucket.to_owned(),
                region,
                upload_url,
                cdn,
                max_bytes,
            }),
        }))
    }

    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Where upload forms are posted.
    pub fn upload_url(&self) -> &str {
        &self.inner.upload_url
    }

    pub fn cdn(&self) -> Option<&str> {
        self.inner.cdn.as_deref()
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// A signed form that uploads one image of `content_type` for `product` to a fresh key.
    pub async fn upload(&self, product: Uuid, content_type: &str) -> Result<ImageUpload> {
        let key = format!("products/{product}/{}", Uuid::new_v4());
        let now = Utc::now();
        let expires = now + UPLOAD_WINDOW;
        let credentials = self.signing_credentials().await?;
        let fields = post_policy::form_fields(
            &post_policy::Conditions {
                bucket: &self.inner.bucket,
                key: &key,
                content_type,
                max_bytes: self.inner.max_bytes,
                expires,
            },
            &post_policy::Signer {
                access_key_id: credentials.access_key_id(),
                secret_access_key: credentials.secret_access_key(),
                session_token: credentials.session_token(),
                region: &self.inner.region,
            },
            now,
        )?;
        Ok(ImageUpload {
            url: self.inner.upload_url.clone(),
            fields,
            key,
            expires_at: expires,
            max_bytes: self.inner.max_bytes,
        })
    }

    async fn signing_credentials(&self) -> Result<Credentials> {
        // Held across the refresh: concurrent forms wait for one fetch rather than each making
        // their own.
        let mut cached = self.inner.signing.lock().await;
        let now = SystemTime::now();
        if let Some(credentials) = cached.as_ref()
            && lasts(credentials, now)
        {
            return Ok(credentials.clone());
        }
        let credentials = self
            .inner
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| ImageError::Credentials(DisplayErrorContext(&e).to_string()))?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    /// The object under `key`; `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>> {
        match self
            .inner
            .client
            .head_object()
            .bucket(&self.inner.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(StoredObject {
                size: output
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                content_type: output.content_type().map(str::to_owned),
            })),
            Err(error)
                if error.as_service_error().is_some_and(
                    aws_sdk_s3::operation::head_object::HeadObjectError::is_not_found,
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(ImageError::Head {
                key: key.to_owned(),
                detail: DisplayErrorContext(&error).to_string(),
            }),
        }
    }

    /// Why `object` cannot be a product image (the upload policy should have kept it out; this
    /// holds even for an object written some other way): `None` when it can.
    pub fn refusal(&self, object: &StoredObject) -> Option<String> {
        if object.size == 0 || object.size > self.inner.max_bytes {
            return Some(format!(
                "the uploaded object has {} bytes; images have 1 to {}",
                object.size, self.inner.max_bytes
            ));
        }
        let content_type = object.content_type.as_deref().unwrap_or_default();
        if !CONTENT_TYPES.contains(&content_type) {
            return Some(format!(
                "the uploaded object is of type {content_type:?}; images are {}",
                CONTENT_TYPES.join(", ")
            ));
        }
        None
    }

    /// Where to download the object under `key`: the CDN's URL, or a presigned GET.
    pub async fn url(&self, key: &str) -> Result<String> {
        if let Some(cdn) = &self.inner.cdn {
            return Ok(format!("{cdn}/{key}"));
        }
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let step = since_epoch - since_epoch % DOWNLOAD_STEP.as_secs();
        if let Some(url) = self.kept_urls().get(step, key) {
            return Ok(url);
        }
        let start = UNIX_EPOCH + Duration::from_secs(step);
        let presign_error = |detail: String| ImageError::Presign {
            key: key.to_owned(),
            detail,
        };
        let config = PresigningConfig::builder()
            .start_time(start)
            .expires_in(DOWNLOAD_VALIDITY)
            .build()
            .map_err(|e| presign_error(DisplayErrorContext(&e).to_string()))?;
        let request = self
            .inner
            .client
            .get_object()
            .bucket(&self.inner.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| presign_error(DisplayErrorContext(&e).to_string()))?;
        let url = request.uri().to_owned();
        self.kept_urls().keep(step, key, &url);
        Ok(url)
    }

    fn kept_urls(&self) -> std::sync::MutexGuard<'_, KeptUrls> {
        // The map is consistent after any panic (one insert or clear at a time).
        self.inner
            .urls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets `imageUrl` of each product with an image. A URL that cannot be made is left null
    /// (and logged): a product read does not fail for its image.
    pub async fn fill_urls(&self, products: &mut [Product]) {
        for product in products {
            let Some(key) = &product.image_key else {
                continue;
            };
            match self.url(key).await {
                Ok(url) => product.image_url = Some(url),
                Err(error) => {
                    tracing::warn!(%error, product = %product.id, "no image URL for a product");
                }
            }
        }
    }
}

/// The presigned URLs of one step, by key.
#[derive(Debug, Default)]
struct KeptUrls {
    step: u64,
    by_key: HashMap<String, String>,
}

impl KeptUrls {
    fn get(&self, step: u64, key: &str) -> Option<String> {
        (self.step == step)
            .then(|| self.by_key.get(key).cloned())
            .flatten()
    }

    fn keep(&mut self, step: u64, key: &str, url: &str) {
        if self.step != step {
            self.step = step;
            self.by_key.clear();
        }
        if self.by_key.len() < MAX_KEPT_URLS {
            self.by_key.insert(key.to_owned(), url.to_owned());
        }
    }
}

/// Whether `key` is one [`Images::upload`] issued for `product`: `products/{product}/{uuid}`,
/// exactly. Keys are the server's choice, so an image uploaded for one product cannot be attached
/// to another.
pub fn issued_for(key: &str, product: Uuid) -> bool {
    key.strip_prefix(&format!("products/{product}/"))
        .is_some_and(|rest| Uuid::try_parse(rest).is_ok_and(|id| id.to_string() == rest))
}

fn lasts(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry > now + UPLOAD_WINDOW + CREDENTIALS_MARGIN)
}

fn parse_endpoint(endpoint: &str) -> Result<Url, SetupError> {
    match Url::parse(endpoint) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.username().is_empty()
                && url.password().is_none()
                && url.path() == "/"
                && url.query().is_none() =>
        {
            Ok(url)
        }
        _ => Err(SetupError::Endpoint),
    }
}

/// S3's bucket naming rules, the parts that matter for URLs.
fn valid_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

/// Where browsers post upload forms: the bucket's URL, path style (`endpoint/bucket`) or virtual
/// hosted (`bucket.endpoint`), as the SDK addresses it. On AWS a bucket with dots goes path
/// style, as with the SDK: `a.b.s3...` would not match the certificate's `*.s3...`.
pub fn upload_url(endpoint: Option<&Url>, bucket: &str, region: &str, path_style: bool) -> String {
    match endpoint {
        Some(endpoint) => {
            let base = endpoint.as_str().trim_end_matches('/');
            if path_style {
                return format!("{base}/{bucket}");
            }
            let mut url = endpoint.clone();
            let host = format!("{bucket}.{}", endpoint.host_str().unwrap_or_default());
            if url.set_host(Some(&host)).is_err() {
                return format!("{base}/{bucket}");
            }
            url.as_str().trim_end_matches('/').to_owned()
        }
        None => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            if path_style || bucket.contains('.') {
                format!("https://s3.{region}.{suffix}/{bucket}")
            } else {
                format!("https://{bucket}.s3.{region}.{suffix}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_issued_for_the_product_are_its_own() {
        let product = Uuid::new_v4();
        let image = Uuid::new_v4();
        assert!(issued_for(&format!("products/{product}/{image}"), product));
        assert!(!issued_for(
            &format!("products/{}/{image}", Uuid::new_v4()),
            product
        ));
        for key in [
            format!("products/{product}/"),
            format!("products/{product}/{image}/x"),
            format!("products/{product}/../{image}"),
            format!("products/{product}/{}", image.simple()),
            format!("products/{product}/{}", image.to_string().to_uppercase()),
            format!("other/{product}/{image}"),
            format!("/products/{product}/{image}"),
        ] {
            assert!(!issued_for(&key, product), "{key}");
        }
    }

    #[test]
    fn upload_urls_address_the_bucket_as_the_sdk_does() {
        let local = Url::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            upload_url(Some(&local), "images", "us-east-1", true),
            "http://127.0.0.1:9000/images"
        );
        let minio = Url::parse("https://minio.example.test/").unwrap();
        assert_eq!(
            upload_url(Some(&minio), "images", "us-east-1", false),
            "https://images.minio.example.test"
        );
        assert_eq!(
            upload_url(None, "images", "eu-west-1", false),
            "https://images.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            upload_url(None, "shop.images", "eu-west-1", false),
            "https://s3.eu-west-1.amazonaws.com/shop.images"
        );
        assert_eq!(
            upload_url(None, "images", "cn-north-1", false),
            "https://images.s3.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn endpoints_and_buckets_are_checked() {
        assert!(parse_endpoint("http://127.0.0.1:9000").is_ok());
        assert!(parse_endpoint("https://s3.example.test/").is_ok());
        for bad in [
            "127.0.0.1:9000",
            "ftp://host",
            "http://user:pass@host",
            "http://host/prefix",
            "http://host/?x=1",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        assert!(valid_bucket("shop-images.v1"));
        for bad in ["ab", "Shop", "shop_images", "a/b", &"x".repeat(64)] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_kept_for_their_step_only() {
        let mut kept = KeptUrls::default();
        kept.keep(600, "a", "url-a");
        assert_eq!(kept.get(600, "a").as_deref(), Some("url-a"));
        assert_eq!(kept.get(600, "b"), None);
        assert_eq!(kept.get(1200, "a"), None);
        kept.keep(1200, "b", "url-b");
        assert_eq!(kept.get(1200, "a"), None);
        assert_eq!(kept.by_key.len(), 1);
    }

    #[test]
    fn temporary_credentials_are_renewed_before_they_outlive_a_form() {
        let now = SystemTime::now();
        let with_expiry = |minutes: u64| {
            Credentials::new(
                "id",
                "secret",
                Some("token".to_owned()),
                Some(now + Duration::from_secs(minutes * 60)),
                "test",
            )
        };
        assert!(lasts(
            &Credentials::new("id", "secret", None, None, "test"),
            now
        ));
        assert!(lasts(&with_expiry(60), now));
        assert!(!lasts(&with_expiry(20), now));
    }
}
