"""The reload engine: what changed in a module, what runs again, what is patched in place.

Entered through :class:`~muckrack_hmr.reload.reloader.Reloader` (the API's
``reloader``).  :mod:`.sources` keeps what each module ran; :mod:`.analysis`
and :mod:`.incremental` tell which statements changed and what their
dependents consumed; :mod:`.body_edits` patches bodies in place;
:mod:`.patching` and :mod:`.rebinding` carry the new objects to every holder
of the old ones; :mod:`.relocation` moves line numbers; :mod:`.mentions`
indexes what each module spells.  Nothing here imports the watcher, the CLI
or an integration.
"""
