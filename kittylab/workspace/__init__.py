"""The workspace: the only door to state (a folder of files and its private store), and what moves state in and out."""
