import os
import sys

# As in muckrack/hmr/__main__.py: the working folder python -m put first on sys.path is
# the program's, not the CLI's (the package's own imports held it back already).
if sys.path and sys.path[0] in ("", os.getcwd()) and not getattr(sys.flags, "safe_path", 0):
    del sys.path[0]

from muckrack_hmr.cli import console_main

console_main()
