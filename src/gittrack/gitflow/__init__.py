"""Git workflows around the tracking branch: notes on code commits, hooks, runs by commit.

Sharing (merge, push, pull) lives here too (DESIGN §7, §10). Everything here works on git
objects and refs through ``store/``; nothing touches the user's work tree, index or HEAD.
"""
