//! Client spans for SQL statements, made from the event sqlx logs after each one
//! (target `sqlx::query`): one shared point for every query of every service, without wrapping
//! each call site.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Key, KeyValue};
use tracing::field::{Field, Visit};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The `tracing` target sqlx logs statements under.
pub const SQLX_TARGET: &str = "sqlx::query";

/// Turns sqlx's statement events into `db.system=postgresql` client spans, children of the
/// span current when the statement ran; statements outside any recorded span (the relay's and
/// the consumer's polls) make none, so idle loops do not fill the trace store.
///
/// sqlx logs statements at DEBUG (slow ones at WARN): filter this layer on [`SQLX_TARGET`] at
/// DEBUG for it to see them.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqlSpans;

#[derive(Default)]
struct Statement {
    /// The whole statement; sqlx leaves it empty when the summary already is the whole of it.
    sql: Option<String>,
    summary: Option<String>,
    elapsed: Option<f64>,
    rows_affected: Option<u64>,
    rows_returned: Option<u64>,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "db.statement" if !value.is_empty() => self.sql = Some(value.to_owned()),
            "summary" => self.summary = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = Some(value),
            "rows_returned" => self.rows_returned = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

/// The operation and the table a statement names (`SELECT`, `orders`), for the span name.
pub fn operation_and_table(sql: &str) -> (String, Option<String>) {
    let mut words = sql.split_whitespace();
    let operation = words.next().unwrap_or("SQL").to_ascii_uppercase();
    let mut previous = String::new();
    for word in words {
        if matches!(previous.as_str(), "FROM" | "INTO" | "UPDATE") {
            let table = word.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'));
            if !table.is_empty() {
                return (operation, Some(table.to_owned()));
            }
        }
        previous = word.to_ascii_uppercase();
    }
    if operation == "UPDATE" {
        let table = sql.split_whitespace().nth(1).map(str::to_owned);
        return (operation, table);
    }
    (operation, None)
}

impl<S: tracing::Subscriber> Layer<S> for SqlSpans {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != SQLX_TARGET {
            return;
        }
        let Some(tracer) = super::TRACER.get() else {
            return;
        };
        let parent = tracing::Span::current().context();
        // Outside a recorded span, or in a trace not sampled, the span would be dropped anyway.
        if !parent.span().span_context().is_sampled() {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        let Some(sql) = statement.sql.or(statement.summary) else {
            return;
        };
        let elapsed =
            Duration::try_from_secs_f64(statement.elapsed.unwrap_or(0.0)).unwrap_or(Duration::ZERO);
        let end = SystemTime::now();
        let start = end.checked_sub(elapsed).unwrap_or(end);
        let (operation, table) = operation_and_table(&sql);
        let name = match &table {
            Some(table) => format!("{operation} {table}"),
            None => operation.clone(),
        };
        let mut attributes = vec![
            KeyValue::new("db.system", "postgresql"),
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.operation", operation.clone()),
            KeyValue::new("db.operation.name", operation),
            // The statement's text with its $n placeholders: bound values are never in it.
            KeyValue::new("db.query.text", sql),
        ];
        if let Some(table) = table {
            attributes.push(KeyValue::new("db.collection.name", table));
        }
        for (key, rows) in [
            ("db.response.returned_rows", statement.rows_returned),
            ("panthera.db.rows_affected", statement.rows_affected),
        ] {
            if let Some(rows) = rows.and_then(|rows| i64::try_from(rows).ok()) {
                attributes.push(KeyValue::new(Key::from_static_str(key), rows));
            }
        }
        let mut span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        span.end_with_timestamp(end);
    }
}

#[cfg(test)]
mod tests {
    use super::operation_and_table;

    #[test]
    fn names_the_operation_and_the_table() {
        let cases = [
            (
                "SELECT id FROM orders WHERE id = $1",
                "SELECT",
                Some("orders"),
            ),
            (
                "insert into outbox (event_id) values ($1)",
                "INSERT",
                Some("outbox"),
            ),
            (
                "UPDATE products SET stock = stock - $1",
                "UPDATE",
                Some("products"),
            ),
            (
                "DELETE FROM catalog.reservations WHERE order_id = $1",
                "DELETE",
                Some("catalog.reservations"),
            ),
            ("SELECT pg_try_advisory_xact_lock($1)", "SELECT", None),
            ("BEGIN", "BEGIN", None),
        ];
        for (sql, operation, table) in cases {
            let (found_operation, found_table) = operation_and_table(sql);
            assert_eq!(found_operation, operation, "{sql}");
            assert_eq!(found_table.as_deref(), table, "{sql}");
        }
    }
}
