-- A request for a full sync (Graph `missed` lifecycle event, `calsync sync --full`) must survive a
-- sync that is running when it arrives: that sync would store its incremental cursor on commit.
-- The request records the request counter it belongs to; a sync claimed at or after that value
-- runs a full sync, and its commit clears the request only if no newer one arrived meanwhile.
alter table external_calendar_connections add column full_sync_requested_seq bigint;
