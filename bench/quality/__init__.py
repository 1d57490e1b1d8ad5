"""The quality benchmark: does the learned similarity beat pixels? (``python -m bench.quality``).

protocol.py: the CLI, the runs (train, export, score) and the tables; scorer.py: what one bundle
scores; judge.py: the digit classifier, FD-cls and the other metrics computed with it; classes.py:
the class figures through the service's routes; curve.py: the steps curve of a run's snapshots.
"""
