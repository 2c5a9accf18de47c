from muckrack_hmr.cli import console_main

console_main()
