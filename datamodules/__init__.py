"""Data modules: one per dataset, all sharing tokenization, BIO alignment and dynamic padding."""

from datamodules.agnews import AGNews
from datamodules.amazon import AmazonReviews
from datamodules.base import LabelDataModule
from datamodules.conll import CoNLL2003, ConllNER
from datamodules.ontonotes import OntoNotes5
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
    "RightContextNER",
    "TextClassificationFiles",
    "TwitterFin",
]
