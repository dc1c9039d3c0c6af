#!/bin/sh
# The baseline the formula is measured against: the same cluster built by a
# plain pg_autoctl script, as the original playbook did it. Runs on one lab
# host; the benchmark calls it per step and host:
#   plain_cluster.sh install
#   plain_cluster.sh monitor MONITOR_HOST
#   plain_cluster.sh node NAME MONITOR_HOST
# Passwords are fixed test values; this script puts them on command lines,
# which is exactly what the formula avoids.
set -eu
step=$1
PG=/usr/lib/postgresql/15/bin
HOME_DIR=/var/lib/postgresql
RUN="runuser -u postgres -- env HOME=$HOME_DIR XDG_RUNTIME_DIR=/run/pgplain PATH=$PG:/usr/bin:/bin"
PW=bench-password

case "$step" in
install)
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/plain.conf
  echo "deb [trusted=yes] file:/srv/lab-apt ./" > /etc/apt/sources.list.d/plain.list
  apt-get update -q -o Dir::Etc::sourcelist=sources.list.d/plain.list -o Dir::Etc::sourceparts=- >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    postgresql-15 postgresql-client-15 postgresql-15-auto-failover pg-auto-failover-cli >/dev/null
  install -d -o postgres -g postgres -m 700 /run/pgplain
  printf '*:*:*:autoctl_node:%s\n*:*:*:pgautofailover_replicator:%s\n*:*:replication:pgautofailover_replicator:%s\n*:*:*:pgautofailover_monitor:%s\n' \
    $PW $PW $PW $PW > $HOME_DIR/.pgpass
  chown postgres: $HOME_DIR/.pgpass && chmod 600 $HOME_DIR/.pgpass
  ;;
monitor)
  $RUN pg_autoctl create monitor --pgdata $HOME_DIR/plain/monitor --pgctl $PG/pg_ctl --hostname "$2" \
    --pgport 5431 --auth scram-sha-256 --ssl-self-signed >/dev/null 2>&1
  $RUN pg_autoctl -q show systemd --pgdata $HOME_DIR/plain/monitor > /etc/systemd/system/pgplain.service
  sed -i "s|^\[Service\]|[Service]\nEnvironment=XDG_RUNTIME_DIR=/run/pgplain|" /etc/systemd/system/pgplain.service
  systemctl daemon-reload && systemctl enable --now pgplain >/dev/null 2>&1
  until $RUN psql -p 5431 -d postgres -Atc "ALTER ROLE autoctl_node PASSWORD '$PW'" >/dev/null 2>&1; do sleep 0.2; done
  ;;
node)
  $RUN pg_autoctl create postgres --pgdata "$HOME_DIR/plain/$2" --pgctl $PG/pg_ctl --hostname "$2" --name "$2" \
    --pgport 5432 --dbname appdb --auth scram-sha-256 --ssl-self-signed \
    --monitor "postgres://autoctl_node@$3:5431/pg_auto_failover?sslmode=require" >/dev/null 2>&1
  $RUN pg_autoctl -q show systemd --pgdata "$HOME_DIR/plain/$2" > /etc/systemd/system/pgplain.service
  sed -i "s|^\[Service\]|[Service]\nEnvironment=XDG_RUNTIME_DIR=/run/pgplain|" /etc/systemd/system/pgplain.service
  systemctl daemon-reload && systemctl enable --now pgplain >/dev/null 2>&1
  until $RUN psql -p 5432 -d postgres -Atc "SELECT 1" >/dev/null 2>&1; do sleep 0.2; done
  if [ "$($RUN psql -p 5432 -d postgres -Atc 'SELECT pg_is_in_recovery()')" = f ]; then
    $RUN psql -p 5432 -d postgres -Atc "ALTER ROLE pgautofailover_replicator PASSWORD '$PW'" >/dev/null
    $RUN psql -p 5432 -d postgres -Atc "ALTER ROLE pgautofailover_monitor PASSWORD '$PW'" >/dev/null
  fi
  ;;
converged)
  # On the monitor: until every node is healthy and at its assigned state.
  until $RUN pg_autoctl show state --pgdata $HOME_DIR/plain/monitor --json 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)
sys.exit(0 if len(nodes) == int(sys.argv[1]) and all(
    n["health"] == 1 and n["current_group_state"] == n["assigned_group_state"] for n in nodes) else 1)' "$2"
  do sleep 0.5; done
  ;;
esac
