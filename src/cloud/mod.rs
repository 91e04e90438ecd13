//! Data stores outside the cluster. `aws`: RDS, ElastiCache and MSK through aws-sdk-rust.

pub mod aws;
