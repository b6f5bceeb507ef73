"""On-disk formats of a dataset: WebDataset shard tars and parquet tables, read and written
through ``audiomill.storage`` so local paths and ``s3://`` behave the same."""
