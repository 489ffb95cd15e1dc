"""One module per subcommand: `add_parser(subparsers) -> parser` and `run(args) -> exit code`."""
