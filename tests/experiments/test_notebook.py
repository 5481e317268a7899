"""The results notebook runs headless (nbclient) and is stored with its outputs, run on committed results."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from suite_helpers import run_seeded_suite

from experiments.suite import ROOT

NOTEBOOK = ROOT / "notebooks" / "suite_results.ipynb"


def execute(notebook: nbformat.NotebookNode, results_dir: str | None = None, figure_dir: str | None = None):
    """Run the notebook (parameters replaced when given) and return its code outputs."""
    if results_dir is not None:
        [parameters] = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
        parameters.source = f"RESULTS_DIR = {results_dir!r}\nFIGURE_DIR = {figure_dir!r}"
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def test_notebook_runs_on_a_seeded_suite(tmp_path_factory, tmp_path):
    pytest.importorskip("ipykernel")
    runs_dir = run_seeded_suite(tmp_path_factory.getbasetemp() / "seeded")
    outputs = execute(nbformat.read(NOTEBOOK, as_version=4), str(runs_dir), str(tmp_path))
    assert not [out for out in outputs if out.output_type == "error"]
    assert "4 finished runs, 2 settings" in "".join(out.get("text", "") for out in outputs)
    assert (tmp_path / "test_scores.png").stat().st_size > 5_000
    assert (tmp_path / "curves_all.png").stat().st_size > 10_000
    assert len([out for out in outputs if "image/png" in out.get("data", {})]) >= 2


def test_the_stored_notebook_holds_the_outputs_of_the_committed_results():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [out for cell in code for out in cell.outputs]
    assert all(cell.execution_count is not None for cell in code)  # executed, stored with its outputs
    assert not [out for out in outputs if out.output_type == "error"]
    assert len([out for out in outputs if "image/png" in out.get("data", {})]) >= 2
    default = next(cell.source for cell in code if "parameters" in cell.metadata.get("tags", []))
    folder = ROOT / default.split('"')[1]
    assert folder.is_dir(), f"the notebook's default RESULTS_DIR {folder} is not committed"
    text = "".join(out.get("text", "") for out in outputs)
    assert "finished runs" in text and folder.name in text


def test_the_notebook_runs_in_a_fresh_clone_on_the_committed_results(tmp_path):
    pytest.importorskip("ipykernel")
    outputs = execute(nbformat.read(NOTEBOOK, as_version=4))  # the stored default RESULTS_DIR
    assert not [out for out in outputs if out.output_type == "error"]
    assert len([out for out in outputs if "image/png" in out.get("data", {})]) >= 3
