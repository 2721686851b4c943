"""Sharing runs through git: merge of tracking branches, push, pull and sync (DESIGN §10).

``merge`` joins two tracking tips on trees, in process; ``file_rules`` says how one file changed
on both sides is merged; ``sync`` moves the branch, registry tags and notes to and from a
remote, merging and retrying as needed. Nothing here touches the user's work tree or index.
"""
