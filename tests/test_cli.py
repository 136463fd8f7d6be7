"""The ``xnn`` command line, offline, on a tiny synthetic MNIST-shaped data set."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import write_tiny_mnist

import xnn
from xnn.tools.arguments import EXIT_INTERRUPTED
from xnn.tools.cli import _parser, main
from xnn.tools.experiments import EXPERIMENTS


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """Four IDX files of 600 + 100 learnable 28×28 images; an empty cache; no network."""
    directory = write_tiny_mnist(tmp_path / "idx")
    monkeypatch.setenv("XNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XNN_OFFLINE", "1")
    return directory


def test_list_names_every_experiment(capsys):
    assert main(["chapter4", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPERIMENTS)


def test_unknown_experiment_is_a_usage_error(capsys):
    assert main(["chapter4", "nonsense"]) == 2
    assert "unknown experiment(s) nonsense" in capsys.readouterr().err


def test_chapter4_runs_and_writes_results(tiny_mnist, tmp_path, capsys):
    results = tmp_path / "results"
    status = main(["chapter4", "sce", "momentum", "--epochs", "10", "--data", str(tiny_mnist),
                   "--results", str(results), "--backend", "array_api_strict",
                   "--no-progress"])
    assert status == 0
    out = capsys.readouterr().out
    assert "Validation loss after 10 epochs is" in out
    assert "| momentum | 95.51 |" in out
    run = results / "latest"
    assert run.is_symlink() and run.resolve().parent == results.resolve()
    assert re.fullmatch(r"\d{8}-\d{6}-sce-momentum", os.readlink(run))
    with open(run / "chapter4.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["experiment"] for r in rows] == ["sce", "momentum"]
    assert all(float(r["xnn accuracy %"]) > 50 for r in rows)  # learnable prototypes
    markdown = (run / "chapter4.md").read_text()
    assert markdown.startswith("# Chapter 4 on MNIST")
    assert "- command: `xnn chapter4 sce momentum --epochs 10 --data " in markdown
    metadata = json.loads((run / "chapter4.json").read_text())
    assert metadata["command"].startswith("xnn chapter4 sce momentum --epochs 10")
    assert {k: metadata[k] for k in ("experiments", "backend", "dtype", "seed", "streams",
                                     "epochs", "limit")} == {
        "experiments": ["sce", "momentum"], "backend": "array_api_strict", "dtype": "float32",
        "seed": 20190119, "streams": "book", "epochs": 10, "limit": None}
    assert set(metadata["versions"]) == {"xnn", "numpy", "python"}
    assert {"platform", "cpu"} <= set(metadata["machine"])
    assert f"results go to {run.resolve().relative_to(results.resolve().parent)}" in \
        out.replace(str(tmp_path) + os.sep, "")


def test_each_run_gets_its_own_directory_and_latest_follows(tiny_mnist, tmp_path, capsys):
    results = tmp_path / "results"
    args = ["--epochs", "1", "--data", str(tiny_mnist), "--results", str(results),
            "--no-progress"]
    assert main(["chapter4", "sce", *args]) == 0
    first = (results / "latest").resolve()
    assert main(["chapter4", "sce", *args]) == 0
    second = (results / "latest").resolve()
    assert first != second and first.is_dir() and second.is_dir()
    assert (first / "runs" / "sce.json").exists() and (second / "runs" / "sce.json").exists()


def test_resume_continues_in_the_latest_run_directory(tiny_mnist, tmp_path, capsys):
    results = tmp_path / "results"
    args = ["sce", "--epochs", "1", "--data", str(tiny_mnist), "--results", str(results),
            "--no-progress"]
    assert main(["chapter4", *args]) == 0
    run = (results / "latest").resolve()
    started = json.loads((run / "chapter4.json").read_text())["started"]
    capsys.readouterr()
    assert main(["chapter4", *args, "--resume"]) == 0
    assert "sce: finished earlier" in capsys.readouterr().out
    assert [p for p in results.iterdir() if p.name != "latest"] == [run]
    metadata = json.loads((run / "chapter4.json").read_text())
    assert metadata["started"] == started and metadata["resumed"]
    assert metadata["command"].endswith("--resume")


def test_resume_continues_a_run_of_the_older_single_directory_layout(tiny_mnist, tmp_path,
                                                                     capsys):
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)  # results/runs/..., no results/latest
    assert main(["chapter4", "sce", "--epochs", "1", "--data", str(tiny_mnist), "--results",
                 str(results), "--no-progress", "--resume"]) == 0
    assert (results / "chapter4.csv").exists() and (results / "runs" / "sce.json").exists()
    assert not (results / "latest").exists()


def test_latest_is_a_text_file_without_symbolic_links(tiny_mnist, tmp_path, monkeypatch,
                                                     capsys):
    def no_links(*args, **kwargs):
        raise OSError("symbolic links are not supported here")

    monkeypatch.setattr(os, "symlink", no_links)
    results = tmp_path / "results"
    args = ["sce", "--epochs", "1", "--data", str(tiny_mnist), "--results", str(results),
            "--no-progress"]
    assert main(["chapter4", *args]) == 0
    latest = results / "latest"
    assert latest.is_file() and not latest.is_symlink()
    run = results / latest.read_text().strip()
    assert (run / "chapter4.csv").exists()
    assert main(["chapter4", *args, "--resume"]) == 0  # finds the run through the file
    assert "sce: finished earlier" in capsys.readouterr().out


def test_a_plot_that_cannot_be_made_is_said_and_no_stale_one_remains(tiny_mnist, tmp_path,
                                                                     capsys):
    results = tmp_path / "results"
    args = ["sce", "--epochs", "1", "--data", str(tiny_mnist), "--results", str(results),
            "--no-progress"]
    assert main(["chapter4", *args]) == 0
    stale = results / "latest" / "chapter4-val-loss.png"
    stale.write_bytes(b"an older run's plot")
    capsys.readouterr()
    assert main(["chapter4", *args, "--resume"]) == 0  # 1 epoch: nothing evaluated
    out = capsys.readouterr().out
    assert "no plot: nothing was evaluated" in out or "no plot: matplotlib is not installed" in out
    assert not stale.exists()


def test_a_limited_run_is_marked_not_comparable_with_the_book(tiny_mnist, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["chapter4", "sce", "--epochs", "1", "--limit", "120", "--data",
                 str(tiny_mnist), "--results", str(results), "--no-progress"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("| experiment |"):]
    assert "| not comparable |" in table and "Not comparable with the book" in table
    assert "--limit 120: trained on the first 120 training images" in table
    markdown = (results / "latest" / "chapter4.md").read_text()
    assert "| not comparable |" in markdown and "Not comparable with the book" in markdown
    assert "- data: the first 120 training and 20 test images (--limit 120)" in markdown


def test_the_run_header_counts_one_epoch_in_the_singular(tiny_mnist, tmp_path, capsys):
    assert main(["chapter4", "sce", "--epochs", "1", "--data", str(tiny_mnist), "--results",
                 str(tmp_path / "r"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "; 1 epoch on numpy float32" in out and "1 epochs on" not in out


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        _parser().parse_args(["--version"])
    assert done.value.code == 0
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"xnn {xnn.__version__}")


@pytest.mark.parametrize("command", [[], ["chapter4"], ["data"]])
def test_help_is_plain_text_with_the_defaults(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out
    if command == ["chapter4"]:
        for default in ("default: float32", "default: 20190119", "default: results"):
            assert default in " ".join(out.split()), default
    if command == ["data"]:
        assert "default: " in out


def test_list_labels_its_columns_and_says_xnn_fixed_the_relu_bug(capsys):
    assert main(["chapter4", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["experiment", "compare", "with", "what", "it", "trains",
                                "(epochs)"]
    relu = next(line for line in lines if line.startswith("sce-relu"))
    assert "which xnn fixes" in relu and "(50 epochs)" in relu


def test_an_interrupted_run_is_one_line_and_exit_130(tiny_mnist, tmp_path, monkeypatch,
                                                     capsys):
    from xnn.tools import chapter

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(chapter, "run_experiments", interrupt)
    assert main(["chapter4", "sce", "--data", str(tiny_mnist), "--results",
                 str(tmp_path / "r"), "--no-progress"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == ("xnn: interrupted (`xnn chapter4 --resume` with the same options "
                       "continues the run)")


def test_unusable_backend_is_reported_before_loading_data(tiny_mnist, capsys, monkeypatch):
    from xnn.backends import registry as backend

    monkeypatch.setattr(backend, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["chapter4", "sce", "--backend", "cupy", "--data", str(tiny_mnist)]) == 3
    assert "pip install -e '.[cuda12]'" in capsys.readouterr().err


def test_python_dash_m_xnn():
    result = subprocess.run([sys.executable, "-m", "xnn", "chapter4", "--list"],
                            capture_output=True, text=True, check=True)
    assert "deep-no-dropout" in result.stdout
