"""The `voxedge` subcommands, one module each: `register(subparsers)` adds its parser, whose
`handler` runs it. Modules import only argparse at load time; the work imports what it needs."""
