"""``python -m bench``: the order placement and product read benchmark (bench/contention.py)."""

from bench.contention import main

raise SystemExit(main())
