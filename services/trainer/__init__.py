"""Trainer: datasets in, CILRS policies and evaluation reports out."""
