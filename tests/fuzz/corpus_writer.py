"""Shared by the make_*_corpus.py scripts: writes a seed corpus afresh."""
import pathlib
import shutil


def write_corpus(name, seeds):
    """Replaces corpus/<name>/ (next to this file) with the (file name, bytes) pairs of `seeds`."""
    out = pathlib.Path(__file__).resolve().parent / "corpus" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for file_name, data in seeds:
        (out / file_name).write_bytes(data)
