//! Product images in S3-compatible object storage.

pub mod post_policy;
