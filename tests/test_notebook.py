"""The results notebook runs headless (nbclient) on a tiny suite and draws its figures."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from suite_helpers import run_tiny_suite

from experiments.suite import ROOT

NOTEBOOK = ROOT / "notebooks" / "suite_results.ipynb"


def test_notebook_outputs_are_stripped():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_runs_on_a_tiny_suite(tmp_path_factory, tmp_path):
    pytest.importorskip("ipykernel")
    runs_dir = run_tiny_suite(tmp_path_factory.getbasetemp() / "tiny_suite")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = f"SUITE_DIR = {str(runs_dir)!r}\nGROUPS = None\nFIGURE_DIR = {str(tmp_path)!r}"
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs)
    assert "2 finished runs" in text
    assert (tmp_path / "test_scores.png").stat().st_size > 5_000
    assert (tmp_path / f"curves_{runs_dir.name}.png").stat().st_size > 10_000
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 2  # the bar chart and the curves are shown in the notebook
