-- calsync:no-transaction
-- Schema v10: one index holds due_at, the per-provider claim index of migration 009.
--
-- Every completion moves due_at, so it is never a heap-only update and writes an entry into
-- every index of the table. Migration 001's due index and 006's poll index served the claim
-- across providers, which now scans 009's (provider_id, due_at) index once per provider too;
-- dropping them takes two of five index writes out of each completion. DROP INDEX
-- CONCURRENTLY waits for running transactions instead of blocking claims and webhooks behind an
-- exclusive lock, and IF EXISTS makes a rerun after an interruption safe.
drop index concurrently if exists external_calendar_connections_due_idx;
drop index concurrently if exists external_calendar_connections_poll_idx;
