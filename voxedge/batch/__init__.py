"""Archives: many files on every core of one machine (`voxedge transcribe --output-dir DIR --workers N`:
runner.py, pool.py), or the same job on a Ray cluster (cluster.py, the `[cluster]` extra; docs/batch.md).

Nothing outside cluster.py imports ray.
"""
