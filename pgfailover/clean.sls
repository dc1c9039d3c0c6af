# -*- coding: utf-8 -*-
# vim: ft=sls
# Uninstall (the playbook's `make uninstall`): HAProxy, the backup timers and
# pgBackRest's access, the metrics exporters and the health endpoints first, then nodes dropped
# from the monitor, then the monitor, the service user's files, the packages.
# Data directories and the backup repository stay unless
# pgfailover:clean:remove_data is true.
include:
  - .haproxy.clean
  - .backup.clean
  - .metrics.clean
  - .health.clean
  - .node.clean
  - .monitor.clean
  - .config.clean
  - .package.clean
