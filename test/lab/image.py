"""
The base image and the local apt repository, built once per recipe.

The image is Debian 12 from debootstrap with systemd, systemd-networkd,
python3 and a salt-minion (the same pinned Salt as the master, installed from
the machine's wheelhouse). It has no PostgreSQL: the formula installs it from
the local apt repository, which holds PostgreSQL 15, pg_auto_failover and
their dependencies as downloaded .debs indexed by dpkg-scanpackages.

Both live under the cache directory named by a hash of their recipe; a recipe
change builds new ones, an unchanged recipe reuses them.
"""

import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess

from lab.paths import CACHE, SALT_VERSION, WHEELS

SUITE = "bookworm"
IMAGE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "iproute2", "python3", "python3-venv",
    "procps", "less", "ca-certificates",
)  # fmt: skip
REPO_PACKAGES = (
    "postgresql-15", "postgresql-client-15", "postgresql-contrib", "postgresql-15-auto-failover",
    "pg-auto-failover-cli", "haproxy", "python3-psycopg2", "pgbackrest", "openssh-server", "openssh-client",
    "prometheus-postgres-exporter", "prometheus",
)  # fmt: skip
DEBOOTSTRAP_SOURCES = "debootstrap.sources.list"
# Bump when the build steps below change in a way the lists above do not show.
BUILD_STEPS_VERSION = 2


def _digest(recipe):
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def image_dir():
    recipe = {"suite": SUITE, "packages": IMAGE_PACKAGES, "salt": SALT_VERSION, "steps": BUILD_STEPS_VERSION}
    return os.path.join(CACHE, f"image-{_digest(recipe)}")


def repo_dir():
    recipe = {"suite": SUITE, "packages": REPO_PACKAGES, "steps": BUILD_STEPS_VERSION}
    return os.path.join(CACHE, f"aptrepo-{_digest(recipe)}")


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, **kwargs)


def ensure_salt_wheels():
    """The wheelhouse holds salt and its dependencies for the image's Python (3.11)."""
    if glob.glob(os.path.join(WHEELS, f"salt-{SALT_VERSION}-*.whl")):
        return
    os.makedirs(WHEELS, exist_ok=True)
    run(["/usr/bin/python3", "-m", "pip", "wheel", "-q", "-w", WHEELS, f"salt=={SALT_VERSION}"])


def _chroot(root, *argv, env=None):
    environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C"}
    return run(["chroot", root, *argv], env={**environment, **(env or {})})


class _BindMounts:
    """proc, sys, dev and extra directories bound into a chroot for the build."""

    def __init__(self, root, extra=()):
        self.targets = []
        self.root = root
        self.extra = extra

    def __enter__(self):
        for source, target, options in (
            ("proc", "proc", ["-t", "proc"]),
            ("sysfs", "sys", ["-t", "sysfs"]),
            ("/dev", "dev", ["--bind"]),
            *self.extra,
        ):
            path = os.path.join(self.root, target)
            os.makedirs(path, exist_ok=True)
            run(["mount", *options, source, path])
            self.targets.append(path)
        return self

    def __exit__(self, *exc):
        for path in reversed(self.targets):
            subprocess.run(["umount", "-l", path], check=False)


def build_image(log=print):
    """Build the base image if its recipe has none yet; return its root."""
    final = image_dir()
    root = os.path.join(final, "root")
    if os.path.exists(os.path.join(final, "complete")):
        return root
    ensure_salt_wheels()
    work = final + ".building"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    work_root = os.path.join(work, "root")
    log(f"lab: debootstrap {SUITE} into {work_root} (about a minute)")
    # No mirror argument: debootstrap's own default.
    run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}", SUITE, work_root],
        stdout=subprocess.DEVNULL,
    )
    log("lab: salt-minion from the wheelhouse")
    with _BindMounts(work_root, extra=[(WHEELS, "mnt/wheels", ["--bind", "-o", "ro"])]):
        _chroot(work_root, "/usr/bin/python3", "-m", "venv", "/opt/salt")
        _chroot(
            work_root,
            "/opt/salt/bin/pip", "install", "-q", "--no-index", "--find-links", "/mnt/wheels",
            f"salt=={SALT_VERSION}",
        )  # fmt: skip
    _configure_image(work_root)
    open(os.path.join(work, "complete"), "w").close()
    shutil.rmtree(final, ignore_errors=True)
    os.rename(work, final)
    return os.path.join(final, "root")


