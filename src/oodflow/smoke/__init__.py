"""Smoke mode: run a paper config end to end at toy scale on format-exact fakes of its datasets."""
