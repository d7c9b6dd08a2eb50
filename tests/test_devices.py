"""oodflow.devices: each parallel GPU job gets a device of its own (lock-file pool), with fake devices."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from oodflow import devices


@pytest.fixture(autouse=True)
def _release():
    yield
    devices.release()


def test_four_fake_gpus_give_four_distinct_devices_across_processes(tmp_path):
    """Four jobs (processes) claim from one pool of four devices: each gets its own; a fifth finds
    none free; when one job ends (its lock released by the kernel), its device is free again."""
    ids = ["0", "1", "2", "3"]
    code = textwrap.dedent(f"""
        import sys
        from oodflow import devices
        print(devices.claim({ids!r}, {str(tmp_path)!r}), flush=True)
        sys.stdin.readline()  # hold the device until told to end
    """)
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in ids
    ]
    try:
        got = [int(job.stdout.readline()) for job in jobs]
        assert sorted(got) == [0, 1, 2, 3]
        with pytest.raises(RuntimeError, match="all 4 GPUs .* are held by other jobs"):
            devices.claim(ids, tmp_path)
        freed = got.index(2)
        jobs[freed].communicate("\n")
        assert devices.claim(ids, tmp_path) == 2
    finally:
        for job in jobs:
            if job.poll() is None:
                job.communicate("\n")


def test_a_process_keeps_its_device_and_release_frees_it(tmp_path):
    ids = ["GPU-aaaa", "GPU-bbbb"]
    assert devices.claim(ids, tmp_path) == 0
    assert devices.claim(ids, tmp_path) == 0  # the same job asks again: the same device
    devices.release()
    assert devices.claim(ids[::-1], tmp_path) == 0  # "GPU-bbbb" first now, and it is free


def test_jobs_given_different_devices_by_a_scheduler_do_not_share_locks(tmp_path):
    """SLURM gives each job its own CUDA_VISIBLE_DEVICES (both see index 0): locks are by device id."""
    assert devices.visible_ids(1, {"CUDA_VISIBLE_DEVICES": "3"}) == ["3"]
    assert devices.claim(devices.visible_ids(1, {"CUDA_VISIBLE_DEVICES": "3"}), tmp_path) == 0
    code = f"from oodflow import devices; print(devices.claim(['5'], {str(tmp_path)!r}))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "0"
    assert devices.visible_ids(2, {}) == ["0", "1"]


def test_count_without_torch_reads_device_files_and_visible_devices(tmp_path):
    for name in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert devices.count_without_torch(tmp_path, {}) == 3
    assert devices.count_without_torch(tmp_path, {"CUDA_VISIBLE_DEVICES": "1,2"}) == 2
    assert devices.count_without_torch(tmp_path, {"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert devices.count_without_torch(tmp_path / "none", {}) == 0