MINION_UNIT = """\
[Unit]
Description=Salt minion (lab)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/opt/salt/bin/salt-minion
Restart=always
RestartSec=2
KillMode=process
TimeoutStopSec=5

[Install]
WantedBy=multi-user.target
"""


def _configure_image(root):
    """Salt-minion unit and links, networkd on, no outside apt source, no getty."""
    for deb in glob.glob(os.path.join(root, "var/cache/apt/archives/*.deb")):
        os.remove(deb)
    for tool in ("salt-call", "salt-minion"):
        os.symlink(f"/opt/salt/bin/{tool}", os.path.join(root, "usr/local/bin", tool))
    with open(os.path.join(root, "etc/systemd/system/salt-minion.service"), "w") as unit:
        unit.write(MINION_UNIT)
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/etc/systemd/system/salt-minion.service", os.path.join(wants, "salt-minion.service"))
    os.symlink(
        "/lib/systemd/system/systemd-networkd.service", os.path.join(wants, "systemd-networkd.service")
    )
    # Hosts reach no package mirror: the formula's pillar names the local
    # repository. debootstrap's own source is kept beside the image for
    # build_repo.
    shutil.copy(os.path.join(root, "etc/apt/sources.list"), os.path.join(root, "..", DEBOOTSTRAP_SOURCES))
    with open(os.path.join(root, "etc/apt/sources.list"), "w") as sources:
        sources.write("# The lab's hosts use the repository their pillar names.\n")
    os.makedirs(os.path.join(root, "etc/salt/minion.d"), exist_ok=True)
    # Containers have no console login.
    for unit in ("console-getty.service", "getty@.service"):
        mask = os.path.join(root, "etc/systemd/system", unit)
        if not os.path.lexists(mask):
            os.symlink("/dev/null", mask)


def build_repo(log=print):
    """Download the packages the formula installs, with their dependencies; index them."""
    final = repo_dir()
    if os.path.exists(os.path.join(final, "Packages.gz")):
        return final
    image_root = build_image(log)
    work = final + ".building"
    shutil.rmtree(work, ignore_errors=True)
    scratch = os.path.join(work, "scratch")
    os.makedirs(scratch)
    log("lab: downloading PostgreSQL 15 and pg_auto_failover .debs for the local repository")
    # Resolve against the image's own package set in a throwaway overlay of it,
    # with Debian's default source (the image itself keeps none).
    merged = os.path.join(scratch, "root")
    for sub in ("upper", "work", "root"):
        os.makedirs(os.path.join(scratch, sub))
    run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={image_root},upperdir={scratch}/upper,workdir={scratch}/work", merged]
    )  # fmt: skip
    try:
        with open(os.path.join(merged, "etc/apt/sources.list"), "w") as sources:
            sources.write(_default_sources(image_root))
        shutil.copy("/etc/resolv.conf", os.path.join(merged, "etc/resolv.conf"))
        with _BindMounts(merged):
            _chroot(merged, "apt-get", "-q", "update")
            _chroot(
                merged, "apt-get", "-q", "install", "-y", "--download-only", "--no-install-recommends",
                *REPO_PACKAGES,
            )  # fmt: skip
        debs = glob.glob(os.path.join(merged, "var/cache/apt/archives/*.deb"))
        for deb in debs:
            shutil.copy(deb, work)
    finally:
        subprocess.run(["umount", merged], check=False)
    shutil.rmtree(scratch)
    packages = run(["dpkg-scanpackages", "--multiversion", "."], cwd=work, capture_output=True).stdout
    with gzip.open(os.path.join(work, "Packages.gz"), "wb") as index:
        index.write(packages)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(work, final)
    log(f"lab: local repository with {len(debs)} packages at {final}")
    return final


def _default_sources(image_root):
    """debootstrap's default source, as it wrote it into the image."""
    with open(os.path.join(os.path.dirname(image_root), DEBOOTSTRAP_SOURCES)) as sources:
        return sources.read()
