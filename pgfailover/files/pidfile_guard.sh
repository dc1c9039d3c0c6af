#!/bin/sh
# Managed by Salt (pgfailover): ExecStartPre of the pg_auto_failover units.
#
# Usage: pidfile-guard PGDATA
#
# A power cut leaves PGDATA/postmaster.pid behind. After the boot, PIDs start
# low again and in nearly the same order, so the PID in that file may now be
# one of the service user's own processes (the keeper, a PostgreSQL child).
# pg_autoctl then takes PostgreSQL for running and waits for it to stop,
# forever, and PostgreSQL refuses to start ("lock file "postmaster.pid" already
# exists"). The file is removed unless its PID is a postgres process working
# in PGDATA; the unit's own processes are not running yet when this runs.
set -eu

pgdata=${1:?usage: pidfile-guard PGDATA}
pidfile="$pgdata/postmaster.pid"
[ -f "$pidfile" ] || exit 0

# A standalone backend writes its PID negated.
pid=$(head -n 1 "$pidfile" | tr -d ' -')
case "$pid" in
'' | *[!0-9]*)
    owner="no PID in it"
    ;;
*)
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    if [ "$comm" = postgres ] && [ "$cwd" = "$(readlink -f "$pgdata")" ]; then
        exit 0
    fi
    owner="PID $pid is ${comm:-not running}"
    ;;
esac

rm -f "$pidfile"
echo "pidfile-guard: removed stale $pidfile ($owner)"
