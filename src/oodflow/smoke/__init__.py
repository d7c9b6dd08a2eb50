"""Smoke runs of paper configs: format-exact fakes of every file they download, at toy scale."""
