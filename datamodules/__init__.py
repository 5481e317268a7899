"""Data modules: one per dataset, all sharing tokenization, BIO alignment and dynamic padding."""

from datamodules.base import LabelDataModule
from datamodules.synthetic import EarlyCueClassification, RightContextNER

__all__ = ["EarlyCueClassification", "LabelDataModule", "RightContextNER"]
