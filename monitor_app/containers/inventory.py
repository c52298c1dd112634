"""List and inspect containers into normalised records.

A record keeps what discovery and lifecycle monitoring need and nothing that could
leak a secret: environment variables are reduced to their *names* at the moment the
inspect document is read, and command-line arguments are never kept (only the
process name), because both routinely carry passwords.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


@dataclass
class ContainerRecord:
    id: str
    name: str
    image: str
    image_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    env_names: list[str] = field(default_factory=list)
    exposed_ports: list[int] = field(default_factory=list)
    # [{"port": 5432, "proto": "tcp", "host_ip": "0.0.0.0", "host_port": 15432}]
    published_ports: list[dict[str, Any]] = field(default_factory=list)
    # Ports the main process listens on, read from /proc when the engine runs on this host
    # (`proc_readable`); empty and readable means "not listening (yet)".
    listening_ports: list[int] = field(default_factory=list)
    proc_readable: bool = False
    network_mode: str = ""
    networks: dict[str, dict[str, str]] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    restart_policy: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    status: str = ""  # created | running | paused | restarting | removing | exited | dead
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    health: str | None = None  # starting | healthy | unhealthy, None without a health check
    health_failing_streak: int = 0
    pid: int = 0
    process: str = ""  # name of the main process (comm), else basename of the entrypoint
    memory_limit: int = 0
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ContainerRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def all_ports(self) -> set[int]:
        return set(self.exposed_ports) | {p["port"] for p in self.published_ports} | set(self.listening_ports)


def env_names(env: Iterable[str] | None) -> list[str]:
    """`KEY=value` -> `KEY`; the value is dropped here and never travels further."""
    return sorted({item.split("=", 1)[0] for item in env or () if item})


def _port_number(spec: str) -> tuple[int, str] | None:
    number, _, proto = spec.partition("/")
    try:
        return int(number), proto or "tcp"
    except ValueError:
        return None


def process_name(pid: int, path: str) -> str:
    """The main process' comm where /proc is readable (same host), else the entrypoint's basename."""
    if pid:
        # Right at "start" the process may still be the runtime's init, about to exec the real one.
        deadline = time.monotonic() + 0.5
        while True:
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                    comm = fh.read().strip()
            except OSError:
                break
            if not comm.startswith("runc:") or time.monotonic() > deadline:
                return comm
            time.sleep(0.01)
    return os.path.basename(path or "")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def proc_readable(pid: int) -> bool:
    return bool(pid) and os.access(f"/proc/{pid}/fd", os.R_OK | os.X_OK) and os.path.exists(f"/proc/{pid}/net/tcp")


def listening_ports(pid: int) -> list[int]:
    """TCP ports in LISTEN state owned by the process `pid` (its own network namespace view).

    Needed for host-network containers, whose EXPOSE says nothing about the port the
    server was actually told to use. Empty when /proc is not readable.
    """
    if not pid:
        return []
    inodes = _socket_inodes(pid)
    if not inodes:
        return []
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    cols = line.split()
                    # st 0A is LISTEN; column 9 is the socket inode.
                    if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return sorted(ports)


def normalise(attrs: dict[str, Any], *, read_proc: bool = True) -> ContainerRecord:
    """One `docker inspect` document -> ContainerRecord."""
    config = attrs.get("Config") or {}
    state = attrs.get("State") or {}
    host = attrs.get("HostConfig") or {}
    net = attrs.get("NetworkSettings") or {}

    exposed = sorted({p[0] for p in (_port_number(s) for s in (config.get("ExposedPorts") or {})) if p and p[1] == "tcp"})
    published = []
    for spec, bindings in sorted((net.get("Ports") or {}).items()):
        parsed = _port_number(spec)
        if not parsed:
            continue
        for binding in bindings or ():
            try:
                host_port = int(binding.get("HostPort") or 0)
            except ValueError:
                host_port = 0
            if host_port:
                published.append({"port": parsed[0], "proto": parsed[1],
                                  "host_ip": binding.get("HostIp") or "0.0.0.0",  # nosec B104 # Docker's binding, not ours
                                  "host_port": host_port})
    networks = {name: {"ip": (n or {}).get("IPAddress") or "", "gateway": (n or {}).get("Gateway") or ""}
                for name, n in (net.get("Networks") or {}).items()}
    # The engine lists mounts in map order, which differs between two inspects of the same container.
    mounts = sorted(({"type": m.get("Type", ""), "source": m.get("Source", ""), "destination": m.get("Destination", ""),
                      "name": m.get("Name", ""), "rw": bool(m.get("RW", True))} for m in attrs.get("Mounts") or ()),
                    key=lambda m: (m["destination"], m["source"]))
    policy = host.get("RestartPolicy") or {}
    health = state.get("Health") or None
    pid = int(state.get("Pid") or 0) if state.get("Running") else 0
    running = bool(state.get("Running"))
    return ContainerRecord(
        id=attrs["Id"],
        name=(attrs.get("Name") or "").lstrip("/"),
        image=config.get("Image") or attrs.get("Image", ""),
        image_id=attrs.get("Image", ""),
        labels=dict(config.get("Labels") or {}),
        env_names=env_names(config.get("Env")),
        exposed_ports=exposed,
        published_ports=published,
        listening_ports=listening_ports(pid) if read_proc and running else [],
        proc_readable=read_proc and running and proc_readable(pid),
        network_mode=host.get("NetworkMode") or "",
        networks=networks,
        mounts=mounts,
        restart_policy={"name": policy.get("Name") or "no", "max_retry": int(policy.get("MaximumRetryCount") or 0)},
        restart_count=int(attrs.get("RestartCount") or 0),
        status=state.get("Status") or "",
        exit_code=state.get("ExitCode") if not running else None,
        oom_killed=bool(state.get("OOMKilled")),
        started_at=state.get("StartedAt"),
        finished_at=state.get("FinishedAt"),
        health=health.get("Status") if health else None,
        health_failing_streak=int(health.get("FailingStreak") or 0) if health else 0,
        pid=pid,
        process=process_name(pid, attrs.get("Path", "")) if read_proc else os.path.basename(attrs.get("Path") or ""),
        memory_limit=int(host.get("Memory") or 0),
        created=attrs.get("Created", ""),
    )


def inspect(client, container_id: str, *, read_proc: bool = True) -> ContainerRecord | None:
    """Inspect one container; None once it no longer exists."""
    import docker.errors

    try:
        return normalise(client.api.inspect_container(container_id), read_proc=read_proc)
    except docker.errors.NotFound:
        return None


def list_all(client, *, read_proc: bool = True) -> list[ContainerRecord]:
    """Every container the engine knows (running or not), inspected."""
    records = []
    for summary in client.api.containers(all=True):
        record = inspect(client, summary["Id"], read_proc=read_proc)
        if record is not None:  # removed between list and inspect
            records.append(record)
    return records


def connect(docker_url: str | None = None, timeout: float = 30.0):
    """A Docker client for `docker_url`, or from DOCKER_HOST / the local socket.
    Raises ProbeError (transient) when the engine does not answer."""
    import docker

    from monitor_app.errors import ProbeError

    try:
        if docker_url:
            return docker.DockerClient(base_url=docker_url, timeout=timeout)
        return docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        raise ProbeError(f"docker engine unreachable: {exc}") from None
