# The lab's demo cluster: a monitor and three nodes on the lab's hosts,
# packages from the lab's local repository. Test passwords only.
pgfailover:
  repo:
    kind: url
    url: file:/srv/lab-apt
    suite: ./
    trusted: true
  formation: default
  dbname: appdb
  auth: scram-sha-256
  ssl:
    mode: self-signed
  monitor:
    minion: mon
    port: 5431
  nodes:
    - name: pg1
    - name: pg2
    - name: pg3
  number_sync_standbys: 1
  app:
    owner: app
    cidrs:
      - 10.147.0.0/24
  postgresql:
    settings:
      shared_buffers: 128MB
  passwords:
    autoctl_node: lab-autoctl-node-Ae3r
    replicator: lab-replicator-Ue7w
    monitor: lab-monitor-Qo2x
    app: lab-app-Zi8v
# Every host watches its node's state (the monitor's host has none: quiet).
beacons:
  pgfailover:
    - interval: 1
