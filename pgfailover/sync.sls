# -*- coding: utf-8 -*-
# vim: ft=sls
# The formula's execution and state modules (_modules, _states) on the minion.
# Reports a change only when a module was new or changed.
pgfailover-sync-modules:
  saltutil.sync_all:
    - refresh: True
