"""Export a trained checkpoint to a folder that `from_pretrained` loads (formats:
`lightning_modules.label_supervised.pretrained`).

python -m app.export --ckpt_path best.ckpt --output_dir exported/            # adapter + head (+ tokenizer)
python -m app.export --ckpt_path best.ckpt --output_dir exported/ --merge    # LoRA merged
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.checkpointing import load_trained
from lightning_modules.label_supervised.pretrained import CONFIG_FILE, save_folder


def export_checkpoint(ckpt_path: str | Path, output_dir: str | Path, merge: bool = False) -> Path:
    """Export a Lightning checkpoint of a `LabelSupervisedModule`, with the tokenizer it was trained with."""
    module, tokenizer = load_trained(ckpt_path)
    return save_folder(module, output_dir, tokenizer, merge=merge, in_place=True)


def main(argv: list[str] | None = None) -> Path:
    """`python -m app.export --ckpt_path X --output_dir Y [--merge]`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_path", required=True, help="Lightning checkpoint of a LabelSupervisedModule")
    parser.add_argument("--output_dir", required=True, help="folder to write")
    parser.add_argument("--merge", action="store_true", help="merge LoRA into the backbone (standard HF folder)")
    args = parser.parse_args(argv)
    folder = export_checkpoint(args.ckpt_path, args.output_dir, merge=args.merge)
    print(f"exported {args.ckpt_path} as {json.loads((folder / CONFIG_FILE).read_text())['format']!r} to {folder}")
    return folder


if __name__ == "__main__":
    main()
