"""`lethe eval`: the unlearning evaluation, run against a live gateway as a user would.

The suite it runs is data (bench/data, or any directory given with --suite); the tools that build a
suite from what a model knows live in bench/eval (probe, seed)."""
