"""
The lab: booted systemd-nspawn hosts on a private bridge, driven by a real
salt-master, for the integration tests, the demo and the benchmarks.

Modules, one job each:

- ``paths``: where the lab keeps its cache and state, its subnet and names;
- ``network``: the bridge, the guard route, host links;
- ``image``: the cached base image and local apt repository;
- ``hosts``: booting, stopping, killing and entering hosts;
- ``master``: the salt-master and the Salt CLIs against it;
- ``cli``: the ``bin/lab`` command line.
"""
