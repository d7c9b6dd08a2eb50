"""Smoke mode: a paper config at toy scale on format-exact fake data, through the whole DAG."""
