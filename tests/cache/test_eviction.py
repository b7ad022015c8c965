"""``kavier.cache.eviction``: each policy's own victim order (the shared contract is in
test_eviction_contract.py)."""

from __future__ import annotations

from kavier.cache.block_store import BlockStore


def test_eviction_policies_choose_their_victims():
    def store(policy: str, **kw) -> BlockStore:
        st_ = BlockStore(policy, capacity_tokens=3, **kw)
        for t, key in enumerate("abc"):
            st_.insert(key, 1, 0, float(t), pinned=False)
        return st_

    lru = store("lru")
    lru.touch("a", 5.0)
    lru.insert("d", 1, 0, 6.0, pinned=False)
    assert set(lru.entries) == {"a", "c", "d"}  # b was least recently used

    fifo = store("fifo")
    fifo.touch("a", 5.0)
    fifo.insert("d", 1, 0, 6.0, pinned=False)
    assert set(fifo.entries) == {"b", "c", "d"}  # a was inserted first, hits do not matter

    lfu = store("lfu")
    for _ in range(3):
        lfu.touch("a", 5.0)
    lfu.touch("b", 5.0)
    lfu.insert("d", 1, 0, 6.0, pinned=False)
    assert set(lfu.entries) == {"a", "b", "d"}  # c had no hits

    rnd1, rnd2 = store("random", seed=3), store("random", seed=3)
    rnd1.insert("d", 1, 0, 6.0, pinned=False)
    rnd2.insert("d", 1, 0, 6.0, pinned=False)
    assert set(rnd1.entries) == set(rnd2.entries) and len(rnd1) == 3 and "d" in rnd1

    ttl = store("ttl", ttl_s=10.0)
    ttl.touch("c", 8.0)
    assert ttl.match(["a"], now=10.5) == 0  # idle 10.5 s: expired
    assert ttl.match(["c"], now=10.5) == 1  # used at 8 s
    assert ttl.expirations == 1

    pinned = BlockStore("lru", capacity_tokens=2)
    pinned.insert("a", 1, 0, 0.0, pinned=True)
    pinned.insert("b", 1, 0, 1.0, pinned=False)
    assert pinned.insert("c", 1, 0, 2.0, pinned=False)
    assert "a" in pinned and "b" not in pinned  # the pinned entry is never the victim
    assert not pinned.insert("d", 1, 0, 3.0, pinned=True) or "a" in pinned


def test_arc_resists_a_scan_that_flushes_lru():
    def run(policy: str) -> bool:
        s = BlockStore(policy, capacity_tokens=4)
        for t in range(3):  # a hot entry, hit repeatedly
            if not s.match(["hot"], float(t)):
                s.insert("hot", 1, 0, float(t), pinned=False)
            else:
                s.touch("hot", float(t))
        for i in range(6):  # a scan of one-time entries
            s.insert(f"scan{i}", 1, 0, 10.0 + i, pinned=False)
        return "hot" in s

    assert run("arc") and not run("lru")
