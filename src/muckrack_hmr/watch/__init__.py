"""Settled saves: which files changed, when a save is finished, and what to apply.

One pipeline (:class:`~muckrack_hmr.watch.pipeline.SavePipeline`) for every
consumer: the backends (:mod:`.backends`) report file events;
:mod:`.debounce` groups them into bursts; :mod:`.saves` judges each file's
content; the pipeline hands each burst (:mod:`.bursts`) to its consumer.
:class:`~muckrack_hmr.watch.watcher.Watcher` (the CLI and ``HMR.watch``)
reloads it, :mod:`.safepoint` picking the moment; ``pytest --hmr`` queues it
for pytest's main thread.  :mod:`.datafiles` and :mod:`.filters` say which
files count.  Nothing here is imported by the reload engine, and nothing
here imports the CLI or an integration.
"""
