/** @module The CLI's usage text. */

/** Printed for `--help` and, on stderr, after a usage error. */
export const USAGE = `calsync: mirror Google and Microsoft calendars into PostgreSQL

Usage:
  calsync [serve]                                  run the daemon (HTTP + scheduler)
  calsync migrate                                  apply database migrations and exit
  calsync healthcheck                              exit 0 when this host's daemon answers /healthz
  calsync providers add --kind google|microsoft --name NAME [--allowlisted]
  calsync providers list
  calsync providers allowlist --provider NAME|ID [--off]
  calsync accounts connect --provider NAME [--calendars all|primary|none]
                                                   print the consent URL, wait for the callback
  calsync accounts list
  calsync accounts remove --account ID             stop channels, remove with its connections
  calsync calendars list --account ID              the account's calendars (discovery)
  calsync connections add --account ID --calendar ID|primary|all
  calsync connections add --provider NAME|ID --calendar EXTERNAL_CALENDAR_ID
                          --refresh-token-file PATH|- [--label LABEL]
  calsync connections list
  calsync connections reauth --connection ID --refresh-token-file PATH|-
  calsync connections remove --connection ID
  calsync connections rotate-keys                  re-encrypt stored secrets with the current key
  calsync connections release-deletions --connection ID [--discard]
                                                   apply (or drop) deletions the guard held
  calsync sync --connection ID [--force] [--full]  request a sync now (--force ignores backoff and
                                                   leaves calendar_unavailable/disabled/
                                                   reauth_required, --full ignores the cursor)
  calsync status [--connection ID] [--provider NAME|ID]
  calsync events --connection ID --from ISO --to ISO [--zone IANA]
                                                   the occurrences in [from, to) by start;
                                                   all-day events by their dates in --zone
  calsync changes [--after SEQ] [--follow]         the change feed after SEQ (default 0), one
                                                   change a line; --follow waits for more
  calsync subscribers add --url URL [--connection ID|--account ID] [--secret S] [--from SEQ]
  calsync subscribers list
  calsync subscribers remove|pause|resume --subscriber ID
  calsync subscribers replay --subscriber ID --from SEQ|--since ISO
  calsync subscribers rotate-secret --subscriber ID [--secret S]
  calsync drill [--scenario NAME] [--provider KIND] [--out DIR] [--keep]

Options:
  --json      print JSON instead of text
  --help      show this help

Configuration comes from environment variables; see README.md.
Exit codes: 0 ok, 1 failure (e.g. database unreachable), 2 bad arguments or configuration.
`;
