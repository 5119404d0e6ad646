"""Delivering runs from the journal to remote backends.

- :mod:`.contract`: what a backend implements and is handed (``Backend``, ``Batch``, ``RunRef``);
- :mod:`.cursor`: where delivery of one run to one backend stands, persisted;
- :mod:`.replay`: journal lines -> backend calls, from the cursor (``autolog sync`` runs it too);
- :mod:`.worker`: one thread per backend in the training process;
- :mod:`.sync`: one bounded pass over a store (``autolog sync`` and the detached process);
- :mod:`.handoff`: the detached delivery process that finishes what an exiting process left
  (``python -m autolog.delivery``).
"""
