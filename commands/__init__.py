"""One module per `soundtok` subcommand: argument parsing and I/O only; the work is in soundtok_cli."""
