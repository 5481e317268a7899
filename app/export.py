"""Export a trained checkpoint to a folder with its tokenizer and a model card (README.md), optionally uploaded to the
Hugging Face Hub (formats: `lightning_modules.label_supervised.pretrained`; the card: `app.model_card`).

python -m app.export --ckpt_path best.ckpt --output_dir exported/            # adapter + head (+ tokenizer)
python -m app.export --ckpt_path best.ckpt --output_dir exported/ --merge    # LoRA merged: a transformers folder
python -m app.export ... --metrics logs/test/version_0/metrics.csv           # test metrics of a `main.py test` run
python -m app.export ... --push_to_hub you/sst2-ls-llama [--private]         # upload the folder (needs a network)

With --merge (and for fully finetuned models) the folder loads with `AutoModelForSequenceClassification` /
`AutoModelForTokenClassification.from_pretrained(folder)` and `pipeline(..., model=folder)`: a stock transformers
class where one computes the model (last-token pooling of a decoder, token tasks), else our modeling code shipped in
the folder (other poolings, BidirectionalFromLayer, encoders' sequence classification: add
`trust_remote_code=True`). Without --merge: a peft adapter + head for `LabelSupervisedModule.from_pretrained`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from huggingface_hub import HfApi

from app.checkpointing import load_trained
from app.model_card import run_facts, write_model_card
from core.hub import load_tokenizer
from lightning_modules.label_supervised.pretrained import CONFIG_FILE, save_folder

log = logging.getLogger(__name__)


def export_checkpoint(
    ckpt_path: str | Path,
    output_dir: str | Path,
    merge: bool = False,
    metrics: list[str | Path] = (),
    repo_id: str | None = None,
) -> Path:
    """Export a Lightning checkpoint of a `LabelSupervisedModule` with the tokenizer it was trained with and a model
    card of its run; returns the folder.

    Args:
        ckpt_path: the checkpoint.
        output_dir: the folder to write.
        merge: merge LoRA into the backbone (a transformers folder).
        metrics: `metrics.csv` files with further metrics (a test run's); the run's own is found beside the
            checkpoint (`<log_dir>/checkpoints/x.ckpt` -> `<log_dir>/metrics.csv`).
        repo_id: the hub repository the folder is meant for (named in the card).
    """
    run = run_facts(ckpt_path, list(metrics))
    module, tokenizer_source = load_trained(ckpt_path)
    tokenizer = None
    if tokenizer_source is not None:
        tokenizer = load_tokenizer(tokenizer_source)
        if run.max_length:  # `truncation=True` then cuts as training did
            tokenizer.model_max_length = run.max_length
    else:
        log.warning(
            "%s records no tokenizer: %s holds none (pipeline() needs one: save it there)", ckpt_path, output_dir
        )
    folder = save_folder(module, output_dir, tokenizer, merge=merge, in_place=True)
    write_model_card(folder, run, repo_id)
    return folder


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False, api: HfApi | None = None) -> str:
    """Upload an exported folder to the hub repository `repo_id` (created if needed); returns the commit's URL."""
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    kind = json.loads((Path(folder) / CONFIG_FILE).read_text())["format"]
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        commit_message=f"Upload ls-llama export ({kind})",
    )
    return str(getattr(commit, "commit_url", commit))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (`--help`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="Lightning checkpoint of a LabelSupervisedModule")
    parser.add_argument("--output_dir", required=True, help="folder to write")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="merge LoRA into the backbone and write a folder that AutoModelFor*Classification.from_pretrained and "
        "pipeline() load: a stock transformers class where one computes the model, else our modeling code shipped "
        "in the folder (load with trust_remote_code=True)",
    )
    parser.add_argument(
        "--metrics",
        action="append",
        default=[],
        metavar="FILE",
        help="a metrics.csv with further metrics for the model card, e.g. of a `main.py test` run (repeatable); "
        "the run's own metrics.csv beside the checkpoint is read anyway",
    )
    parser.add_argument("--push_to_hub", metavar="REPO", help="upload the folder to this hub repository (owner/name)")
    parser.add_argument("--private", action="store_true", help="with --push_to_hub: create the repository private")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """`python -m app.export --ckpt_path X --output_dir Y [--merge] [--metrics FILE] [--push_to_hub REPO]`."""
    args = parse_args(argv)
    folder = export_checkpoint(args.ckpt_path, args.output_dir, args.merge, args.metrics, args.push_to_hub)
    kind = json.loads((folder / CONFIG_FILE).read_text())["format"]
    print(f"exported {args.ckpt_path} as {kind!r} to {folder} (model card: {folder / 'README.md'})")
    if args.push_to_hub:
        url = push_to_hub(folder, args.push_to_hub, args.private)
        print(f"uploaded {folder} to https://huggingface.co/{args.push_to_hub} ({url})")
    return folder


if __name__ == "__main__":
    main()
