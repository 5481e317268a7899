"""experiments/paper_numbers.yaml: it loads, no reported number is empty, keys follow the convention, and every value
equals the cell of the paper's text (../shared/paper) that its `source` names; every cell of Tables 2-5 is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ROOT, SHARED

from experiments.results_table import PAPER_NUMBERS, load_paper_numbers

PAPER_TEXT = SHARED / "paper" / "label_supervised_llama_2310.01208.txt"
COLUMN_TYPOS = {"CoNNL2003": "CoNLL2003"}  # Table 4's header misspells the dataset; sources use its real name
DATASETS = {"sst2", "sst5", "agnews", "twitter_fin", "conll2003", "ontonotes5"}
DATASETS |= {f"amazon_reviews_{x}" for x in ("de", "en", "es", "zh", "avg")}  # avg: Table 3's "Avg." column
MODELS = {"llama2-7b", "llama2-13b", "llama2-7b-chat", "llama2-13b-chat", "bert-base", "bert-large", "roberta-base"}
MODELS |= {"roberta-large", "bert-base-multilingual", "roberta-base-multilingual", "roberta-large-multilingual"}
MODELS |= {"gpt3-175b", "chatgpt", "gpt-3.5-turbo", "instructuie", "agn", "ran"}
METHODS = {"ls_llama", "ls_unllama", "finetune", "zero_shot", "few_shot", "instruction_tuning", "reference"}
# independent of the file's `source` fields: key -> (table, row, column) as printed in the paper
SPOT_CHECKS = {
    "sst2/llama2-7b/ls_unllama": ("2", "LS-unLLaMA-2-7B", "SST2"),
    "sst5/llama2-7b-chat/zero_shot": ("2", "LLaMA-2-7B (zero-shot)", "SST5"),
    "agnews/gpt3-175b/few_shot": ("2", "GPT-3 175B (few-shot)", "AGNews"),
    "amazon_reviews_zh/llama2-7b/ls_unllama": ("3", "LS-unLLaMA", "ZH"),
    "amazon_reviews_de/bert-base-multilingual/finetune": ("3", "BERT-Base-Multilingual", "DE"),
    "conll2003/llama2-7b/ls_unllama": ("4", "LS-unLLaMA-2-7B", "CoNLL2003"),
    "ontonotes5/llama2-13b/ls_llama": ("4", "LS-LLaMA-2-13B", "OntoNotes V5"),
    "ontonotes5/gpt-3.5-turbo/reference": ("4", "GPT-3.5-Turbo", "OntoNotes V5"),
    "sst5/llama2-7b/ls_unllama/pooling_last": ("5", "last", "SST5 LS-unLLaMA w/o CM"),
    "sst2/llama2-7b/ls_llama/pooling_mean": ("5", "average", "SST2 LS-LLaMA w/ CM"),
}


def _number(cell: str) -> float | None:
    """`96.67` -> 96.67, `54.3 [†]` -> 54.3, `—` / `–` -> None."""
    match = re.match(r"\d+(\.\d+)?", cell.strip())
    if match is None and cell.strip() not in ("—", "–"):
        raise AssertionError(f"unexpected table cell {cell!r}")
    return float(match.group()) if match else None


def paper_tables(text: str) -> dict[str, dict[str, dict[str, float | None]]]:
    """Tables 2-5 of the paper's text (tab-separated rows after each caption): table -> row -> column -> value.

    Header lines are the tabbed lines before the first number; a header cell spans the empty cells after it
    (Table 5's `SST2` over two columns), and the header lines' cells are joined (`SST2 LS-LLaMA w/ CM`)."""
    lines, tables = text.splitlines(), {}
    for table in ("2", "3", "4", "5"):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"Table {table}:"))
        block = []
        for line in lines[start + 1 :]:
            if "\t" in line:
                block.append(line.split("\t"))
            elif block and line.strip():
                break
        first_row = next(i for i, cells in enumerate(block) if any(re.match(r"\d", c.strip()) for c in cells[1:]))
        columns = [""] * (len(block[0]) - 1)
        for cells in block[:first_row]:
            spanned = ""
            for j, cell in enumerate(cells[1:]):
                spanned = cell.strip() or spanned
                columns[j] = f"{columns[j]} {spanned}".strip()
        columns = [COLUMN_TYPOS.get(c, c) for c in columns]
        rows = {}
        for cells in block[first_row:]:
            if any(c.strip() for c in cells[1:]):
                name = re.sub(r"\s*\[.*\]$", "", cells[0].strip())  # `AGN [Li et al., 2021]` -> `AGN`
                rows[name] = {col: _number(cell) for col, cell in zip(columns, cells[1:]) if col}
        tables[table] = rows
    return tables


@pytest.fixture(scope="module")
def paper() -> dict[str, dict[str, dict[str, float | None]]]:
    if not PAPER_TEXT.is_file():
        pytest.skip(f"{PAPER_TEXT} is absent (the paper's text in the shared folder next to the repository)")
    return paper_tables(PAPER_TEXT.read_text(encoding="utf-8"))


def test_the_file_loads_with_a_value_metric_table_and_source_per_entry():
    numbers = load_paper_numbers()
    assert len(numbers) == 124  # Tables 2 (14 rows x 4), 3 (6 x 5), 4 (13 x 2), 5 (3 x 4)
    for key, entry in numbers.items():
        assert entry["metric"] == ("f1" if entry["table"] == "4" else "acc"), key
        assert entry["source"].startswith(f"Table {entry['table']}, "), key


def test_no_reported_number_is_empty():
    for key, entry in load_paper_numbers().items():
        assert (entry["value"] is None) == (entry.get("reported") is False), key
        assert entry["value"] is None or 0 < entry["value"] <= 100, key
    # a cell the paper leaves empty is written `reported: false` (no value), and says so in its source
    for line in Path(PAPER_NUMBERS).read_text().splitlines():
        if not line.lstrip().startswith("#"):
            assert not re.search(r"\bvalue:\s*(null|~)?\s*[,}]", line), line
            assert ("reported: false" in line) == ("the paper prints —" in line), line


def test_keys_follow_dataset_model_method_overlay():
    numbers = load_paper_numbers()
    for key, entry in numbers.items():
        dataset, model, method, *overlay = key.split("/")
        assert dataset in DATASETS and model in MODELS and method in METHODS, key
        if overlay:
            assert entry["table"] == "5" and overlay[0] in {"pooling_max", "pooling_mean", "pooling_last"}, key
            assert method in {"ls_llama", "ls_unllama"} and len(overlay) == 1, key
    # the zero-shot rows are LLaMA-2-chat's (section 3.2), and say so
    for key in ("sst2/llama2-7b-chat/zero_shot", "conll2003/llama2-7b-chat/zero_shot"):
        assert "LLaMA-2-chat" in numbers[key]["source"]


def test_spot_checks_equal_the_paper_text(paper):
    numbers = load_paper_numbers()
    for key, (table, row, column) in SPOT_CHECKS.items():
        assert numbers[key]["value"] == paper[table][row][column], key
    assert paper["4"]["LS-unLLaMA-2-7B"]["CoNLL2003"] == 93.19  # the parser itself reads the right cell


def test_every_value_equals_the_cell_its_source_names(paper):
    numbers = load_paper_numbers()
    seen = set()
    for key, entry in numbers.items():
        _, row, column = entry["source"].split(";")[0].split(", ")  # "Table 4, LS-unLLaMA-2-7B, CoNLL2003; ..."
        table = entry["table"]
        assert row in paper[table] and column in paper[table][row], f"{key}: {entry['source']} names no cell"
        assert entry["value"] == paper[table][row][column], f"{key}: {entry['value']} != paper's {entry['source']}"
        seen.add((table, row, column))
    every_cell = {(t, r, c) for t, rows in paper.items() for r, cells in rows.items() for c in cells}
    assert every_cell - seen == set(), "cells of the paper's tables without an entry"


def test_the_suites_paper_keys_have_numbers():
    """Every paper key a shipped suite uses points at a number the paper reports (not an empty slot)."""
    from experiments.suite import load_suite

    numbers = load_paper_numbers()
    for path in sorted((ROOT / "experiments").glob("paper_table*/suite.yaml")):
        for run in load_suite(path).runs:
            assert run.paper in numbers and numbers[run.paper]["value"] is not None, (path.name, run.id)


def test_an_entry_without_a_value_must_say_the_paper_reports_none(tmp_path):
    path = tmp_path / "numbers.yaml"
    path.write_text('numbers:\n  sst2/x/y: {table: "2", metric: acc, reported: false, source: "Table 2, x, SST2"}\n')
    assert load_paper_numbers(path)["sst2/x/y"]["value"] is None
    path.write_text('numbers:\n  sst2/x/y: {table: "2", metric: acc, source: "Table 2, x, SST2"}\n')
    with pytest.raises(ValueError, match=r"numbers\.sst2/x/y: expected a mapping with 'value'"):
        load_paper_numbers(path)
