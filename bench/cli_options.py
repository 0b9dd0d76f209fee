"""The bench scripts' command lines: one --name option per keyword default."""

import argparse


def parse(doc, argv=None, **defaults):
    """argv parsed into one --NAME option per default, typed as the default is; the help's
    description is doc's first line."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args(argv)
