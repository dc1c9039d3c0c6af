"""
Unit tests of the state module (_states/pgfailover.py): what each state
reports in test mode, that a second run changes nothing, and its error paths.
The execution module is replaced by a small stateful stand-in (``Host``):
every state's real behaviour against pg_autoctl is covered by
test/functional/test_states.py; here are the answers that are hard to produce
for real (a host not built yet, a module that raises, a dry run).
"""

import pytest
from salt.exceptions import CommandExecutionError

from helpers.source import load

states = load("_states/pgfailover.py", "pgfailover_states")

CONN = {"pgdata": "/var/lib/postgresql/pgaf/monitor"}
SETTINGS = {"health_check_period": 5000, "primary_demote_timeout": 30000}


def node(name, assigned, quorum=True):
    return {
        "nodename": name,
        "assigned_group_state": assigned,
        "current_group_state": assigned,
        "replication_quorum": quorum,
        "health": 1,
    }


class Host:
    """The execution module's functions the states call, over a monitor and a node kept in memory."""

    def __init__(self):
        self.created = True
        self.formations = {"default": {"kind": "pgsql", "dbname": "appdb", "number_sync_standbys": 0}}
        self.settings = dict(SETTINGS)
        self.config = {"timeout.network_partition_timeout": "20"}
        self.table = [node("pg1", "primary"), node("pg2", "secondary"), node("pg3", "secondary")]
        self.members = {}  # formation other than default -> its state table
        self.standby = False
        self.roles = {}  # name -> password
        self.owners = {"appdb": "postgres"}
        self.restart_needed = set()  # settings whose change needs a restart
        self.reloads = 0
        self.failing = {}  # function name -> message of the CommandExecutionError it raises
        self.calls = []

    def functions(self):
        names = (
            "is_created", "formation", "create_formation", "set_number_sync_standbys", "monitor_settings",
            "set_monitor_settings", "config_get", "config_set", "wait_postgres", "reload_service", "state",
            "is_converged", "wait_converged", "format_state_table", "drop_node", "in_recovery", "role",
            "role_password_matches", "set_role_password", "database_owner", "set_database_owner",
            "drop_formation", "enable_maintenance", "disable_maintenance", "wait_monitor", "wait_for_primary",
            "wait_node_state", "apply_settings", "reload_postgres",
        )  # fmt: skip
        return {f"pgfailover.{name}": self._recorded(name) for name in names}

    def _recorded(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            if name in self.failing:
                raise CommandExecutionError(self.failing[name])
            return getattr(self, name)(*args, **kwargs)

        return call

    def is_created(self, **conn):
        return self.created

    def formation(self, name, **conn):
        return dict(self.formations[name]) if name in self.formations else None

    def create_formation(self, name, kind="pgsql", dbname="postgres", **conn):
        self.formations[name] = {"kind": kind, "dbname": dbname, "number_sync_standbys": 0}

    def set_number_sync_standbys(self, number, formation=None, **conn):
        self.formations[formation]["number_sync_standbys"] = int(number)

    def monitor_settings(self, **conn):
        return dict(self.settings)

    def set_monitor_settings(self, settings, **conn):
        self.settings.update(settings)

    def config_get(self, key=None, **conn):
        return self.config.get(key) if key else dict(self.config)

    def config_set(self, key, value, **conn):
        self.config[key] = str(value)

    def wait_postgres(self, timeout=60, **conn):
        return True

    def reload_service(self, **conn):
        return True

    def state(self, formation=None, **conn):
        table = self.table if formation in (None, "default") else self.members.get(formation, [])
        return [dict(entry) for entry in table]

    def drop_formation(self, name, **conn):
        del self.formations[name]

    def is_converged(self, nodes):
        return all(n["current_group_state"] == n["assigned_group_state"] and n["health"] == 1 for n in nodes)

    def wait_converged(self, timeout=120, formation=None, expect_nodes=None, **conn):
        return self.state()

    def format_state_table(self, nodes):
        return "; ".join(f"{n['nodename']} {n['current_group_state']}" for n in nodes)

    def drop_node(self, destroy=False, formation=None, **conn):
        self.table = [n for n in self.table if n["nodename"] != "pg3"]

    def enable_maintenance(self, allow_failover=False, **conn):
        entry = next(n for n in self.table if n["nodename"] == "pg2")
        entry["assigned_group_state"] = entry["current_group_state"] = "maintenance"

    def disable_maintenance(self, **conn):
        entry = next(n for n in self.table if n["nodename"] == "pg2")
        entry["assigned_group_state"] = "catchingup"

    def wait_monitor(self, timeout=60, formation=None, **conn):
        return conn["monitor_uri"]

    def wait_for_primary(self, timeout=60, formation=None, sslmode="require", sslrootcert=None, **conn):
        return "pg1"

    def wait_node_state(self, name, wanted, timeout=120, formation=None, **conn):
        return next(n for n in self.table if n["nodename"] == name)

    def apply_settings(self, unit, names=None, **conn):
        return [name for name in names or () if name in self.restart_needed]

    def reload_postgres(self, **conn):
        self.reloads += 1

    def in_recovery(self, **conn):
        return self.standby

    def role(self, name, **conn):
        return {"name": name} if name in self.roles else None

    def role_password_matches(self, name, password, **conn):
        return self.roles.get(name) == password

    def set_role_password(self, name, password, create=False, **conn):
        self.roles[name] = password

    def database_owner(self, dbname, **conn):
        return self.owners.get(dbname)

    def set_database_owner(self, dbname, owner, **conn):
        self.owners[dbname] = owner


class LoadedModules(dict):
    """__salt__ as the loader gives it: a mapping that also says why a module did not load."""

    def __init__(self, functions, missing=None):
        super().__init__(functions)
        self.missing_modules = missing or {}


@pytest.fixture
def host():
    return Host()


PASSWORD = "lab-app-Zi8v-unit"


@pytest.fixture
def opts(monkeypatch, host):
    """The loader's dunders for the state module; ``opts['test']`` switches test mode."""
    options = {"test": False}
    monkeypatch.setattr(states, "__salt__", LoadedModules(host.functions()), raising=False)
    monkeypatch.setattr(states, "__opts__", options, raising=False)
    monkeypatch.setattr(states, "__pillar__", {"pgfailover": {"passwords": {"app": PASSWORD}}}, raising=False)
    return options


@pytest.fixture
def bare_host(monkeypatch):
    """A host where the execution module did not load: pg_autoctl is not installed."""
    why = {"pgfailover": "pgfailover: pg_autoctl not found at /usr/bin/pg_autoctl"}
    monkeypatch.setattr(states, "__salt__", LoadedModules({}, why), raising=False)
    options = {"test": False}
    monkeypatch.setattr(states, "__opts__", options, raising=False)
    return options


def test_formation_present_predicts_then_creates_then_changes_nothing(host, opts):
    opts["test"] = True
    predicted = states.formation_present("billing", dbname="billing", number_sync_standbys=1, **CONN)
    assert predicted["result"] is None and "would be created" in predicted["comment"]
    assert predicted["changes"]["formation"]["new"] == {"kind": "pgsql", "dbname": "billing"}
    assert "billing" not in host.formations  # test mode changed nothing
    opts["test"] = False
    applied = states.formation_present("billing", dbname="billing", number_sync_standbys=1, **CONN)
    assert applied["result"] is True and set(applied["changes"]) == {"formation", "number_sync_standbys"}
    assert host.formations["billing"] == {"kind": "pgsql", "dbname": "billing", "number_sync_standbys": 1}
    again = states.formation_present("billing", dbname="billing", number_sync_standbys=1, **CONN)
    assert again == {
        "name": "billing",
        "changes": {},
        "result": True,
        "comment": "Formation billing is as asked.",
    }


def test_formation_present_refuses_a_dbname_that_cannot_change(host, opts):
    ret = states.formation_present("default", dbname="otherdb", **CONN)
    assert ret["result"] is False and ret["changes"] == {}
    assert "dbname=appdb where the state asks kind=pgsql, dbname=otherdb" in ret["comment"]


def test_formation_present_reports_the_modules_error_and_no_changes(host, opts):
    host.failing["set_number_sync_standbys"] = "the monitor refused: not enough standbys"
    ret = states.formation_present("default", dbname="appdb", number_sync_standbys=2, **CONN)
    assert ret["result"] is False and ret["changes"] == {}
    assert "could not be checked or set: the monitor refused: not enough standbys" in ret["comment"]


def test_monitor_settings_sets_what_differs_once(host, opts):
    wanted = {"health_check_period": 1000, "primary_demote_timeout": 30000}
    opts["test"] = True
    predicted = states.monitor_settings("fast", wanted, **CONN)
    assert predicted["result"] is None
    assert predicted["changes"] == {"health_check_period": {"old": 5000, "new": 1000}}
    assert host.settings == SETTINGS
    opts["test"] = False
    assert states.monitor_settings("fast", wanted, **CONN)["changes"] == predicted["changes"]
    again = states.monitor_settings("fast", wanted, **CONN)
    assert again["changes"] == {} and again["result"] is True


def test_monitor_settings_with_increase_only_never_lowers(host, opts):
    ret = states.monitor_settings(
        "raise-first",
        {"primary_demote_timeout": 3500, "health_check_period": 9000},
        increase_only=True,
        **CONN,
    )
    assert ret["changes"] == {"health_check_period": {"old": 5000, "new": 9000}}
    assert host.settings["primary_demote_timeout"] == 30000


def test_config_value_refuses_a_secret_key_before_asking_anything(host, opts):
    ret = states.config_value("replication.password", "s3cret", **CONN)
    assert ret["result"] is False and "belongs in the service user's .pgpass" in ret["comment"]
    assert "s3cret" not in ret["comment"] and host.calls == []


def test_config_value_sets_reloads_and_then_changes_nothing(host, opts):
    ret = states.config_value("timeout.network_partition_timeout", 1, **CONN)
    assert ret["changes"] == {"timeout.network_partition_timeout": {"old": "20", "new": 1}}
    assert host.calls[-2:] == ["config_set", "reload_service"]
    again = states.config_value("timeout.network_partition_timeout", 1, **CONN)
    assert again["changes"] == {} and again["comment"] == "timeout.network_partition_timeout is 1."


def test_converged_in_test_mode_says_what_it_would_wait_for(host, opts):
    opts["test"] = True
    assert states.converged("default", expect_nodes=3, **CONN)["result"] is True
    host.table[2]["current_group_state"] = "catchingup"
    waiting = states.converged("default", expect_nodes=3, **CONN)
    assert waiting["result"] is None and waiting["comment"].startswith("Would wait for: ")
    assert "wait_converged" not in host.calls


def test_converged_fails_with_the_modules_reason_when_time_runs_out(host, opts):
    host.failing["wait_converged"] = "timed out after 120 s: pg3 catchingup"
    ret = states.converged("default", timeout=120, **CONN)
    assert ret["result"] is False and ret["comment"] == (
        "Formation default has not converged: timed out after 120 s: pg3 catchingup"
    )


def test_node_absent_refuses_the_primary_and_the_last_standby(host, opts):
    assert "Run a switchover first" in states.node_absent("pg1", **CONN)["comment"]
    host.table[1]["replication_quorum"] = False  # pg3 is then the only standby in the quorum
    refused = states.node_absent("pg3", **CONN)
    assert refused["result"] is False and "last standby" in refused["comment"]
    allowed = states.node_absent("pg3", allow_last_standby=True, **CONN)
    assert allowed["result"] is True and allowed["changes"] == {
        "node": {"old": "pg3", "new": None},
        "destroyed": False,
    }
    again = states.node_absent("pg3", **CONN)
    assert again["changes"] == {} and "not registered with the monitor" in again["comment"]


def test_a_dry_run_on_a_bare_host_predicts_instead_of_failing(bare_host):
    bare_host["test"] = True
    ret = states.formation_present("default", dbname="appdb", **CONN)
    assert ret["result"] is None and ret["comment"].endswith("(pg_autoctl is not installed yet).")
    ret = states.config_value("timeout.network_partition_timeout", 1, **CONN)
    assert ret["result"] is None and ret["changes"] == {}


def test_a_real_run_on_a_bare_host_fails_with_the_reason_the_module_did_not_load(bare_host):
    ret = states.formation_present("default", dbname="appdb", **CONN)
    assert ret["result"] is False and "pg_autoctl not found at /usr/bin/pg_autoctl" in ret["comment"]
    # ...except dropping a node, which a host cleaned already has nothing left to do for
    dropped = states.node_absent("pg3", **CONN)
    assert dropped["result"] is True and "nothing to drop here" in dropped["comment"]


def test_a_dry_run_before_the_instance_exists_says_so(host, opts):
    host.created = False
    opts["test"] = True
    ret = states.monitor_settings("fast", {"health_check_period": 1000}, **CONN)
    assert ret["result"] is None and ret["comment"].endswith(f"({CONN['pgdata']} is not created yet).")
    assert "monitor_settings" not in host.calls


def test_role_present_reads_the_password_from_the_pillar_and_never_shows_it(host, opts):
    opts["test"] = True
    predicted = states.role_present("app", "pgfailover:passwords:app", owns_database="appdb", **CONN)
    assert predicted["result"] is None and set(predicted["changes"]) == {"role", "owner"}
    assert host.roles == {}
    opts["test"] = False
    created = states.role_present("app", "pgfailover:passwords:app", owns_database="appdb", **CONN)
    assert created["result"] is True and host.roles == {"app": PASSWORD} and host.owners["appdb"] == "app"
    host.roles["app"] = "an-old-password-1"
    rotated = states.role_present("app", "pgfailover:passwords:app", owns_database="appdb", **CONN)
    assert rotated["changes"] == {"password": {"old": "******", "new": "******"}}
    again = states.role_present("app", "pgfailover:passwords:app", owns_database="appdb", **CONN)
    assert again["changes"] == {} and again["comment"] == "Role app is as asked."
    shown = repr([predicted, created, rotated, again])
    assert PASSWORD not in shown and "an-old-password-1" not in shown


def test_role_present_leaves_a_standby_alone_and_refuses_an_empty_pillar_key(host, opts):
    host.standby = True
    ret = states.role_present("app", "pgfailover:passwords:app", **CONN)
    assert ret["changes"] == {} and "standby" in ret["comment"] and host.roles == {}
    refused = states.role_present("app", "pgfailover:passwords:nope", **CONN)
    assert refused["result"] is False
    assert refused["comment"] == "pillar key pgfailover:passwords:nope is empty: role app needs a password"


def test_formation_absent_waits_for_its_nodes_to_leave_then_drops_it_once(host, opts):
    host.formations["sales"] = {"kind": "pgsql", "dbname": "sales", "number_sync_standbys": 0}
    host.members["sales"] = [node("s1", "primary"), node("s2", "secondary")]
    refused = states.formation_absent("sales", **CONN)
    assert refused["result"] is False and refused["changes"] == {}
    assert "still has node(s) s1, s2: they leave first" in refused["comment"]
    host.members["sales"] = []
    opts["test"] = True
    assert states.formation_absent("sales", **CONN)["result"] is None and "sales" in host.formations
    opts["test"] = False
    dropped = states.formation_absent("sales", **CONN)
    assert (
        dropped["changes"] == {"formation": {"old": "sales", "new": None}} and "sales" not in host.formations
    )
    again = states.formation_absent("sales", **CONN)
    assert again["changes"] == {} and again["comment"] == "Formation sales is not on the monitor."


def test_maintenance_predicts_puts_in_once_and_takes_out(host, opts):
    opts["test"] = True
    predicted = states.maintenance("pg2", enabled=True, **CONN)
    assert predicted["result"] is None and predicted["comment"] == "Node pg2 would be put into maintenance."
    assert "enable_maintenance" not in host.calls
    opts["test"] = False
    put = states.maintenance("pg2", enabled=True, **CONN)
    assert put["changes"] == {
        "maintenance": {"old": False, "new": True},
        "state": {"old": "secondary", "new": "maintenance"},
    }
    again = states.maintenance("pg2", enabled="True", **CONN)
    assert again["changes"] == {} and again["comment"] == "Node pg2 is in maintenance."
    out = states.maintenance("pg2", enabled=False, **CONN)
    assert out["changes"]["state"] == {"old": "maintenance", "new": "catchingup"}
    assert host.calls.count("enable_maintenance") == 1 and host.calls.count("disable_maintenance") == 1


def test_maintenance_of_an_unknown_node_or_a_refused_primary_fails_without_changes(host, opts):
    unknown = states.maintenance("pg9", **CONN)
    assert unknown["result"] is False and unknown["comment"] == "Node pg9 is not registered with the monitor"
    host.failing["enable_maintenance"] = (
        "pg_autoctl enable maintenance failed: the primary needs --allow-failover"
    )
    refused = states.maintenance("pg2", **CONN)
    assert refused["result"] is False and refused["changes"] == {}
    assert refused["comment"].startswith("Maintenance of node pg2 could not be changed: pg_autoctl enable")


def test_ready_to_join_waits_for_the_monitor_or_a_primary_and_never_reports_changes(host, opts):
    uri = "postgres://autoctl_node@mon:5431/pg_auto_failover?sslmode=require"
    host.created = False
    first = states.ready_to_join("pg1", first_node="pg1", monitor_uri=uri, **CONN)
    assert first["result"] is True and first["changes"] == {}
    assert first["comment"] == "Node pg1 can be created: the monitor answers."
    other = states.ready_to_join("pg2", first_node="pg1", monitor_uri=uri, **CONN)
    assert other["comment"] == "Node pg2 can be created: a primary that accepts the replicator answers."
    assert host.calls.count("wait_monitor") == 1 and host.calls.count("wait_for_primary") == 1
    opts["test"] = True
    predicted = states.ready_to_join("pg2", first_node="pg1", monitor_uri=uri, **CONN)
    assert predicted["result"] is None and host.calls.count("wait_for_primary") == 1
    opts["test"] = False
    host.created = True
    assert states.ready_to_join("pg2", first_node="pg1", monitor_uri=uri, **CONN)["comment"] == (
        "Node pg2 exists: nothing to wait for."
    )


def test_ready_to_join_names_the_first_node_when_no_primary_answers(host, opts):
    host.created = False
    host.failing["wait_for_primary"] = "no primary accepted pgautofailover_replicator within 300 s"
    ret = states.ready_to_join("pg2", first_node="pg1", monitor_uri="postgres://mon/pg_auto_failover", **CONN)
    assert ret["result"] is False and ret["changes"] == {}
    assert ret["comment"] == (
        "Node pg2 cannot be created yet (node pg1, first in the pillar, starts a formation): "
        "no primary accepted pgautofailover_replicator within 300 s"
    )


def test_node_ready_and_monitor_ready_report_the_state_or_the_reason(host, opts):
    assert states.node_ready("pg2", **CONN)["comment"] == "Node pg2 is secondary."
    assert states.monitor_ready("/var/lib/postgresql/pgaf/monitor")["comment"] == (
        "The monitor at /var/lib/postgresql/pgaf/monitor answers."
    )
    host.failing["wait_node_state"] = "node pg2 did not reach secondary within 120 s: catchingup"
    host.failing["wait_postgres"] = "PostgreSQL did not accept connections within 60 s"
    stuck = states.node_ready("pg2", **CONN)
    assert stuck["result"] is False and stuck["comment"].endswith("within 120 s: catchingup")
    silent = states.monitor_ready("/var/lib/postgresql/pgaf/monitor")
    assert silent["result"] is False and "did not accept connections" in silent["comment"]


def test_empty_directory_absent_removes_an_empty_directory_and_keeps_one_with_files(opts, tmp_path):
    empty, kept = tmp_path / "empty", tmp_path / "kept"
    empty.mkdir()
    kept.mkdir()
    (kept / "operator.conf").write_text("mine\n")
    opts["test"] = True
    predicted = states.empty_directory_absent(str(empty))
    assert predicted["result"] is None and empty.is_dir()
    opts["test"] = False
    removed = states.empty_directory_absent(str(empty))
    assert removed["changes"] == {"removed": str(empty)} and not empty.exists()
    assert states.empty_directory_absent(str(empty))["comment"] == f"{empty} is absent."
    left = states.empty_directory_absent(str(kept))
    assert left["changes"] == {} and left["result"] is True and (kept / "operator.conf").exists()
    assert left["comment"] == f"{kept} is kept: it holds 1 entries the formula did not create."


def test_settings_applied_reloads_and_says_which_settings_restarted_the_unit(host, opts):
    unit = "pgautofailover-node-pg1"
    opts["test"] = True
    predicted = states.settings_applied(unit, names=["work_mem"], **CONN)
    assert predicted["result"] is None and "apply_settings" not in host.calls
    opts["test"] = False
    reloaded = states.settings_applied(unit, names=["work_mem"], **CONN)
    assert reloaded["changes"] == {"reloaded": True, "restarted_for": []}
    assert reloaded["comment"] == f"{CONN['pgdata']} reloaded its settings."
    host.restart_needed = {"shared_buffers"}
    restarted = states.settings_applied(unit, names=["work_mem", "shared_buffers"], **CONN)
    assert restarted["changes"]["restarted_for"] == ["shared_buffers"]
    assert restarted["comment"].endswith(f"; unit {unit} restarted for shared_buffers.")
    host.failing["apply_settings"] = "pg_ctl restart failed"
    failed = states.settings_applied(unit, names=["shared_buffers"], **CONN)
    assert (
        failed["result"] is False
        and failed["changes"] == {}
        and failed["comment"].endswith("pg_ctl restart failed")
    )


def test_reloaded_reloads_once_per_run_and_only_outside_test_mode(host, opts):
    opts["test"] = True
    assert states.reloaded("pg_hba.conf", **CONN)["result"] is None and host.reloads == 0
    opts["test"] = False
    done = states.reloaded("pg_hba.conf", **CONN)
    assert done["changes"] == {"reloaded": True} and host.reloads == 1
    host.failing["reload_postgres"] = "PostgreSQL is not running"
    failed = states.reloaded("pg_hba.conf", **CONN)
    assert failed["result"] is False and failed["comment"].endswith(
        "could not reload (pg_hba.conf): PostgreSQL is not running"
    )


def test_certificates_valid_fails_a_real_run_and_warns_a_dry_run_with_the_problems(monkeypatch, opts):
    problems = []
    functions = {"pgfailover_tls.problems": lambda *args: list(problems)}
    monkeypatch.setattr(states, "__salt__", LoadedModules(functions), raising=False)
    files = {
        "ca_file": "/etc/tls/ca.crt",
        "server_cert": "/etc/tls/pg1.crt",
        "server_key": "/etc/tls/pg1.key",
    }
    good = states.certificates_valid("pg1", hostnames=["pg1"], **files)
    assert good["result"] is True and good["comment"] == "The certificate files on pg1 can serve pg1."
    problems.append("/etc/tls/pg1.crt does not name pg1")
    refused = states.certificates_valid("pg1", hostnames=["pg1"], **files)
    assert refused["result"] is False and refused["changes"] == {}
    assert refused["comment"] == "Certificate files on pg1 refused: /etc/tls/pg1.crt does not name pg1"
    opts["test"] = True
    assert states.certificates_valid("pg1", hostnames=["pg1"], **files)["result"] is None


MONITOR = "/var/lib/postgresql/pgaf/monitor"


@pytest.fixture
def monitor_host(monkeypatch, opts):
    """A host whose monitor's pg_autoctl configuration is kept in memory; None: not created."""
    made = {"config": None, "created": []}

    def create_monitor(hostname, port=5432, auth=None, skip_pg_hba=False, ssl=None, ssl_mode=None, **conn):
        made["created"].append((hostname, port))
        made["config"] = {
            "pg_autoctl": {"role": "monitor", "hostname": hostname},
            "postgresql": {"port": str(port), "auth_method": auth},
            "ssl": {"active": "1"},
        }

    functions = {
        "pgfailover.state": lambda **conn: [],
        "pgfailover.is_created": lambda **conn: made["config"] is not None,
        "pgfailover.config_get": lambda **conn: made["config"],
        "pgfailover.create_monitor": create_monitor,
    }
    monkeypatch.setattr(states, "__salt__", LoadedModules(functions), raising=False)
    return made


def test_monitor_present_predicts_creates_once_and_refuses_a_changed_port(monitor_host, opts):
    wanted = {"hostname": "mon", "port": 5431, "auth": "scram-sha-256", "ssl": "self-signed"}
    opts["test"] = True
    predicted = states.monitor_present(MONITOR, **wanted)
    assert predicted["result"] is None and monitor_host["created"] == []
    assert predicted["changes"] == {"monitor": {"old": None, "new": "mon:5431"}, "pgdata": MONITOR}
    opts["test"] = False
    created = states.monitor_present(MONITOR, **wanted)
    assert created["comment"] == f"The monitor at {MONITOR} was created." and monitor_host["created"] == [
        ("mon", 5431)
    ]
    again = states.monitor_present(MONITOR, **wanted)
    assert again["changes"] == {} and again["comment"] == f"The monitor at {MONITOR} exists (mon:5431)."
    moved = states.monitor_present(MONITOR, **{**wanted, "port": 5432})
    assert moved["result"] is False and moved["changes"] == {} and monitor_host["created"] == [("mon", 5431)]
    assert "port='5431' where the state asks 5432" in moved["comment"]


def test_monitor_present_refuses_a_node_directory_and_points_ssl_changes_to_the_orchestration(
    monitor_host, opts
):
    monitor_host["config"] = {
        "pg_autoctl": {"role": "keeper", "hostname": "pg1"},
        "postgresql": {"port": "5432"},
        "ssl": {"active": "1"},
    }
    keeper = states.monitor_present(MONITOR, hostname="pg1", port=5432)
    assert keeper["result"] is False and keeper["comment"] == f"{MONITOR} holds a keeper, not a monitor"
    monitor_host["config"]["pg_autoctl"]["role"] = "monitor"
    ssl = states.monitor_present(MONITOR, hostname="pg1", port=5432, ssl={"ca_file": "/etc/tls/ca.crt"})
    assert ssl["result"] is False and "pgfailover.orch.ssl" in ssl["comment"]


NODE = "/var/lib/postgresql/pgaf/pg2"


@pytest.fixture
def node_host(monkeypatch, opts):
    """A node's host: its pg_autoctl configuration and the monitor's entry for it, in memory."""
    made = {"config": None, "entry": None, "created": [], "set": [], "local_sysid": None, "sysids": [7]}

    def create_postgres(name, hostname, port=5432, candidate_priority=50, replication_quorum=True, **rest):
        made["created"].append(name)
        made["config"] = {
            "pg_autoctl": {"role": "keeper", "name": name, "hostname": hostname, "formation": "default"},
            "postgresql": {"port": str(port), "dbname": rest.get("dbname")},
            "ssl": {"active": "1"},
        }
        made["entry"] = {
            "nodename": name, "current_group_state": "secondary", "assigned_group_state": "secondary",
            "candidate_priority": candidate_priority, "replication_quorum": replication_quorum,
        }  # fmt: skip

    def config_get(**conn):
        if made["config"] is None:
            raise CommandExecutionError(f"{NODE}: no pg_autoctl configuration")
        return made["config"]

    def setter(key):
        def set_value(value, **conn):
            made["set"].append(key)
            made["entry"][key] = value

        return set_value

    functions = {
        "pgfailover.state": lambda formation=None, **conn: [dict(made["entry"])] if made["entry"] else [],
        "pgfailover.is_created": lambda **conn: made["config"] is not None,
        "pgfailover.config_get": config_get,
        "pgfailover.create_postgres": create_postgres,
        "pgfailover.system_identifier": lambda **conn: made["local_sysid"],
        "pgfailover.formation_system_identifiers": lambda formation=None, **conn: made["sysids"],
        "pgfailover.set_candidate_priority": setter("candidate_priority"),
        "pgfailover.set_replication_quorum": setter("replication_quorum"),
    }
    monkeypatch.setattr(states, "__salt__", LoadedModules(functions), raising=False)
    return made


NODE_ARGS = {"hostname": "pg2", "port": 5432, "dbname": "appdb", "ssl": "self-signed", "pgdata": NODE}


def test_node_present_predicts_creates_once_then_converges_priority_and_quorum(node_host, opts):
    opts["test"] = True
    predicted = states.node_present("pg2", **NODE_ARGS)
    assert predicted["result"] is None and node_host["created"] == []
    assert predicted["comment"] == "Node pg2 would be created and registered with the monitor."
    opts["test"] = False
    created = states.node_present("pg2", **NODE_ARGS)
    assert created["result"] is True and node_host["created"] == ["pg2"]
    assert created["changes"]["node"] == {"old": None, "new": "pg2:5432"}
    again = states.node_present("pg2", **NODE_ARGS)
    assert again["changes"] == {} and again["comment"] == "Node pg2 is registered (secondary)."
    opts["test"] = True
    would = states.node_present("pg2", candidate_priority=0, replication_quorum=False, **NODE_ARGS)
    assert would["result"] is None and node_host["set"] == []
    assert would["changes"] == {
        "candidate_priority": {"old": 50, "new": 0},
        "replication_quorum": {"old": True, "new": False},
    }
    opts["test"] = False
    updated = states.node_present("pg2", candidate_priority=0, replication_quorum=False, **NODE_ARGS)
    assert updated["comment"] == "Node pg2 was updated: candidate_priority, replication_quorum."
    assert node_host["set"] == ["candidate_priority", "replication_quorum"]
    settled = states.node_present("pg2", candidate_priority=0, replication_quorum=False, **NODE_ARGS)
    assert settled["changes"] == {} and node_host["set"] == ["candidate_priority", "replication_quorum"]


def test_node_present_refuses_another_clusters_data_a_changed_port_and_a_dropped_node(node_host, opts):
    node_host["local_sysid"] = 9  # an old data directory of another cluster left in place
    foreign = states.node_present("pg2", **NODE_ARGS)
    assert foreign["result"] is False and foreign["changes"] == {} and node_host["created"] == []
    assert "already holds a PostgreSQL cluster with system identifier 9" in foreign["comment"]
    node_host["local_sysid"] = None
    states.node_present("pg2", **NODE_ARGS)
    moved = states.node_present("pg2", **{**NODE_ARGS, "port": 5433})
    assert moved["result"] is False and "port='5432' where the state asks 5433" in moved["comment"]
    node_host["entry"] = None  # dropped from the monitor, data directory still here
    dropped = states.node_present("pg2", **NODE_ARGS)
    assert (
        dropped["result"] is False
        and "the monitor does not list it in formation default" in dropped["comment"]
    )


def test_node_present_creates_afresh_a_node_whose_registration_the_monitor_never_kept(node_host, opts):
    """
    pg_autoctl wrote its state and init files, then the power went before the
    monitor's COMMIT: the files name a node the monitor never kept, and
    resuming fails for good. Such a node's files are moved aside (never
    deleted) and the node is created afresh; one the monitor lists resumes.
    (A power cut inside that window cannot be produced on demand, hence the
    stand-in; the lab's power-cut test hits it rarely.)
    """
    moved = []
    states.__salt__["pgfailover.set_aside_instance"] = lambda label, **conn: (
        moved.append(label) or {NODE: f"{NODE}.{label}-20261201T000000Z"}
    )
    states.__salt__["pgfailover.is_created"] = lambda **conn: bool(node_host["created"])
    node_host["config"] = {"pg_autoctl": {"role": "keeper", "name": "pg2"}}  # the interrupted create's
    opts["test"] = True
    predicted = states.node_present("pg2", **NODE_ARGS)
    assert predicted["result"] is None and moved == [] and node_host["created"] == []
    assert "never kept its interrupted registration" in predicted["comment"]
    opts["test"] = False
    created = states.node_present("pg2", **NODE_ARGS)
    assert created["result"] is True and moved == ["unregistered"] and node_host["created"] == ["pg2"]
    assert created["changes"]["set_aside"] == {NODE: f"{NODE}.unregistered-20261201T000000Z"}
    assert "created afresh" in created["comment"]
    node_host["created"].clear()  # half-created again, but this time the monitor kept it: resumed
    resumed = states.node_present("pg2", **NODE_ARGS)
    assert resumed["result"] is True and moved == ["unregistered"] and node_host["created"] == ["pg2"]
    assert resumed["comment"] == "Node pg2 was resumed and registered with the monitor."


@pytest.fixture
def metrics_role(monkeypatch, host, opts):
    """The role as the local PostgreSQL would describe it; None: not there."""
    current = {"role": None, "set": []}

    def set_monitoring_role(name, connection_limit=5, read_formation=False, **conn):
        current["set"].append(name)
        current["role"] = {
            "login": True, "superuser": False, "password_set": False, "pg_monitor": True,
            "connection_limit": int(connection_limit), "reads_formation": bool(read_formation),
        }  # fmt: skip

    functions = {
        **host.functions(),
        "pgfailover.role": lambda name, dbname="postgres", **conn: current["role"],
        "pgfailover.set_monitoring_role": set_monitoring_role,
    }
    monkeypatch.setattr(states, "__salt__", LoadedModules(functions), raising=False)
    return current


def test_monitoring_role_present_creates_once_then_only_fixes_what_differs(metrics_role, opts):
    opts["test"] = True
    predicted = states.monitoring_role_present("pgfailover_metrics", connection_limit=3, pgdata=NODE)
    assert predicted["result"] is None and predicted["changes"] == {
        "role": {"old": None, "new": "pgfailover_metrics"}
    }
    assert metrics_role["set"] == []
    opts["test"] = False
    created = states.monitoring_role_present("pgfailover_metrics", connection_limit=3, pgdata=NODE)
    assert created["comment"] == "Monitoring role pgfailover_metrics was set: role." and metrics_role["set"]
    again = states.monitoring_role_present("pgfailover_metrics", connection_limit=3, pgdata=NODE)
    assert again["changes"] == {} and again["comment"] == "Monitoring role pgfailover_metrics is as asked."
    widened = states.monitoring_role_present("pgfailover_metrics", connection_limit=5, pgdata=NODE)
    assert widened["changes"] == {"connection_limit": {"old": 3, "new": 5}} and len(metrics_role["set"]) == 2


def test_monitoring_role_present_leaves_a_standby_alone_and_reports_a_failure_without_changes(
    metrics_role, host, opts
):
    host.standby = True
    standby = states.monitoring_role_present("pgfailover_health", pgdata=NODE)
    assert standby["result"] is True and standby["changes"] == {} and metrics_role["set"] == []
    assert standby["comment"] == "This node is a standby: role pgfailover_health comes from the primary."
    host.standby = False
    host.failing["in_recovery"] = "could not connect to server"
    failed = states.monitoring_role_present("pgfailover_health", pgdata=NODE)
    assert failed["result"] is False and failed["changes"] == {}
    assert failed["comment"] == (
        "Monitoring role pgfailover_health could not be checked or set: could not connect to server"
    )
