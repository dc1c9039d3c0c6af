# kitchen suite single-host: monitor, primary and secondary on one minion.
# The minion id in kitchen is the suite's instance name.
pgfailover:
  dbname: appdb
  auth: scram-sha-256
  ssl:
    mode: self-signed
  monitor:
    minion: single-host-debian-12
    hostname: localhost
    port: 5431
  nodes:
    - name: node1
      minion: single-host-debian-12
      hostname: localhost
      port: 5432
    - name: node2
      minion: single-host-debian-12
      hostname: localhost
      port: 5433
  app:
    owner: app
    cidrs:
      - 127.0.0.1/32
  postgresql:
    settings:
      shared_buffers: 64MB
  passwords:
    autoctl_node: kitchen-autoctl-node
    replicator: kitchen-replicator
    monitor: kitchen-monitor
    app: kitchen-app-Wq4e
