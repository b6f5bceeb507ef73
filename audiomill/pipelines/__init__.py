"""Stages (batch -> batch, Ray-agnostic) and the pipelines that chain them."""
