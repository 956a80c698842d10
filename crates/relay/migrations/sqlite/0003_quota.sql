-- What the quota coordinator (quota.rs) handed out: a sliding log of WHOOP's app-wide request
-- budget, shared by every relay node on one database. Rows older than a day are pruned.
CREATE TABLE quota_grants (
    granted_at BIGINT NOT NULL,
    requests   INTEGER NOT NULL,
    priority   TEXT NOT NULL
);
CREATE INDEX quota_grants_at ON quota_grants (granted_at);
