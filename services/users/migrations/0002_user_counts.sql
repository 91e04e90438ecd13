-- Exact list totals without counting rows: `GET /v1/users` reports `meta.total`, and count(*)
-- over the whole table on every page request costs O(users). Triggers keep one row per status.
-- (TRUNCATE bypasses the triggers; use DELETE.)
CREATE TABLE user_counts (
    status TEXT PRIMARY KEY,
    total  BIGINT NOT NULL CHECK (total >= 0)
);
INSERT INTO user_counts (status, total)
SELECT s.status, count(u.id)
FROM (VALUES ('active'), ('inactive'), ('pending')) AS s (status)
LEFT JOIN users u ON u.status = s.status
GROUP BY s.status;

CREATE FUNCTION users_maintain_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE user_counts SET total = total + 1 WHERE status = NEW.status;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE user_counts SET total = total - 1 WHERE status = OLD.status;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        -- Lock both rows in one fixed order so opposite status changes cannot deadlock.
        PERFORM 1 FROM user_counts WHERE status IN (OLD.status, NEW.status) ORDER BY status FOR UPDATE;
        UPDATE user_counts SET total = total - 1 WHERE status = OLD.status;
        UPDATE user_counts SET total = total + 1 WHERE status = NEW.status;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_counts
AFTER INSERT OR DELETE OR UPDATE OF status ON users
FOR EACH ROW EXECUTE FUNCTION users_maintain_counts();
