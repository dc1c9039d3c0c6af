# -*- coding: utf-8 -*-
# vim: ft=sls
# The formula's execution, state and beacon modules (_modules, _states,
# _beacons) on the minion. Only those kinds: sync_all also walks a dozen kinds
# this formula does not ship (about 8 s against about 2 s here). Reports a
# change only when a module was new or changed.
pgfailover-sync-execution-modules:
  saltutil.sync_modules:
    - refresh: False

pgfailover-sync-beacon-modules:
  saltutil.sync_beacons:
    - refresh: False
    - require:
      - saltutil: pgfailover-sync-execution-modules

pgfailover-sync-state-modules:
  saltutil.sync_states:
    - refresh: True
    - require:
      - saltutil: pgfailover-sync-beacon-modules
