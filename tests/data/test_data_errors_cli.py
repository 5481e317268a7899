"""A damaged data file stops the command line with one line naming it, not a traceback."""

from __future__ import annotations

import gzip

import pytest

from app.errors import USER_ERRORS, one_line
from datamodules.synthetic import build_tokenizer
from main import main


@pytest.mark.parametrize(
    ("name", "content", "named"),
    [
        (
            "train.csv",
            gzip.compress(b"text,label\nfine,1\n"),
            "train.csv: is gzip-compressed, but its name does not end",
        ),
        ("train.csv.gz", gzip.compress(b"text,label\n" + b"fine,1\n" * 5000)[:-10], "the gzip data is damaged or cut"),
    ],
    ids=["gzip-without-suffix", "truncated-gzip"],
)
def test_a_damaged_file_given_to_fit_is_one_line_naming_it(tmp_path, name, content, named):
    (tmp_path / name).write_bytes(content)
    args = [
        "fit",
        "--config=configs/backbone/tiny-llama.yaml",
        "--config=configs/method/ls_llama.yaml",
        "--data=datamodules.TextClassificationFiles",
        f"--data.init_args.data_dir={tmp_path}",
        f"--data.init_args.train_file={name}",
        f"--data.init_args.validation_file={name}",
        "--data.init_args.label_names=[negative, positive]",
        f"--data.init_args.tokenizer={build_tokenizer()}",
        f"--data.init_args.cache_dir={tmp_path / 'cache'}",
        "--config=configs/debug/fdr.yaml",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",
    ]
    with pytest.raises(USER_ERRORS) as error:
        main(args)
    line = one_line(error.value)
    assert "\n" not in line and str(tmp_path / name) in line and named in line
