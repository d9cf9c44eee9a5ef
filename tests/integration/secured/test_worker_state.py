"""Workers that read state back when partitions are assigned, on the secured broker: alert
suppression (its changelog) and traffic windows (rebuilt from the input).  The reader assigns
partitions itself in the group ``<group_id>.restore``; like the models reader, it needs DESCRIBE
on that group for the coordinator lookup.  Each worker works with exactly the ACLs
docs/security.md lists; without the restore group's, it stops at start naming it."""

from __future__ import annotations

import pytest

from stream_od.kafka.reader import read_to_end
from tests.integration.secured.workers import (
    restore_group_acl,
    stopped,
    suppression_acls,
    suppression_env,
    windows_stage_acls,
    windows_stage_env,
    worker_acls,
    worker_env,
)
from tests.worker_support import WorkerProcess, metric_values
from trainer.replay import log_stream


def test_a_worker_with_suppression_scores_and_restores_with_exactly_its_acls(
    secured, mahalanobis_artifact, kdd_stream, tmp_path
):
    user, password = secured.add_user("worker")
    env = suppression_env(secured, worker_env(secured, user, password, mahalanobis_artifact[1]))
    secured.grant(b for b, _ in (worker_acls(user, env) | suppression_acls(user, env)).values())
    log = tmp_path / "worker.log"
    for start in (0, 1000):  # the second start reads back what the first wrote
        with WorkerProcess(env, log).start() as worker:
            secured.produce(env["STREAM_OD_INPUT_TOPIC"], kdd_stream.values[start : start + 1000])
            worker.wait_for("stream_od_records_scored_total", 1000)
            assert worker.terminate() == 0, worker.log()
    changelog = read_to_end(
        secured.bootstrap, env["STREAM_OD_SUPPRESSION_CHANGELOG_TOPIC"], config=secured.client()
    )
    assert changelog, "no suppression state written in 2,000 records with 5 % attacks"
    restored = [line for line in log.read_text().splitlines() if "restored" in line]
    assert any(" from 0 changelog records" not in line for line in restored[2:]), restored


@pytest.mark.parametrize(
    "missing, setting",
    [
        ("DESCRIBE restore group", "<STREAM_OD_GROUP_ID>.restore"),
        ("READ changelog topic", "STREAM_OD_SUPPRESSION_CHANGELOG_TOPIC"),
        ("WRITE changelog topic", "STREAM_OD_SUPPRESSION_CHANGELOG_TOPIC"),
    ],
)
def test_without_a_suppression_acl_the_worker_stops_at_start_and_names_it(
    secured, mahalanobis_artifact, tmp_path, missing, setting
):
    """Found by the start-up check, with the fix, before the first record (a missing WRITE on
    the changelog used to show only as INVALID_TXN_STATE at the first alert)."""
    user, password = secured.add_user("worker")
    env = suppression_env(secured, worker_env(secured, user, password, mahalanobis_artifact[1]))
    acls = worker_acls(user, env) | suppression_acls(user, env)
    secured.grant(binding for name, (binding, _) in acls.items() if name != missing)
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    assert code == 2 and acls[missing][1] in log and f"({setting})" in log, log
    assert f"User:{user}" in log and f"grant {missing.split()[0]} on" in log, log
    assert "consuming" not in log, log


@pytest.fixture(scope="module")
def zeek_values(zeek_replay_path) -> list[bytes]:
    return log_stream([zeek_replay_path], schema="zeek-conn-windows", count=1200).values


def test_a_windows_stage_works_and_rebuilds_its_windows_with_exactly_its_acls(
    secured, zeek_windows_artifact, zeek_values, tmp_path
):
    user, password = secured.add_user("stage")
    env = windows_stage_env(secured, worker_env(secured, user, password, zeek_windows_artifact[1]))
    secured.grant(binding for binding, _ in windows_stage_acls(user, env).values())
    log = tmp_path / "worker.log"
    for start in (0, 600):  # the second start rebuilds the windows from the committed offsets
        with WorkerProcess(env, log).start() as worker:
            secured.produce(env["STREAM_OD_INPUT_TOPIC"], zeek_values[start : start + 600])
            worker.wait_for("stream_od_windows_stage_records_total", 600)
            assert worker.terminate() == 0, worker.log()
    assert "rebuilt the windows of" in log.read_text(), log.read_text()
    staged = read_to_end(
        secured.bootstrap, env["STREAM_OD_WINDOWS_STAGE_TOPIC"], config=secured.client()
    )
    assert len(staged) == 1200


