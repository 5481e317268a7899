"""Read what an offline W&B run recorded, without W&B's servers: its `.wandb` file (LevelDB-log records of
`wandb_internal_pb2.Record`). wandb 0.31 no longer ships a Python reader (the Go core writes the file), and an
offline run writes no `config.yaml` / `wandb-summary.json`, so the tests read the records themselves."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768  # LevelDB log block size
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What one offline run folder (`offline-run-<time>-<id>[-N]`) recorded; a resumed run has several folders."""

    folder: Path
    id: str = ""
    project: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    resumed: bool = False
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # define_metric: name -> options

    def history_keys(self) -> set[str]:
        """Every key logged to the history (curves)."""
        return {key for row in self.history for key in row}

    def config_keys(self) -> set[str]:
        """Every config key, nested ones dotted (`data.train_size`)."""
        return set(_dotted(self.config))


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        out[prefix + key] = value
        if isinstance(value, dict):
            out.update(_dotted(value, f"{prefix}{key}."))
    return out


def records(path: Path) -> list[bytes]:
    """The records of a `.wandb` file: a 7-byte header (`:W&B`, magic, version), then LevelDB log blocks."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file (header {data[:7]!r})")
    out, pos, parts = [], 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a record header is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + 7 + length > len(data):  # a record still being written
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            parts = chunk
        elif kind == MIDDLE:
            parts += chunk
        elif kind == LAST:
            out.append(parts + chunk)
    return out


def _set(tree: dict[str, Any], item: Any) -> None:
    keys = list(item.nested_key) or [item.key]
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = json.loads(item.value_json)


def finished_records(path: Path, timeout: float = 30.0) -> list[pb.Record]:
    """The records of a run file, once it holds the `exit` record: `finish()` can return before W&B's writer
    process has flushed the file."""
    deadline = time.monotonic() + timeout
    while True:
        parsed = []
        for data in records(path):
            record = pb.Record()
            record.ParseFromString(data)
            parsed.append(record)
        if any(r.WhichOneof("record_type") == "exit" for r in parsed) or time.monotonic() > deadline:
            return parsed
        time.sleep(0.2)


def read_run(folder: str | Path) -> OfflineRun:
    """Read one offline run folder (of a finished run)."""
    folder = Path(folder)
    (path,) = folder.glob("run-*.wandb")
    run = OfflineRun(folder)
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.id, run.project, run.name, run.group = r.run_id, r.project, r.display_name, r.run_group
            run.job_type, run.tags, run.resumed = r.job_type, list(r.tags), r.resume
            for item in r.config.update:
                _set(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _set(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _set(run.summary, item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _set(row, item)
            run.history.append(row)
        elif kind == "metric":
            m = record.metric
            summary = [f.name for f, v in m.summary.ListFields() if v]
            run.metrics[m.name or m.glob_name] = {"step_metric": m.step_metric, "summary": summary}
    run.config.pop("_wandb", None)
    return run


def offline_runs(root: str | Path) -> list[OfflineRun]:
    """Every offline run folder under `root` (at any depth), oldest first."""
    return [read_run(folder) for folder in sorted(Path(root).rglob("offline-run-*")) if folder.is_dir()]
