"""Benchmarks for hitl-router.

Each module runs on its own with one command and stops by itself::

    .venv/bin/python -m bench.enqueue   # request() throughput vs a raw SET loop
    .venv/bin/python -m bench.wake      # decide -> wait() wake latency vs LPUSH -> BLPOP
    .venv/bin/python -m bench.timers    # timer lateness with two real workers
    .venv/bin/python -m bench.memory    # Redis memory per pending request (embedded Redis)
    .venv/bin/python -m bench           # all four in sequence, with a summary

Every benchmark measures its baseline in the same run (the machine is shared, absolute
times drift), prints PASS or MISS against its target, uses a unique ``bench-<hex>`` key
prefix and deletes its keys at the end. They use the Redis on 127.0.0.1:6379 database 12
when it answers, else an embedded one (`bench.memory` always uses its own embedded Redis).
Exit status is 0 unless something broke; ``--strict`` also makes a MISS exit 1.
"""
