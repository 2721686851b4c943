"""Git workflows around the tracking branch (DESIGN §7, §10, §11).

``merge`` joins two tracking tips on trees, in process; ``file_rules`` says how one file changed
on both sides is merged; ``sync`` moves the branch, registry tags and notes to and from a
remote, merging and retrying as needed. ``notes`` keeps per-commit summaries in
``refs/notes/gittrack``, ``relabel`` gives dirty-tree runs the commit their code became,
``hooks`` installs the git hooks that call them, ``commit_runs`` lists runs by code commit,
``by_commit`` looks up the runs of commits and ``commit_diff`` compares two commits' runs
(``gittrack diff``); ``checkout``, ``reproduce`` and ``bisect`` work on a run's code.
Nothing here touches the user's work tree, index or HEAD.
"""
