"""Shared by the scripts that write the committed reference files under tests/data/."""
import os
import sys


def write_lines(default_path, lines):
    """Writes lines to the path given as the script's only argument, else default_path; atomically, so a
    run that fails half-way leaves the committed file as it was."""
    path = sys.argv[1] if len(sys.argv) > 1 else default_path
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
