"""Data modules: one per dataset, all sharing tokenization, BIO alignment and dynamic padding.

- `base.LabelDataModule`: tokenize, align words, pad, batch (`samplers`), predict inputs (`predict_input`).
- `sources.FileOrHubDataModule`: local files or the hub, and the split policy (held-out validation);
  `text_table.TextTableDataModule`: its text-classification tables (SST-2, Twitter-Fin, AG News, ...).
- `readers` (file formats), `file_examples` / `hub_examples` (files / hub splits -> examples), `labels` (names -> ids),
  `cache` (parsed and tokenized data on disk).
- One small file per dataset: what differs (name, labels, hub id, files, columns, split policy).
"""

from datamodules.agnews import AGNews
from datamodules.amazon import AmazonReviews
from datamodules.base import LabelDataModule
from datamodules.conll import CoNLL2003, ConllNER
from datamodules.ontonotes import OntoNotes5
from datamodules.plain_text import PlainText
from datamodules.sst import SST2, SST5
from datamodules.synthetic import EarlyCueClassification, RightContextNER
from datamodules.text_classification import TextClassificationFiles
from datamodules.twitter_fin import TwitterFin

__all__ = [
    "SST2",
    "SST5",
    "AGNews",
    "AmazonReviews",
    "CoNLL2003",
    "ConllNER",
    "EarlyCueClassification",
    "LabelDataModule",
    "OntoNotes5",
    "PlainText",
    "RightContextNER",
    "TextClassificationFiles",
    "TwitterFin",
]
