import os
import sys

# python -m put the working folder first on sys.path, for the program: the CLI's own
# imports must not take a token.py or logging.py there for the standard modules (the
# runner puts the folder back for a ``-m`` target; a script gets its own folder).
if sys.path and sys.path[0] in ("", os.getcwd()) and not getattr(sys.flags, "safe_path", 0):
    del sys.path[0]

from muckrack_hmr.cli import console_main

console_main()
