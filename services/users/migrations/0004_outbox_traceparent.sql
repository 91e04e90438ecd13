-- The W3C traceparent of the request that recorded the event (NULL while tracing is off): the
-- relay puts it in the Kafka message's headers, so the consumer continues the request's trace.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
