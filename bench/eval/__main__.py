"""`python -m bench.eval`: the same as `lethe eval` (the evaluation is product code, gateway/evaluation/)."""

import sys

from gateway.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
