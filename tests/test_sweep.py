"""``xnn sweep`` on a real Dask cluster (two worker processes on this machine), on tiny IDX data.

What is shown: a sweep's records arrive in ``runs.jsonl`` once each; a second sweep into the same
directory runs only what is missing (and starts no cluster when nothing is); a worker process
killed in the middle of a run costs nothing but time (the run goes to another worker, continues
from its checkpoint and ends with the numbers of an uninterrupted run); a run interrupted
outside the sweep is continued by it; bad arguments fail before any cluster starts; an
unreachable scheduler fails within its timeout; every record equals the same run done alone in
this process (with BLAS limited to one thread here as on the workers).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import threading
import time

import pytest

distributed = pytest.importorskip("distributed")

from conftest import write_tiny_mnist  # noqa: E402

from xnn.tools import chapter, sweep_run  # noqa: E402
from xnn.tools.experiments import load_chapter_data  # noqa: E402
from xnn.tools.sweep import main, parse_seeds, run  # noqa: E402
from xnn.tools.sweep_cluster import BLAS_ENV  # noqa: E402
from xnn.tools.sweep_report import append_record, read_records, summarize, write_summary  # noqa: E402
from xnn.tools.sweep_worker import run_one  # noqa: E402
from xnn.train.trainer import Trainer  # noqa: E402

COMPARED = ("accuracy", "best_val_loss", "epochs_run", "best_epoch", "stopped_early")


@pytest.fixture(scope="module")
def tiny_idx(tmp_path_factory):
    """Four IDX files of 600 + 100 learnable 28×28 images (as tests/test_cli.py's)."""
    return str(write_tiny_mnist(tmp_path_factory.mktemp("idx")))


@pytest.fixture(scope="module")
def cluster():
    """A running 2-worker cluster, used through ``scheduler=`` (as a remote one would be)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", env=BLAS_ENV) as running, \
            distributed.Client(running) as client:
        yield running.scheduler_address, client


def _alone(name, seed, data_dir, epochs):
    """The run done alone in this process, BLAS limited to one thread (as on the workers)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1):
        result, = chapter.run_experiments([name], load_chapter_data(data_dir), "numpy",
                                          "float32", epochs, seed, progress=False,
                                          log=lambda _: None, streams="book")
    return {"accuracy": result.accuracy, "best_val_loss": result.best_val_loss,
            "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early}


def _main(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([*argv, "--no-progress"])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def local_sweep(tiny_idx, tmp_path_factory):
    """``xnn sweep sce momentum --seeds 2 --workers 2``: a LocalCluster started and stopped."""
    out = tmp_path_factory.mktemp("sweep")
    status, stdout, stderr = _main("sce", "momentum", "--seeds", "2", "--workers", "2",
                                   "--epochs", "10", "--data", tiny_idx, "--out", str(out))
    return out, status, stdout, stderr


def test_a_sweep_writes_every_run_once_and_the_summary(local_sweep):
    out, status, stdout, stderr = local_sweep
    assert status == 0, stderr
    records = read_records(out / "runs.jsonl")
    assert sorted((r["experiment"], r["seed"]) for r in records) == [
        ("momentum", 1), ("momentum", 2), ("sce", 1), ("sce", 2)]
    record = records[0]
    assert {"backend", "dtype", "streams", "epochs_run", "best_epoch", "accuracy",
            "best_val_loss", "seconds", "worker", "versions"} <= set(record)
    assert record["worker"].startswith("tcp://") and record["blas_threads"] == 1
    assert record["versions"]["distributed"] == distributed.__version__
    assert "4 run(s): 0 in" in stdout and "| sce | 2 |" in stdout
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
    markdown = (out / "summary.md").read_text()
    assert "| momentum | 2 |" in markdown and "book 95.51" in markdown
    assert "Not comparable with the book" in markdown  # --epochs 10
    header, *rows = (out / "summary.csv").read_text().splitlines()
    assert header.startswith("experiment,n,mean accuracy %,std,min %,max %")
    assert [row.split(",")[:2] for row in rows] == [["sce", "2"], ["momentum", "2"]]


def test_every_record_equals_the_run_done_alone(local_sweep, tiny_idx):
    """Bit for bit: floats survive JSON exactly, so == compares every bit of each number."""
    out = local_sweep[0]
    for record in read_records(out / "runs.jsonl"):
        alone = _alone(record["experiment"], record["seed"], tiny_idx, 10)
        assert {k: record[k] for k in COMPARED} == alone, record


def test_a_second_sweep_runs_only_what_is_missing(local_sweep, tiny_idx, cluster,
                                                  monkeypatch):
    out = local_sweep[0]
    status, stdout, _ = _main("sce", "--seeds", "1,2,3", "--scheduler", cluster[0],
                              "--epochs", "10", "--data", tiny_idx, "--out", str(out))
    assert status == 0 and "3 run(s): 2 in" in stdout and "1 to run" in stdout
    assert len(read_records(out / "runs.jsonl")) == 5

    def no_cluster(*args, **kwargs):
        raise AssertionError("nothing to run: no cluster")

    monkeypatch.setattr(sweep_run, "connect", no_cluster)
    status, stdout, _ = _main("sce", "momentum", "--seeds", "2", "--epochs", "10",
                              "--data", tiny_idx, "--out", str(out))
    assert status == 0 and "4 run(s): 4 in" in stdout and "0 to run" in stdout


def test_a_killed_worker_costs_only_time(tiny_idx, cluster, tmp_path):
    """Kill the worker process running sce seed 1 after its first epoch: Dask gives the run to
    another worker, which continues from the checkpoint; each run is recorded once, with the
    numbers of the uninterrupted run."""
    address, client = cluster
    outcome = {}

    def sweep():
        outcome["result"] = run(["sce"], [1, 2], out=tmp_path, scheduler=address, epochs=100,
                                data=tiny_idx, progress=False, log=lambda _: None)

    thread = threading.Thread(target=sweep)
    thread.start()
    checkpoint = tmp_path / "checkpoints" / "sce-seed1" / "checkpoints" / "sce.npz"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert checkpoint.exists(), "the run never wrote a checkpoint"
    running = [worker for worker, keys in client.processing().items()
               if any("sce-seed1-" in str(key) for key in keys)]
    assert len(running) == 1
    os.kill(client.run(os.getpid)[running[0]], signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive() and "result" in outcome
    records = read_records(tmp_path / "runs.jsonl")
    assert sorted(r["seed"] for r in records) == [1, 2]
    killed = next(r for r in records if r["seed"] == 1)
    assert killed["worker"] != running[0] and killed["resumed"]
    assert {k: killed[k] for k in COMPARED} == _alone("sce", 1, tiny_idx, 100)
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the killed one


def test_an_interrupted_run_continues_where_it_stopped(tiny_idx, cluster, tmp_path,
                                                      monkeypatch):
    """A run stopped after 3 of 10 epochs (here, in this process); the sweep continues it."""
    class Interrupted(Trainer):
        def fit(self, *args, **kwargs):
            def stop(record):
                if record["epoch"] == 3:
                    raise KeyboardInterrupt
            return super().fit(*args, **{**kwargs, "on_epoch": stop})

    spec = {"experiment": "momentum", "seed": 7, "backend": "numpy", "dtype": "float32",
            "streams": "book", "epochs": 10, "limit": None, "data": tiny_idx,
            "out": str(tmp_path), "checkpoints": True, "blas_threads": 1}
    with monkeypatch.context() as patch:
        patch.setattr(chapter, "Trainer", Interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_one(spec)
    assert (tmp_path / "checkpoints" / "momentum-seed7" / "checkpoints" / "momentum.npz").exists()
    (tmp_path / "runs.jsonl").write_text('{"experiment": "momentum", "seed"')  # a torn line
    records, summary = run(["momentum"], "7,", out=tmp_path, scheduler=cluster[0], epochs=10,
                           data=tiny_idx, progress=False, log=lambda _: None)
    assert len(records) == 1 and records[0]["resumed"]
    assert {k: records[0][k] for k in COMPARED} == _alone("momentum", 7, tiny_idx, 10)
    assert read_records(tmp_path / "runs.jsonl") == records
    assert summary[0]["n"] == 1 and summary[0]["std"] is None


def test_a_worker_without_the_data_fails_the_run_with_the_loaders_message(cluster, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, stderr = _main("sce", "--seeds", "2", "--scheduler", cluster[0],
                              "--data", str(empty), "--out", str(tmp_path / "out"))
    assert status == 1
    line, = stderr.splitlines()
    assert line.startswith("xnn sweep: 2 run(s) failed (sce seed 1, sce seed 2): cannot load")
    assert str(empty) in line and not (tmp_path / "out" / "runs.jsonl").exists()


def test_a_backend_that_cannot_run_is_exit_status_3(tiny_idx, cluster, tmp_path):
    """Here before any cluster starts; on a running cluster, as each worker reports it."""
    from xnn.backends import available_backends

    if "cupy" in available_backends():
        pytest.skip("CuPy runs here")
    for where in (["--workers", "2"], ["--scheduler", cluster[0]]):
        status, _, stderr = _main("sce", "--seeds", "1", *where, "--backend", "cupy",
                                  "--data", tiny_idx, "--out", str(tmp_path))
        assert status == 3 and "needs the package 'cupy'" in stderr, stderr
        assert len(stderr.splitlines()) == 1


def test_an_unreachable_scheduler_fails_within_the_timeout(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    status, _, stderr = _main("sce", "--seeds", "1", "--scheduler", f"tcp://127.0.0.1:{port}",
                              "--timeout", "1", "--out", str(tmp_path))
    assert status == 3 and time.monotonic() - started < 10
    assert stderr.startswith(f"xnn sweep: cannot reach the scheduler at tcp://127.0.0.1:{port}")
    assert len(stderr.splitlines()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["nope", "--seeds", "2"], "unknown experiment(s) nope; known: mse-sigmoid"),
    (["sce", "--seeds", "0"], "--seeds 0: the number of seeds must be at least 1"),
    (["sce", "--seeds", "1,x"], "'x' is not a seed"),
    (["sce", "--seeds", "1,1"], "a seed is given twice"),
    (["sce", "--seeds", "2", "--scheduler", "nonsense::"], "invalid address"),
    (["sce", "--seeds", "2", "--data", "/nonexistent"], "--data /nonexistent: not a directory"),
    (["sce", "--seeds", "2", "--backend", "torch:tpu"], "unknown backend 'torch:tpu'"),
])
def test_bad_arguments_fail_before_any_cluster(argv, message, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_run, "connect", None)  # would fail loudly if reached
    status, stdout, stderr = _main(*argv, "--out", str(tmp_path / "out"))
    assert status == 2 and message in stderr and len(stderr.splitlines()) == 1, stderr
    assert stdout == ""


def test_an_unwritable_out_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("")
    status, _, stderr = _main("sce", "--seeds", "1", "--out", str(tmp_path / "file"))
    assert status == 2 and "not a directory" in stderr
    status, _, stderr = _main("sce", "--seeds", "1", "--out", str(tmp_path / "file" / "x"))
    assert status == 2 and "cannot write there" in stderr


def test_seeds():
    assert parse_seeds("5") == parse_seeds(5) == [1, 2, 3, 4, 5]
    assert parse_seeds("3,9,2") == [3, 9, 2]
    assert parse_seeds("7,") == parse_seeds([7]) == [7]
    assert parse_seeds("1-3,10") == [1, 2, 3, 10]
    for bad in ("0", "-1", "", "1;2", [2**32], [True]):
        with pytest.raises(ValueError, match="seed"):
            parse_seeds(bad)


def test_records_are_appended_whole_and_a_torn_line_is_skipped(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, {"experiment": "sce", "seed": 1, "accuracy": 90.0})
    with open(path, "a") as file:
        file.write('{"experiment": "sce", "se')  # a crash in the middle of a line
    append_record(path, {"experiment": "sce", "seed": 2, "accuracy": 91.0})
    assert [r["seed"] for r in read_records(path)] == [1, 2]
    assert len(path.read_text().splitlines()) == 3
    assert json.loads(path.read_text().splitlines()[-1])["seed"] == 2


def test_the_summary_is_mean_spread_and_whether_the_book_is_in_range(tmp_path):
    def record(name, seed, accuracy):
        return {"experiment": name, "seed": seed, "accuracy": accuracy, "epochs_run": 50,
                "seconds": 2.0}

    rows = summarize([record("dropout", 1, 96.5), record("dropout", 2, 97.5),
                      record("he-relu", 1, 97.0)], ["dropout", "he-relu"])
    dropout, he_relu = rows
    assert (dropout["n"], dropout["mean"], dropout["min"], dropout["max"]) == (2, 97.0, 96.5,
                                                                               97.5)
    assert dropout["std"] == pytest.approx(0.7071, abs=1e-4)
    assert dropout["book_accuracy"] == 96.95 and dropout["in_range"] is True
    assert he_relu["book_accuracy"] is None and he_relu["in_range"] is None
    notes: list[str] = []
    written = write_summary(rows, tmp_path, {"backend": "numpy", "epochs": None}, notes)
    markdown = (tmp_path / "summary.md").read_text()
    assert "| dropout | 2 | 97.00 ± 0.71 | 96.50–97.50 | book 96.95 | yes |" in markdown
    assert "| he-relu | 1 | 97.00 ± — | 97.00–97.00 | — | — |" in markdown
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert notes == ["no plot: matplotlib is not installed (pip install -e '.[plot]')"]
    else:
        assert (tmp_path / "summary.png") in written and not notes


def test_the_facade():
    import xnn.sweep

    assert xnn.sweep.run is run and xnn.sweep.main is main


def test_chapter4_seeds_runs_through_the_sweep(tiny_idx, cluster, tmp_path, monkeypatch):
    """`xnn chapter4 NAMES --seeds S1,S2` is `xnn sweep` into RESULTS/sweep (here on the
    running test cluster, through a scheduler address given to the sweep)."""
    from xnn.tools import cli
    from xnn.tools import sweep as sweep_command

    address, _ = cluster
    seen = []
    real = sweep_command.main
    monkeypatch.setattr(sweep_command, "main", lambda argv: seen.append(argv) or real(
        [*argv, "--scheduler", address]))
    status = cli.main(["chapter4", "sce", "--seeds", "1,2", "--epochs", "10", "--data",
                       str(tiny_idx), "--results", str(tmp_path), "--no-progress"])
    assert status == 0
    assert seen[0][:5] == ["sce", "--seeds", "1,2", "--out", str(tmp_path / "sweep")]
    lines = (tmp_path / "sweep" / "runs.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["seed"] for line in lines) == [1, 2]
