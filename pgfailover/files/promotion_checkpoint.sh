#!/bin/sh
# Managed by Salt (pgfailover). Usage: promotion-checkpoint PSQL PORT
#
# After a promotion PostgreSQL spreads its first checkpoint on the new
# timeline over minutes (checkpoint_completion_target of checkpoint_timeout).
# Until it ends, pg_control still names the old timeline, and pg_autoctl
# reports that timeline to the monitor: a failover in that window can wedge
# in fast_forward (see the formula's known issues). Every 2 s: on a primary
# whose last checkpoint is on an older timeline than its WAL, CHECKPOINT.
set -u
psql=$1
port=$2
late="SELECT CASE WHEN pg_is_in_recovery() THEN false
  ELSE c.timeline_id <> ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
  END FROM pg_control_checkpoint() AS c"
while sleep 2; do
    if [ "$("$psql" -X -At -p "$port" -d postgres -c "$late" 2>/dev/null)" = t ]; then
        "$psql" -X -q -p "$port" -d postgres -c CHECKPOINT \
            && echo "checkpoint after a promotion: pg_control names the new timeline"
    fi
done