@pytest.mark.parametrize(
    "stage, missing",
    [
        (True, "DESCRIBE restore group"),
        (True, "WRITE windows stage topic"),
        (False, "DESCRIBE restore group"),  # a scoring worker: its model says it has windows
    ],
)
def test_without_a_windows_acl_the_worker_stops_at_start_and_names_it(
    secured, zeek_windows_artifact, tmp_path, stage, missing
):
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, zeek_windows_artifact[1])
    if stage:
        env = windows_stage_env(secured, env)
        acls = windows_stage_acls(user, env)
    else:
        acls = worker_acls(user, env) | restore_group_acl(user, env)
    secured.grant(binding for name, (binding, _) in acls.items() if name != missing)
    code, log = stopped(WorkerProcess(env, tmp_path / "worker.log").start(wait_ready=False))
    setting = (
        "<STREAM_OD_GROUP_ID>.restore"
        if missing == "DESCRIBE restore group"
        else "STREAM_OD_WINDOWS_STAGE_TOPIC"
    )
    assert code == 2 and acls[missing][1] in log and f"({setting})" in log, log
    assert f"grant {missing.split()[0]} on" in log and "does not exist" not in log, log


def test_a_model_with_windows_arriving_by_a_swap_is_refused_without_the_restore_acl(
    secured, zeek_mahalanobis_artifact, tmp_path
):
    """The start-up check saw a model without windows, so it did not ask for the restore
    group; a newer version with windows needs it.  Without it that version is refused, named
    with the missing ACL, and the worker keeps serving its model (it used to swap, then stop
    at its next partition assignment, and every restart with it)."""
    from trainer.publish import publish

    registry = tmp_path / "registry"
    publish(zeek_mahalanobis_artifact[1], registry_dir=registry, private_key=None)
    user, password = secured.add_user("worker")
    env = worker_env(secured, user, password, zeek_mahalanobis_artifact[1]) | {
        "STREAM_OD_MODEL_SOURCE": "directory",
        "STREAM_OD_MODEL_REGISTRY_DIR": str(registry),
        "STREAM_OD_MODEL_POLL_INTERVAL_S": "0.5",
    }
    secured.grant(binding for binding, _ in worker_acls(user, env).values())
    with WorkerProcess(env, tmp_path / "worker.log").start() as worker:
        newer = _windows_model(tmp_path / "newer")  # trained now: no rollback
        published = publish(newer, registry_dir=registry, private_key=None)
        text = worker.wait_for("stream_od_model_refusals_total", 1)
        assert worker.proc.poll() is None, worker.log()
        log = worker.log()
        assert worker.terminate() == 0, log
    assert metric_values(text, "stream_od_model_refusals_total")['{reason="schema"}'] == 1
    group = env["STREAM_OD_GROUP_ID"] + ".restore"
    assert f"refused model {published['version']}" in log, log
    assert f"grant DESCRIBE on Group:{group}" in log and "keeping model" in log, log


def _windows_model(out):
    """A Mahalanobis model on zeek-conn-windows, trained now, as ``stream-od train`` does."""
    from tests.integration.conftest import ZEEK_TRAIN
    from trainer.readers import read_logs
    from trainer.site import SiteConfig, train_site

    cfg = SiteConfig(
        data=[str(ZEEK_TRAIN)],
        schema="zeek-conn-windows",
        detector="mahalanobis",
        target_alert_rate=0.01,
    )
    art = train_site(cfg, read_logs([ZEEK_TRAIN]).records, progress=False, log=lambda _: None)
    return art.save(out)
