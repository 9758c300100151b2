"""RingBuffer: checked against a reference deque, under two threads, and for allocation-free writes."""

import collections
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxedge.errors import AudioError, BufferOverflowError, OptionError, VoxedgeError
from voxedge.ringbuffer import RingBuffer


class ReferenceRing:
    """The same contract written the obvious way: a bounded deque of (absolute index, value)."""

    def __init__(self, capacity, overflow):
        self.items = collections.deque(maxlen=capacity)
        self.capacity, self.overflow = capacity, overflow
        self.written = self.next_read = 0

    def write(self, values):
        if self.overflow == "raise" and len(self.items) + len(values) > self.capacity:
            raise BufferOverflowError
        for v in values:
            self.items.append((self.written, v))
            self.written += 1

    def read(self, max_samples):
        start = self.items[0][0] if self.items else self.written
        dropped = start - self.next_read
        n = len(self.items) if max_samples is None else min(max_samples, len(self.items))
        taken = [self.items.popleft() for _ in range(n)]
        self.next_read = start + n
        return start, np.array([v for _, v in taken], np.float32), dropped


operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 70)),
        st.tuples(st.just("read"), st.one_of(st.none(), st.integers(0, 70))),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(capacity=st.integers(1, 50), overflow=st.sampled_from(["drop_oldest", "raise"]), ops=operations)
def test_ring_matches_the_reference_deque(capacity, overflow, ops):
    ring, ref = RingBuffer(capacity, overflow), ReferenceRing(capacity, overflow)
    counter = 0
    for op, n in ops:
        if op == "write":
            values = np.arange(counter, counter + n, dtype=np.float32)
            counter += n
            try:
                ref.write(values)
            except BufferOverflowError:
                with pytest.raises(BufferOverflowError):
                    ring.write(values)
                counter -= n  # nothing was accepted
                continue
            ring.write(values)
        else:
            block = ring.read(n)
            start, samples, dropped = ref.read(n)
            assert (block.start, block.dropped) == (start, dropped)
            np.testing.assert_array_equal(block.samples, samples)
        assert ring.available == len(ref.items)
        assert ring.written == ring.delivered + ring.dropped + ring.available


def test_raise_policy_refuses_the_whole_write():
    ring = RingBuffer(10, overflow="raise")
    ring.write(np.ones(8, np.float32))
    with pytest.raises(BufferOverflowError, match="ring buffer full"):
        ring.write(np.ones(3, np.float32))
    assert ring.written == 8 and ring.dropped == 0
    assert len(ring.read().samples) == 8


def test_write_validates_its_input():
    ring = RingBuffer(10)
    for bad in (np.zeros(3, np.float64), np.zeros((3, 1), np.float32), [0.0, 1.0]):
        with pytest.raises(AudioError, match="1-D float32"):
            ring.write(bad)
    with pytest.raises(OptionError, match="capacity must be a positive"):
        RingBuffer(0)
    with pytest.raises(OptionError, match="overflow must be one of"):
        RingBuffer(10, overflow="block")


def test_write_does_not_allocate():
    ring = RingBuffer(100_000)
    block = np.ones(16000, np.float32)  # 64 kB: any copy or conversion of it would show
    ring.write(block)  # warm up
    tracemalloc.start()
    for _ in range(200):
        ring.write(block)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4096 and current < 1024, (peak, current)  # a few small Python objects at most


def test_two_threads_every_sample_arrives_in_order_or_is_counted_dropped():
    # The producer writes a ramp (value == absolute index, exact in float32 up to 2**24) in random
    # block sizes as fast as it can; the consumer reads slowly in random sizes. Each delivered sample
    # must sit at its own index; the gaps must add up to the dropped count.
    total = 4_000_000
    ring = RingBuffer(20_000)
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 3000, size=10_000)
    done = threading.Event()

    def produce():
        pos = 0
        for n in sizes:
            n = min(int(n), total - pos)
            if n == 0:
                break
            ring.write(np.arange(pos, pos + n, dtype=np.float32))
            pos += n
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    delivered = dropped = 0
    expected_next = 0
    while not (done.is_set() and ring.available == 0):
        block = ring.read(int(rng.integers(1, 5000)))
        assert block.start == expected_next + block.dropped
        np.testing.assert_array_equal(block.samples, np.arange(block.start, block.start + len(block.samples)))
        expected_next = block.start + len(block.samples)
        delivered += len(block.samples)
        dropped += block.dropped
    producer.join()
    assert delivered + dropped == ring.written == total
    assert dropped == ring.dropped and delivered == ring.delivered
    assert dropped > 0 and delivered > 0  # both paths were exercised


def test_a_second_producer_writing_at_the_same_time_is_refused(monkeypatch):
    # The ring's counters belong to one producer. A second thread that writes while the first is inside
    # write() gets an error instead of silently corrupting the counters (millions of samples lost).
    ring = RingBuffer(1000)
    inside, release = threading.Event(), threading.Event()
    original = RingBuffer._copy_in

    def slow_copy(self, samples, slot):
        inside.set()
        release.wait(5)
        original(self, samples, slot)

    monkeypatch.setattr(RingBuffer, "_copy_in", slow_copy)
    first = threading.Thread(target=ring.write, args=(np.ones(10, np.float32),))
    first.start()
    assert inside.wait(5)
    with pytest.raises(VoxedgeError, match="two threads wrote to this ring buffer at once"):
        ring.write(np.ones(10, np.float32))
    release.set()
    first.join()
    monkeypatch.setattr(RingBuffer, "_copy_in", original)
    ring.write(np.ones(5, np.float32))  # one producer at a time, from any thread, is fine
    assert ring.written == 15 and ring.read().samples.size == 15
