# The lab's stand-in for OS patching in a rolling maintenance window: it
# records the node's own state while the work runs (maintenance is expected).
{%- set node = salt['pgfailover.state'](local=True) %}

lab-patch-marker:
  file.managed:
    - name: /var/tmp/pgfailover-rolling-patch
    - contents: "{{ node.nodename }} {{ node.current_group_state }}"
