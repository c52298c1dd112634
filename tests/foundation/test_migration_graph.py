"""dbmon's own migration graph: concern branches joined by merge revisions into one head."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from monitor_app.store.migrate import alembic_config, current_revision, head_revision, upgrade


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def test_the_graph_has_one_head():
    heads = _script().get_heads()
    assert len(heads) == 1, f"several heads {heads}: add a merge revision joining them (CONTRIBUTING.md)"


def test_every_concern_branch_is_labelled_and_below_the_head():
    script = _script()
    (head,) = script.get_heads()
    below_head = {rev.revision for rev in script.iterate_revisions(head, "base")}
    labels = {label for rev in script.walk_revisions() for label in (rev.branch_labels or ())}
    assert {"containers", "schema", "alerting", "posture", "audit", "collectors", "servers", "analysis"} <= labels
    assert below_head == {rev.revision for rev in script.walk_revisions()}


def test_a_blank_store_upgrades_to_the_single_head(blank_store_url):
    upgrade(blank_store_url)
    assert current_revision(blank_store_url) == head_revision(blank_store_url)
    assert "," not in current_revision(blank_store_url)
