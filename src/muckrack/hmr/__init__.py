"""``python -m muckrack.hmr``: see :mod:`muckrack_hmr.cli`."""
