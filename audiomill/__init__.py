"""audiomill: raw audio in, clean labeled WebDataset shards out."""

__version__ = "0.1.0"
