"""``python -m muckrack.hmr``: see :mod:`muckrack_hmr.cli`.

PYTEST_DONT_REWRITE: already imported under ``python -m muckrack.hmr -m pytest``.
"""
