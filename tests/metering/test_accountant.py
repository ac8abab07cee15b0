"""Fair split: overlapping windows share each interval, and nothing is lost or invented."""

from __future__ import annotations

import threading
import time

import pytest

from joulegate.metering import CpuModelSensor, EnergyAccountant

from ._support import RecordingSensor, burn_cpu


def test_two_overlapping_windows_sum_to_the_sensor_delta(cpu_sensor: CpuModelSensor) -> None:
    sensor = RecordingSensor(cpu_sensor)
    acct = EnergyAccountant(sensor)
    a = acct.open()
    start = sensor.readings[-1]
    burn_cpu(0.05)
    b = acct.open()
    burn_cpu(0.1)
    share_a = acct.close(a)
    burn_cpu(0.05)
    share_b = acct.close(b)
    end = sensor.readings[-1]
    assert share_a.joules > 0 and share_b.joules > 0
    assert share_a.joules + share_b.joules == pytest.approx(end - start, rel=1e-12)
    assert acct.attributed_j == pytest.approx(end - start, rel=1e-12)


def test_overlap_is_split_equally(cpu_sensor: CpuModelSensor) -> None:
    sensor = RecordingSensor(cpu_sensor)
    acct = EnergyAccountant(sensor)
    a = acct.open()
    b = acct.open()  # readings: init, open a, open b
    burn_cpu(0.05)
    share_a = acct.close(a)  # reading 3
    share_b = acct.close(b)  # reading 4
    r = sensor.readings
    both = r[3] - r[2]
    assert share_a.joules == pytest.approx((r[2] - r[1]) + both / 2)
    assert share_b.joules == pytest.approx(both / 2 + (r[4] - r[3]))


def test_weights_move_the_split(cpu_sensor: CpuModelSensor) -> None:
    acct = EnergyAccountant(cpu_sensor)
    working = acct.open(weight=1.0)
    queued = acct.open(weight=0.0)
    burn_cpu(0.1)
    w = acct.close(working)
    q = acct.close(queued)
    # The queued window only gets the instant after the working one closed, when it was
    # the only window open (all weights zero: split equally among those open).
    assert w.joules > 0
    assert q.joules < 0.01 * w.joules


def test_energy_between_requests_is_not_attributed(cpu_sensor: CpuModelSensor) -> None:
    sensor = RecordingSensor(cpu_sensor)
    acct = EnergyAccountant(sensor)
    a = acct.open()
    first = acct.close(a)
    burn_cpu(0.1)  # nobody is open: idle between requests
    b = acct.open()
    second = acct.close(b)
    assert acct.attributed_j == pytest.approx(first.joules + second.joules)
    assert acct.attributed_j < sensor.readings[-1] - sensor.readings[0]


def test_device_seconds_split_like_energy(cpu_sensor: CpuModelSensor) -> None:
    acct = EnergyAccountant(cpu_sensor)
    t0 = time.monotonic()
    a, b = acct.open(), acct.open()
    time.sleep(0.05)
    sa, sb = acct.close(a), acct.close(b)
    wall = time.monotonic() - t0
    assert sa.seconds + sb.seconds == pytest.approx(wall, abs=0.01)


def test_closing_twice_returns_nothing_more(cpu_sensor: CpuModelSensor) -> None:
    acct = EnergyAccountant(cpu_sensor)
    a = acct.open()
    assert acct.close(a).seconds >= 0
    assert acct.close(a).joules == 0.0
    assert acct.open_windows == 0


def test_concurrent_windows_from_many_threads_conserve_energy(
    cpu_sensor: CpuModelSensor,
) -> None:
    sensor = RecordingSensor(cpu_sensor)
    acct = EnergyAccountant(sensor)
    anchor = acct.open()  # keeps the union of windows contiguous
    start = sensor.readings[-1]
    shares = []
    lock = threading.Lock()

    def request() -> None:
        for _ in range(20):
            k = acct.open()
            burn_cpu(0.001)
            s = acct.close(k)
            with lock:
                shares.append(s.joules)

    pool = [threading.Thread(target=request) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    last = acct.close(anchor)
    end = sensor.readings[-1]
    assert len(shares) == 160
    assert sum(shares) + last.joules == pytest.approx(end - start, rel=1e-9)
