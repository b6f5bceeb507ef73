"""Show two datasets are the same output: `python benchmarks/compare_datasets.py A B` prints every
differing file or manifest key (times excluded) and exits 1 if there is any."""

from __future__ import annotations

import sys
from pathlib import Path

from audiomill.testing.dataset_diff import dataset_differences

if __name__ == "__main__":
    differences = dataset_differences(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(differences) or "identical: shards, held audio, index, rejects, dedup table, manifest")
    sys.exit(1 if differences else 0)
