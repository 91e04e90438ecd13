-- Roles a user's tokens carry (the gateway and the services authorize on them). Sign-up never
-- sets any; only an administrator changes them, and the first administrator is created from the
-- platform's admin Secret at start-up.
ALTER TABLE users ADD COLUMN roles TEXT[] NOT NULL DEFAULT '{}';
