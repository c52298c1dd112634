"""Normalising `docker inspect` output (no engine needed)."""

from __future__ import annotations

from monitor_app.containers.inventory import normalise


def _attrs(mounts: list[dict]) -> dict:
    return {"Id": "c" * 64, "Name": "/pg", "Image": "sha256:1", "Config": {"Image": "postgres:16"},
            "State": {"Status": "running", "Running": False}, "HostConfig": {"NetworkMode": "host"},
            "NetworkSettings": {}, "Mounts": mounts}


def test_it_keeps_the_same_mount_list_whatever_order_the_engine_lists_them_in():
    # Docker returns Mounts in map order; seen changing between two inspects of one container,
    # which made every reconcile report `asset.changed: mounts` for a container nobody touched.
    mounts = [{"Type": "bind", "Source": p, "Destination": p, "RW": False} for p in ("/usr", "/lib", "/etc", "/bin")]
    first = normalise(_attrs(mounts), read_proc=False).mounts
    second = normalise(_attrs(mounts[::-1]), read_proc=False).mounts
    assert first == second
    assert [m["destination"] for m in first] == ["/bin", "/etc", "/lib", "/usr"]
