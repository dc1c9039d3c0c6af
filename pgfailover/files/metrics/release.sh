#!/bin/sh
# Managed by Salt (pgfailover): the service pgfailover-metrics-release-ID.
#
# Usage: metrics-release PGDATA ROLE
#
# A smart shutdown (SIGTERM to the postmaster) refuses new sessions and waits
# for the open ones to end. pg_autoctl ends that way the crash recovery it runs
# before pg_rewind on a killed old primary. The exporter keeps its sessions
# open between scrapes and busy at every scrape, so they would hold that
# shutdown, and keep the node out of its cluster, for good. Once a second this
# reads the postmaster's status in PGDATA/postmaster.pid; while it says
# "stopping", the sessions of ROLE (the metrics role) are ended as
# pg_terminate_backend() would, and no other. The exporter cannot connect again
# before PostgreSQL is up again. (A path unit on postmaster.pid was tried: it
# misses changes made while its service runs, and it missed a node's second
# shutdown on the lab; hence the poll.)
set -u

pgdata=${1:?usage: metrics-release PGDATA ROLE}
role=${2:?usage: metrics-release PGDATA ROLE}
pidfile="$pgdata/postmaster.pid"

# Sets postmaster to the postmaster's PID if postmaster.pid says it is
# stopping (line 1: the PID, line 8: the status), else to nothing; shell
# builtins only, no process started.
read_stopping_postmaster() {
    postmaster=""
    [ -r "$pidfile" ] || return 0
    {
        read -r pid && read -r _ && read -r _ && read -r _ && read -r _ && read -r _ && read -r _ &&
            read -r status
    } <"$pidfile" 2>/dev/null || return 0
    if [ "$status" = stopping ]; then
        postmaster=${pid#-}
    fi
}

# The postmaster's children whose process title names ROLE, in either form:
# "postgres: ROLE DB ..." or "postgres: CLUSTER_NAME: ROLE DB ...".
sessions_of_role() {
    for status in /proc/[0-9]*/status; do
        dir=${status%/status}
        ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "$status" 2>/dev/null) || continue
        [ "$ppid" = "$1" ] || continue
        title=$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null) || continue
        case "$title" in
        "postgres: $role "* | "postgres: "*": $role "*) echo "${dir#/proc/}" ;;
        esac
    done
}

while :; do
    read_stopping_postmaster
    if [ -n "$postmaster" ]; then
        ended=""
        for pid in $(sessions_of_role "$postmaster"); do
            kill -TERM "$pid" 2>/dev/null && ended="$ended $pid"
        done
        if [ -n "$ended" ]; then
            echo "metrics-release: ended the sessions of $role (PID$ended) holding the shutdown of $pgdata"
        fi
    fi
    sleep 1
done
