"""Smoke runs: a paper config end to end at toy scale on format-exact fakes (see oodflow.smoke.run)."""
