//! Resources and request bodies of the orders API.

use chrono::{DateTime, Utc};
use panthera_kit::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::status::OrderStatus;

pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i32 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: Uuid,
    pub quantity: i32,
    /// Catalog price when the order was placed, in minor units.
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewItem {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// `POST /v1/orders`; send an `Idempotency-Key` header to make retries safe.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrder {
    /// The caller's own id (the default); another customer's is refused (403) unless the caller
    /// is an administrator.
    #[serde(default)]
    pub customer_id: Option<Uuid>,
    pub items: Vec<NewItem>,
}

impl CreateOrder {
    /// Keeps the client's item order, so that errors reported by the catalog (`items[1]...`) point
    /// at the client's items.
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.items.is_empty() {
            errors.push(FieldError::new("items", "must contain at least one item"));
        }
        if self.items.len() > MAX_ITEMS {
            errors.push(FieldError::new(
                "items",
                format!("must contain at most {MAX_ITEMS} items"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, item) in self.items.iter().enumerate() {
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                errors.push(FieldError::new(
                    format!("items[{index}].quantity"),
                    format!("must be between 1 and {MAX_QUANTITY}"),
                ));
            }
            if !seen.insert(item.product_id) {
                errors.push(FieldError::new(
                    format!("items[{index}].productId"),
                    "is listed twice",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(self)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
    pub status: Option<OrderStatus>,
    pub customer_id: Option<Uuid>,
}
