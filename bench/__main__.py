"""`python -m bench`: runs every benchmark in quick mode, one after another."""

import subprocess
import sys
from importlib.util import find_spec

BENCHES = ["bench.gateway_bench", "bench.detection_bench", "bench.banned_bench", "bench.load_bench",
           "bench.verify_bench", "bench.registration_bench", "bench.ignorance_floor"]

if __name__ == "__main__":
    for name in BENCHES:
        if find_spec(name) is None:
            continue
        print(f"\n=== {name}", flush=True)
        subprocess.run([sys.executable, "-m", name, "--quick", *sys.argv[1:]], check=True)
