"""Smoke runs: a paper config end to end at toy scale on format-exact fakes (runner: oodflow.smoke.run;
config shrinking: oodflow.smoke.shrink; fake datasets: oodflow.smoke.fakes; fake weights:
oodflow.smoke.weights)."""
