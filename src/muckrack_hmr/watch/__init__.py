"""Settled saves: which files changed, when a save is finished, and what to apply.

Entered through :class:`~muckrack_hmr.watch.watcher.Watcher` (the CLI and
``HMR.watch``) and, for ``pytest --hmr``, through its backends
(:func:`~muckrack_hmr.watch.backends.choose_backend`).  The backends report
file events; :mod:`.debounce` groups them into bursts; :mod:`.saves` judges
each file's content; :mod:`.safepoint` picks the moment to apply it;
:mod:`.datafiles` and :mod:`.filters` say which files count.  Nothing here is
imported by the reload engine.
"""
