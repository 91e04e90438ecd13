//! The order state machine: `pending -> paid -> shipped`, and `cancelled` from `pending` or
//! `paid`. `shipped` and `cancelled` are final.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "paid" => Some(Self::Paid),
            "shipped" => Some(Self::Shipped),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }

    pub fn can_become(self, next: OrderStatus) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Paid)
                | (Self::Paid, Self::Shipped)
                | (Self::Pending | Self::Paid, Self::Cancelled)
        )
    }
}

/// The actions a client can take on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pay,
    Ship,
    Cancel,
}

impl Action {
    pub fn target(self) -> OrderStatus {
        match self {
            Self::Pay => OrderStatus::Paid,
            Self::Ship => OrderStatus::Shipped,
            Self::Cancel => OrderStatus::Cancelled,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Self::Pay => "pay",
            Self::Ship => "ship",
            Self::Cancel => "cancel",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn transitions() {
        let all = [Pending, Paid, Shipped, Cancelled];
        let allowed: Vec<(OrderStatus, OrderStatus)> = all
            .iter()
            .flat_map(|from| all.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Pending, Paid),
                (Pending, Cancelled),
                (Paid, Shipped),
                (Paid, Cancelled)
            ]
        );
        for status in all {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
    }
}
