"""`kancoin rd --engine ray`: the same rows as the local pool, resumable, and robust to a
worker killed mid-task. Runs on a local Ray cluster of 2 CPUs started by the test."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from kancoin.engines import RayEngine, make_engine
from kancoin.rd import SweepConfig, run_sweep
from kancoin.rd.results import ROWS_FILE, load_rows
from tests.test_rd import realish_image, save_png

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'kancoin[ray]')")

TASK_TITLE = b"ray::_call_with_threads"  # Ray's process title while a worker runs our task


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def two_images(tmp_path):
    return [
        save_png(tmp_path / "first.png", realish_image(24, 32, seed=1)),
        save_png(tmp_path / "second.png", realish_image(24, 32, seed=2)),
    ]


def sweep_config(engine: str, *, steps: int = 20) -> SweepConfig:
    return SweepConfig(
        targets=(4.0, 8.0),
        codecs=("siren", "jpeg2000"),
        preset="fast",
        steps=steps,
        workers=2,
        threads=1,
        engine=engine,
    )


def measured(out: Path) -> dict:
    """Per key: what must not depend on where the row ran (timings and load excluded)."""
    result = {}
    for key, row in load_rows(out / ROWS_FILE).items():
        assert "error" not in row, row
        stream = (out / row["stream"]).read_bytes()
        result[key] = (row["bytes"], row["psnr"], row["ms_ssim"], stream)
    return result


def test_ray_rows_equal_local_rows_and_a_second_run_computes_nothing(cluster, tmp_path, two_images):
    logs: list[str] = []
    run_sweep(two_images, tmp_path / "local", sweep_config("local"), log=logs.append)
    run_sweep(two_images, tmp_path / "ray", sweep_config("ray"), log=logs.append)
    local, remote = measured(tmp_path / "local"), measured(tmp_path / "ray")
    assert len(local) == 2 * 2 * 2
    assert remote == local  # same bytes for kancoin files (same seed, one thread each)
    logs.clear()
    run_sweep(two_images, tmp_path / "ray", sweep_config("ray"), log=logs.append)
    assert "8 to run" not in logs[0] and "0 to run, 8 done before" in logs[0]


def test_a_worker_killed_mid_task_is_retried_and_its_row_written_once(
    cluster, tmp_path, two_images
):
    killed: list[int] = []
    stop = threading.Event()

    def kill_the_first_busy_worker() -> None:
        while not stop.is_set() and not killed:
            for pid in _busy_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_busy_worker, daemon=True)
    killer.start()
    try:
        config = sweep_config("ray", steps=300)  # long enough to be caught running
        run_sweep(two_images, tmp_path / "out", config, log=lambda _: None)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running a task"
    lines = (tmp_path / "out" / ROWS_FILE).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert all("error" not in row for row in rows)
    keys = [(r["image"], r["codec"], r["target_bpp"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 2 * 2  # complete, and nothing written twice


def test_an_exception_in_a_task_is_its_outcome_not_a_retry(cluster):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    with make_engine("ray") as engine:
        outcomes = sorted(engine.run(_fails_on_two, [(1,), (2,), (3,)]), key=lambda o: o.index)
    assert [o.value for o in outcomes] == [1, None, 3]
    assert isinstance(outcomes[1].error, ValueError) and "two" in str(outcomes[1].error)


def test_the_engine_leaves_a_cluster_it_did_not_start_running(cluster):
    engine = RayEngine()
    engine.close()
    assert ray.is_initialized()


def _fails_on_two(value: int) -> int:
    if value == 2:
        raise ValueError("two is refused")
    return value


def _busy_workers() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(TASK_TITLE):
            pids.append(int(entry.name))
    return pids
