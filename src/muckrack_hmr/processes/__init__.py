"""Worker processes hot-reload too: one watcher, and a channel of ours to each process.

The supervising process (the one ``python -m muckrack.hmr`` runs) judges each
save once, with its watcher, and sends the judged bytes over a Unix socket
(:mod:`.channel`, :mod:`.hub`) to every live process of the program's tree:
``fork`` children (pools, pre-fork servers) and ``spawn``/``forkserver``
children (:mod:`.joining` gets the import hooks into them).  Each applies
those bytes at its own safe point, with the engine's normal semantics, and
answers with what it did (:mod:`.member`); the supervisor logs one line per
save for the whole tree (:mod:`.supervisor`).

Nothing here is imported until the program makes its first process: a
program that never does pays nothing, and the engine never imports this
package.
"""

from __future__ import annotations

__all__: list[str] = []
