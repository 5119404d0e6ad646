"""Capturing what a run is made of beyond what it logs: its console (:mod:`.console`, with
:mod:`.relay` for file descriptors), its code (:mod:`.code`: the uncommitted diff, untracked
files, the entry script) and its command line (:mod:`.args`: argparse, click/typer, Hydra).

What is captured, how to turn each part off and what it costs: ``docs/capture.md``.
"""
